// The NetworkState a node's DNS, load balancer and overlay are programmed
// from: every service's endpoints and every node's underlay address.
import { isTerminal, type NetworkState, type Node, type Service, type Task } from '../../proto/mod';
import { contains, parseCidr } from '../../common/cidr';
import { DEFAULT_NETWORK } from '../allocator/allocator';
import type { StateCache } from '../state/cache';

/** The service's tasks as endpoints; ready = running (and healthy when it has a health check). */
export function buildNetworkState(cache: StateCache, version: number): NetworkState {
  const byService = new Map<string, Task[]>();
  for (const t of cache.tasks.values()) {
    if (t.desiredState !== 'RUNNING' || isTerminal(t.status?.state ?? 'NEW') || !t.networks?.length) continue;
    const list = byService.get(t.serviceId);
    if (list) list.push(t);
    else byService.set(t.serviceId, [t]);
  }
  const netByName = new Map<string, string>();
  for (const n of cache.networks.values()) netByName.set(n.spec?.name ?? '', n.id);
  const services: NetworkState['services'] = [];
  for (const s of cache.services.values()) {
    if (!s.spec) continue;
    services.push({
      serviceId: s.id,
      serviceName: s.spec.name,
      mode: s.spec.endpoint?.mode ?? 'VIP',
      virtualIps: s.endpoint?.virtualIps ?? [],
      ports: (s.endpoint?.ports ?? []).filter((p) => p.publishMode !== 'HOST'),
      networks: serviceNetworks(s, netByName),
      aliases: (s.spec.networkAliases ?? []).map((a) => ({ network: netByName.get(a.network) ?? '', aliases: a.aliases })).filter((a) => a.network && a.aliases.length),
      tasks: (byService.get(s.id) ?? []).map((t) => ({
        taskId: t.id,
        nodeId: t.nodeId,
        addresses: t.networks.flatMap((a) => a.addresses.map((x) => x.split('/')[0])),
        ready: t.status?.state === 'RUNNING' && t.status.health !== 'unhealthy' && t.status.health !== 'starting',
        slot: t.slot,
      })),
    });
  }
  const ranges = [cache.cluster?.clusterCidr, cache.cluster?.vipCidr].filter((c): c is string => !!c).map(parseCidr);
  const inCluster = (a: string) => ranges.some((r) => contains(r, a));
  return {
    version,
    services,
    nodes: [...cache.nodes.values()].map((n) => ({ nodeId: n.id, addr: n.status?.addr ?? '', subnet: n.subnet, up: cache.alive.has(n.id), addresses: otherAddresses(n, inCluster) })),
    networks: [...cache.networks.values()],
    clusterCidr: cache.cluster?.clusterCidr ?? '',
    vipCidr: cache.cluster?.vipCidr ?? '',
    bindAllow: cache.cluster?.bindAllow ?? [],
  };
}

/** A node's IPv4 addresses besides its underlay one, without the cluster's own ranges (its bridge address is a task gateway, handled by each node). */
function otherAddresses(n: Node, inCluster: (a: string) => boolean): string[] {
  return (n.description?.addresses ?? []).filter((a) => a !== n.status?.addr && !a.startsWith('127.') && !inCluster(a));
}

function serviceNetworks(s: Service, byName: Map<string, string>): string[] {
  const names = s.spec?.networks?.length ? s.spec.networks : [DEFAULT_NETWORK];
  return names.map((n) => byName.get(n) ?? '').filter(Boolean);
}

/** What a NetworkState is sent on: a Network stream (a fake in tests). */
export interface NetworkSink {
  write(st: NetworkState): unknown;
}

/**
 * The NetworkState of every Network stream of one manager. Every node's
 * stream carries the same, whole state (every service's endpoints), so on a
 * change it is built once, and sent only when its content changed: a task
 * without networks, a status report that does not change readiness, a
 * heartbeat-driven node write change nothing an agent is programmed from,
 * and used to cost one build and one encoding per stream (a 1,000-node
 * cluster with 10,000 tasks: 1,000 encodings of ~1 MB, up to 20 times a
 * second). Encoded once for all streams too (`sharedEncoding`). A stream
 * that opens is sent the current state at once; each stream is sent a
 * version once.
 */
export class NetworkPublisher<S extends NetworkSink = NetworkSink> {
  private version = 0;
  private latest: { state: NetworkState; content: Buffer } | undefined;
  private dirty = true;
  /** Each stream → the version it was last sent. */
  private readonly sent = new Map<S, number>();
  /** States built (tests, the bench's figures). */
  builds = 0;

  /**
   * @param build the state now, at `version`
   * @param encode the state's wire encoding, to compare contents (version 0)
   */
  constructor(
    private readonly build: (version: number) => NetworkState,
    private readonly encode: (st: NetworkState) => Buffer,
  ) {}

  /** Something the state is built from changed: the next current() or flush() builds it again. */
  changed(): void {
    this.dirty = true;
  }

  get size(): number {
    return this.sent.size;
  }

  streams(): IterableIterator<S> {
    return this.sent.keys();
  }

  /** A new stream: sent the current state now. */
  add(s: S): void {
    this.sent.set(s, 0);
    this.sendTo(s, this.current());
  }

  delete(s: S): boolean {
    return this.sent.delete(s);
  }

  clear(): void {
    this.sent.clear();
  }

  /** The current state, built again only after a change, and a new version only when its content differs. */
  current(): NetworkState {
    if (this.latest && !this.dirty) return this.latest.state;
    this.dirty = false;
    this.builds++;
    const st = this.build(0);
    const content = this.encode(st);
    if (this.latest && content.equals(this.latest.content)) return this.latest.state;
    // Not yet sent anywhere: the version is set before any stream sees the object.
    const state = { ...st, version: ++this.version };
    this.latest = { state, content };
    return state;
  }

  /** Sends the current state to every stream that has not had it. */
  flush(): void {
    if (!this.sent.size) return;
    const st = this.current();
    for (const s of this.sent.keys()) this.sendTo(s, st);
  }

  private sendTo(s: S, st: NetworkState): void {
    if (this.sent.get(s) === st.version) return;
    this.sent.set(s, st.version);
    s.write(st);
  }
}

/**
 * A serializer that encodes an object once however many streams it is
 * written to: grpc-js serializes on every write, and the same NetworkState
 * object goes to every node's stream. Keyed by the object itself (weakly),
 * so it is only ever a cache of that object's own bytes; the objects sent
 * are never changed after they are built.
 */
export function sharedEncoding<T extends object>(serialize: (v: T) => Buffer): (v: T) => Buffer {
  const done = new WeakMap<T, Buffer>();
  return (v: T) => {
    let b = done.get(v);
    if (!b) done.set(v, (b = serialize(v)));
    return b;
  };
}
