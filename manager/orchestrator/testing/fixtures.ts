// Fixtures for the reconcilers' unit tests: small object builders and a
// simulated store that applies a tick's writes the way the leader's commit
// does (bumping meta.version), plus a fake "agent" that moves tasks along.
import type { Cluster, Network, Node, Service, ServiceSpec, Task, TaskStateName } from '../../../proto/mod';
import { withDefaults } from '../../spec/defaults';
import { isNetwork, isNode, isService, isTask, type ClusterSnapshot } from '../../state/snapshot';
import type { Write } from '../../store/store';
import { reconcile, type ReconcileOptions, type ReconcileResult } from '../../reconcile';

export const GiB = 1024 ** 3;

export interface NodeOpts {
  labels?: Record<string, string>;
  state?: 'NODE_READY' | 'NODE_DOWN' | 'NODE_DISCONNECTED' | 'NODE_UNKNOWN';
  availability?: 'ACTIVE' | 'PAUSE' | 'DRAIN';
  mem?: number;
  cpus?: number;
  arch?: string;
  role?: 'WORKER' | 'MANAGER';
  subnet?: string;
}

export function node(id: string, o: NodeOpts = {}): Node {
  return {
    id,
    meta: { version: 1, createdAt: 0, updatedAt: 0 },
    spec: { role: o.role ?? 'WORKER', availability: o.availability ?? 'ACTIVE', labels: o.labels ?? {} },
    description: {
      hostname: `host-${id}`,
      platform: { os: 'linux', arch: o.arch ?? 'amd64' },
      resources: { nanoCpus: (o.cpus ?? 4) * 1e9, memoryBytes: o.mem ?? 8 * GiB, pids: 0 },
      engineLabels: {},
      listeningTcp: [],
      listeningUdp: [],
      addresses: [],
    },
    status: { state: o.state ?? 'NODE_READY', message: '', addr: '', updatedAt: 0 },
    subnet: o.subnet ?? '',
    sessionId: '',
    leaseId: 0,
    usage: null,
  };
}

export function service(id: string, s: Partial<ServiceSpec> = {}, o: { specVersion?: number } = {}): Service {
  const spec = withDefaults({ name: id, replicas: 3, container: { image: 'reg/x:1' }, ...s } as ServiceSpec);
  return { id, meta: { version: 1, createdAt: 0, updatedAt: 0 }, spec, previousSpec: null, specVersion: o.specVersion ?? 1, updateStatus: null, endpoint: null, jobStatus: null };
}

export function cluster(o: Partial<Cluster> = {}): Cluster {
  return {
    id: 'default',
    meta: { version: 1, createdAt: 0, updatedAt: 0 },
    workerTokenHash: '',
    managerTokenHash: '',
    clusterCidr: '10.42.0.0/16',
    vipCidr: '10.43.0.0/16',
    bindAllow: [],
    allowPrivileged: false,
    ingressPortMin: 30000,
    ingressPortMax: 32767,
    createdAt: 0,
    clusterId: 'test-cluster',
    certExpiryMs: 0,
    ...o,
  };
}

export function counter(prefix = 'id'): () => string {
  let n = 0;
  return () => `${prefix}${String(++n).padStart(6, '0')}`;
}

/** A store in memory: applies writes as the leader's commit would. */
export class Sim {
  now = 1_000_000;
  revision = 1;
  services = new Map<string, Service>();
  tasks = new Map<string, Task>();
  nodes = new Map<string, Node>();
  networks = new Map<string, Network>();
  cluster = cluster();
  last?: ReconcileResult;
  readonly opts: ReconcileOptions;

  constructor(o: { services?: Service[]; nodes?: Node[]; tasks?: Task[]; opts?: ReconcileOptions } = {}) {
    for (const s of o.services ?? []) this.services.set(s.id, s);
    for (const n of o.nodes ?? []) this.nodes.set(n.id, n);
    for (const t of o.tasks ?? []) this.tasks.set(t.id, t);
    this.opts = { newId: counter('t'), ...(o.opts ?? {}) };
  }

  snapshot(): ClusterSnapshot {
    return { revision: this.revision, now: this.now, cluster: this.cluster, services: new Map(this.services), tasks: new Map(this.tasks), nodes: new Map(this.nodes), networks: new Map(this.networks) };
  }

  apply(writes: Write[]): void {
    const v = ++this.revision;
    const meta = (m: { createdAt: number } | null) => ({ version: v, createdAt: m?.createdAt || this.now, updatedAt: this.now });
    for (const w of writes) applyWrite(this, w, meta);
  }

  tick(opts: ReconcileOptions = {}): ReconcileResult {
    const r = reconcile(this.snapshot(), { ...this.opts, ...opts });
    this.apply(r.writes);
    this.last = r;
    return r;
  }

  /** Ticks until nothing is written (at most n times). */
  settle(n = 10): ReconcileResult {
    let r = this.tick();
    for (let i = 1; i < n && r.writes.length; i++) r = this.tick();
    return r;
  }

  /** The agents: every task matching `pick` moves to `state` (observed), stamped now. */
  report(pick: (t: Task) => boolean, state: TaskStateName, extra: Partial<Task['status'] & object> = {}): Task[] {
    const moved: Task[] = [];
    for (const t of this.tasks.values()) {
      if (!pick(t)) continue;
      const nt: Task = { ...t, meta: { ...t.meta!, version: ++this.revision }, status: { ...t.status!, state, timestamp: this.now, message: state.toLowerCase(), ...extra } };
      this.tasks.set(t.id, nt);
      moved.push(nt);
    }
    return moved;
  }

  /** Agents start what was assigned to them, and stop what they were told to stop. */
  agentsRun(): void {
    this.report((t) => t.desiredState === 'RUNNING' && ['ASSIGNED', 'ACCEPTED', 'PREPARING', 'STARTING'].includes(t.status?.state ?? ''), 'RUNNING');
    this.report((t) => t.desiredState !== 'RUNNING' && t.desiredState !== 'COMPLETE' && !!t.nodeId && ['ASSIGNED', 'ACCEPTED', 'PREPARING', 'STARTING', 'RUNNING'].includes(t.status?.state ?? ''), 'SHUTDOWN');
  }

  setNode(id: string, f: (n: Node) => Node): void {
    this.nodes.set(id, f(this.nodes.get(id)!));
  }

  setService(id: string, f: (s: Service) => Service): void {
    this.services.set(id, f(this.services.get(id)!));
  }

  of(serviceId: string): Task[] {
    return [...this.tasks.values()].filter((t) => t.serviceId === serviceId);
  }

  /** Desired running and not ended. */
  live(serviceId: string): Task[] {
    return this.of(serviceId).filter((t) => t.desiredState === 'RUNNING' && !['COMPLETE', 'SHUTDOWN', 'FAILED', 'REJECTED', 'REMOVE', 'ORPHANED'].includes(t.status?.state ?? ''));
  }
}

type Meta = (m: { createdAt: number } | null) => { version: number; createdAt: number; updatedAt: number };

/** One write applied to maps of objects (the Sim, the benchmark's second tick). */
export function applyWrite(
  to: { tasks: Map<string, Task>; services: Map<string, Service>; nodes: Map<string, Node>; networks: Map<string, Network> },
  w: Write,
  meta: Meta,
): void {
  const o = w.obj;
  if (w.kind === 'tasks' && isTask(o)) {
    if (w.op === 'delete') to.tasks.delete(o.id);
    else to.tasks.set(o.id, { ...o, meta: meta(o.meta) });
  } else if (w.kind === 'services' && isService(o)) to.services.set(o.id, { ...o, meta: meta(o.meta) });
  else if (w.kind === 'nodes' && isNode(o)) to.nodes.set(o.id, { ...o, meta: meta(o.meta) });
  else if (w.kind === 'networks' && isNetwork(o)) to.networks.set(o.id, { ...o, meta: meta(o.meta) });
}
