// The Dispatcher API (proto/dispatcher.proto), served by every manager:
// sessions bound to an etcd lease (the node is alive while the lease is),
// heartbeats, per-node assignment streams (a COMPLETE set, then INCREMENTAL
// changes naming the version they apply to), batched forward-only task
// status updates, and the NetworkState stream. Assignments and network state
// are computed from the manager's StateCache, so a change costs work
// proportional to what changed, not to the cluster's size.
import * as grpc from '@grpc/grpc-js';
import type { Etcd3, Lease } from 'etcd3';
import {
  isForward,
  isTerminal,
  type DispatcherHandlers,
  type Node,
  type NetworkState,
  type Service,
  type Task,
} from '../proto/mod';
import type { Logger } from '../common/logger';
import { ApiError, grpcError, unaryWith } from './api';
import type { ManagerObserver } from './hooks';
import { newId } from './ids';
import type { Change, StateCache } from './state/cache';
import { key, type Store, type Write } from './store/store';
import { DEFAULT_NETWORK } from './allocator/allocator';

export interface DispatcherDeps {
  store: Store;
  cache: StateCache;
  client: Etcd3;
  heartbeatMs: number;
  natsUrl: () => string;
  managerId: string;
  log: Logger;
  observer: ManagerObserver;
  /** Checks a join token; throws PERMISSION_DENIED when it is wrong. */
  checkToken(token: string): Promise<'WORKER' | 'MANAGER'>;
}

/** Debounce of cache changes before assignment and network pushes. */
const PUSH_DEBOUNCE_MS = 10;
/** At most one NetworkState build per this interval under churn. */
const NETWORK_MIN_INTERVAL_MS = 50;

interface AssignmentStream {
  nodeId: string;
  call: grpc.ServerWritableStream<unknown, unknown>;
  /** task id → signature of what the agent was last sent. */
  sent: Map<string, string>;
  version: number;
}

/** What the agent of a node must know of: placed (ASSIGNED or later) and not finished with. */
export function visibleToAgent(t: Task): boolean {
  const st = t.status?.state ?? 'NEW';
  if (st === 'NEW' || st === 'PENDING') return false;
  return t.desiredState === 'RUNNING' || !isTerminal(st);
}

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
      tasks: (byService.get(s.id) ?? []).map((t) => ({
        taskId: t.id,
        nodeId: t.nodeId,
        addresses: t.networks.flatMap((a) => a.addresses.map((x) => x.split('/')[0])),
        ready: t.status?.state === 'RUNNING' && t.status.health !== 'unhealthy' && t.status.health !== 'starting',
        slot: t.slot,
      })),
    });
  }
  return {
    version,
    services,
    nodes: [...cache.nodes.values()].map((n) => ({ nodeId: n.id, addr: n.status?.addr ?? '', subnet: n.subnet, up: cache.alive.has(n.id) })),
    networks: [...cache.networks.values()],
    clusterCidr: cache.cluster?.clusterCidr ?? '',
    vipCidr: cache.cluster?.vipCidr ?? '',
  };
}

function serviceNetworks(s: Service, byName: Map<string, string>): string[] {
  const names = s.spec?.networks?.length ? s.spec.networks : [DEFAULT_NETWORK];
  return names.map((n) => byName.get(n) ?? '').filter(Boolean);
}

export function createDispatcher(d: DispatcherDeps): { handlers: DispatcherHandlers; onChange(c: Change): void; close(): void } {
  const { store, cache, client, log } = d;
  const unary = unaryWith(() => undefined);
  const sessions = new Map<string, { nodeId: string; lease: Lease }>();
  const streamsByNode = new Map<string, Set<AssignmentStream>>();
  const networkStreams = new Set<grpc.ServerWritableStream<unknown, unknown>>();
  /** Open Session streams: they are told when the set of managers changes. */
  const sessionStreams = new Map<string, grpc.ServerWritableStream<unknown, unknown>>();
  const managerList = () => [...cache.managers].map(([id, addr]) => ({ id, addr }));
  const leaseTtlS = Math.max(2, Math.ceil((3 * d.heartbeatMs) / 1000));

  const changesFor = (s: AssignmentStream) => {
    const now = new Map<string, Task>();
    for (const t of cache.tasksOnNode(s.nodeId)) if (visibleToAgent(t)) now.set(t.id, t);
    const changes: { action: 'UPDATE' | 'REMOVE'; task: Task }[] = [];
    for (const [tid, t] of now) {
      const sig = `${t.desiredState}/${t.specVersion}`;
      if (s.sent.get(tid) !== sig) {
        changes.push({ action: 'UPDATE', task: t });
        s.sent.set(tid, sig);
      }
    }
    for (const tid of [...s.sent.keys()]) {
      if (now.has(tid)) continue;
      changes.push({ action: 'REMOVE', task: cache.tasks.get(tid) ?? ({ id: tid } as Task) });
      s.sent.delete(tid);
    }
    return changes;
  };

  // ---- pushes on cache changes -------------------------------------------
  const dirtyNodes = new Set<string>();
  let allDirty = false;
  let assignTimer: NodeJS.Timeout | undefined;
  const flushAssignments = () => {
    assignTimer = undefined;
    const nodes = allDirty ? [...streamsByNode.keys()] : [...dirtyNodes];
    allDirty = false;
    dirtyNodes.clear();
    for (const nodeId of nodes) {
      for (const s of streamsByNode.get(nodeId) ?? []) {
        const changes = changesFor(s);
        if (!changes.length) continue;
        const from = `v${s.version}`;
        s.version++;
        s.call.write({ type: 'INCREMENTAL', appliesTo: from, resultsIn: `v${s.version}`, changes });
      }
    }
  };
  let netVersion = 0;
  let netTimer: NodeJS.Timeout | undefined;
  let lastNetBuild = 0;
  const flushNetwork = () => {
    netTimer = undefined;
    if (!networkStreams.size) return;
    lastNetBuild = Date.now();
    const st = buildNetworkState(cache, ++netVersion);
    for (const c of networkStreams) c.write(st);
  };
  const scheduleNetwork = () => {
    if (netTimer || !networkStreams.size) return;
    netTimer = setTimeout(flushNetwork, Math.max(PUSH_DEBOUNCE_MS, lastNetBuild + NETWORK_MIN_INTERVAL_MS - Date.now()));
  };

  const onChange = (c: Change) => {
    if (c.reset) allDirty = true;
    for (const n of c.taskNodes) if (streamsByNode.has(n)) dirtyNodes.add(n);
    if ((allDirty || dirtyNodes.size) && !assignTimer) assignTimer = setTimeout(flushAssignments, PUSH_DEBOUNCE_MS);
    if (c.reset || c.tasks.size || c.services.size || c.nodes.size || c.networks || c.cluster) scheduleNetwork();
    if (c.managers || c.reset) {
      const managers = managerList();
      for (const [sessionId, call] of sessionStreams) call.write({ sessionId, node: null, managers, heartbeatPeriodMs: d.heartbeatMs, natsUrl: d.natsUrl() });
    }
  };

  const sessionOf = (sessionId: string) => {
    const s = sessions.get(sessionId);
    if (!s) throw new ApiError(grpc.status.NOT_FOUND, 'session invalid');
    return s;
  };

  const handlers: DispatcherHandlers = {
    Session(call) {
      (async () => {
        const role = await d.checkToken(call.request.joinToken);
        const desc = call.request.description;
        const existing = call.request.nodeId ? await store.get<Node>('nodes', call.request.nodeId) : undefined;
        const nodeId = existing?.id ?? (call.request.nodeId || newId());
        const base: Node = existing ?? {
          id: nodeId,
          meta: null,
          spec: { role, availability: 'ACTIVE', labels: { ...(call.request.labels ?? {}) } },
          description: null,
          status: null,
          subnet: '',
          sessionId: '',
          leaseId: 0,
        };
        const lease = client.lease(leaseTtlS, { autoKeepAlive: false });
        const leaseId = Number(await lease.grant());
        const sessionId = newId();
        const node: Node = {
          ...base,
          description: desc,
          status: { state: 'NODE_READY', message: '', addr: call.request.addr, updatedAt: Date.now() },
          sessionId,
          leaseId,
        };
        await store.put('nodes', node, !base.meta);
        await lease.put(key('alive', nodeId)).value(sessionId);
        sessions.set(sessionId, { nodeId, lease });
        call.write({
          sessionId,
          node,
          managers: managerList(),
          heartbeatPeriodMs: d.heartbeatMs,
          natsUrl: d.natsUrl(),
        });
        sessionStreams.set(sessionId, call as grpc.ServerWritableStream<unknown, unknown>);
        log.info('node session', { 'node.id': nodeId, 'node.hostname': desc?.hostname ?? '' });
        if (!existing) d.observer.event({ type: 'node', action: 'joined', time: Date.now(), source: `manager/${d.managerId}`, nodeId, hostname: desc?.hostname ?? '' });
        call.on('cancelled', () => sessionStreams.delete(sessionId));
      })().catch((e) => call.emit('error', grpcError(e)));
    },
    Heartbeat: unary('Heartbeat', async (req: { sessionId: string }) => {
      const s = sessionOf(req.sessionId);
      await s.lease.keepaliveOnce();
      return { periodMs: d.heartbeatMs };
    }),
    Assignments(call) {
      const s = sessions.get(call.request.sessionId);
      if (!s) {
        call.emit('error', grpcError(new ApiError(grpc.status.NOT_FOUND, 'session invalid')));
        return;
      }
      const st: AssignmentStream = { nodeId: s.nodeId, call: call as grpc.ServerWritableStream<unknown, unknown>, sent: new Map(), version: 1 };
      const changes = changesFor(st);
      call.write({ type: 'COMPLETE', appliesTo: '', resultsIn: 'v1', changes: changes.filter((c) => c.action === 'UPDATE') });
      let set = streamsByNode.get(s.nodeId);
      if (!set) streamsByNode.set(s.nodeId, (set = new Set()));
      set.add(st);
      call.on('cancelled', () => {
        set!.delete(st);
        if (!set!.size) streamsByNode.delete(s.nodeId);
      });
    },
    UpdateTaskStatus: unary('UpdateTaskStatus', async (req: { sessionId: string; updates: { taskId: string; status: Task['status'] }[] }) => {
      const s = sessionOf(req.sessionId);
      // The newest status per task wins within one batch.
      const latest = new Map<string, Task['status']>();
      for (const u of req.updates) if (u.status) latest.set(u.taskId, u.status);
      let pending = [...latest.keys()];
      for (let attempt = 0; attempt < 4 && pending.length; attempt++) {
        // First from the cache; after a lost race, from etcd.
        const tasks = attempt === 0 ? pending.map((id) => cache.tasks.get(id)) : await Promise.all(pending.map((id) => store.get<Task>('tasks', id)));
        const writes: Write[] = [];
        pending.forEach((id, i) => {
          const t = tasks[i];
          const st = latest.get(id)!;
          if (!t || t.nodeId !== s.nodeId || !st) return;
          if (!isForward(t.status?.state ?? 'NEW', st.state)) return;
          writes.push({ op: 'update', kind: 'tasks', obj: { ...t, status: st } });
        });
        if (!writes.length) return {};
        const r = await store.batch(writes);
        if (!r.dropped) return {};
        // Retry only what is still behind: re-read all of them (cheap, rare).
        pending = writes.map((w) => w.obj.id);
      }
      return {};
    }),
    Network(call) {
      const s = sessions.get(call.request.sessionId);
      if (!s) {
        call.emit('error', grpcError(new ApiError(grpc.status.NOT_FOUND, 'session invalid')));
        return;
      }
      const c = call as grpc.ServerWritableStream<unknown, unknown>;
      networkStreams.add(c);
      c.write(buildNetworkState(cache, ++netVersion));
      call.on('cancelled', () => networkStreams.delete(c));
    },
  };

  return {
    handlers,
    onChange,
    close() {
      if (assignTimer) clearTimeout(assignTimer);
      if (netTimer) clearTimeout(netTimer);
      for (const set of streamsByNode.values()) for (const s of set) s.call.end();
      for (const c of networkStreams) c.end();
      for (const c of sessionStreams.values()) c.end();
      sessionStreams.clear();
      for (const s of sessions.values()) s.lease.release();
      streamsByNode.clear();
      networkStreams.clear();
    },
  };
}


