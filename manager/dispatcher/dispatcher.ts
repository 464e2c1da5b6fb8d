// The Dispatcher API (proto/dispatcher.proto), served by every manager:
// sessions bound to a store lease (the node is alive while the lease is),
// kept in a session table (./sessions.ts) that refuses an expired or
// replaced session with NOT_FOUND; heartbeats; per-node assignment streams
// (./assignments.ts); batched forward-only task status updates
// (./status.ts); the NetworkState stream (./network.ts). Assignments and
// network state are computed from the manager's StateCache, so a change
// costs work proportional to what changed, not to the cluster's size.
import { performance } from 'node:perf_hooks';
import * as grpc from '@grpc/grpc-js';
import type { DispatcherHandlers, Node, Task } from '../../proto/mod';
import type { Logger } from '../../common/logger';
import { ApiError, grpcError, invalid as invalidArgument, unaryWith } from '../api';
import type { ManagerObserver } from '../hooks';
import { newId } from '../ids';
import { validateNodeDescription, validateNodeSpec } from '../spec/objects';
import type { Change, StateCache } from '../state/cache';
import { LeaseNotFoundError, type Store } from '../store/store';
import { AssignmentView } from './assignments';
import { buildNetworkState } from './network';
import { SessionTable, type Session } from './sessions';
import { applyStatusUpdates } from './status';

export { visibleToAgent } from './assignments';
export { buildNetworkState } from './network';

export interface DispatcherDeps {
  store: Store;
  cache: StateCache;
  heartbeatMs: number;
  natsUrl: () => string;
  managerId: string;
  log: Logger;
  observer: ManagerObserver;
  /** Checks a join token; throws PERMISSION_DENIED when it is wrong. */
  checkToken(token: string): Promise<'WORKER' | 'MANAGER'>;
  /** The session table's clock (tests give the MemoryStore's fake clock). */
  now?: () => number;
}

/** Debounce of cache changes before assignment and network pushes. */
const PUSH_DEBOUNCE_MS = 10;
/**
 * Work of one slice of an assignments flush before the event loop gets a
 * turn: 100,000 new tasks on 1,000 streams are seconds of diffing and
 * encoding, and heartbeats (the agents' session leases) wait on this loop.
 */
const FLUSH_SLICE_MS = 20;
/** At most one NetworkState build per this interval under churn. */
const NETWORK_MIN_INTERVAL_MS = 50;
/**
 * Heartbeat periods a session lease lives without a heartbeat: a node is
 * down after about three missed ones (the agent heartbeats at 0.8 of the
 * period, so one late or lost heartbeat never costs the session).
 */
const LEASE_PERIODS = 3;
/** Shortest session lease etcd is worth asking for. */
const MIN_LEASE_TTL_S = 2;

type Writable = grpc.ServerWritableStream<unknown, unknown>;

const invalid = (why: string) => new ApiError(grpc.status.NOT_FOUND, why);

/** Ends a server stream with NOT_FOUND (the agent registers again). */
function endInvalid(call: Writable, why: string): void {
  call.emit('error', grpcError(invalid(why)));
}

export interface Dispatcher {
  handlers: DispatcherHandlers;
  onChange(c: Change): void;
  /** Sessions open now (tests, metrics). */
  sessions: SessionTable;
  close(): void;
}

export function createDispatcher(d: DispatcherDeps): Dispatcher {
  const { store, cache, log } = d;
  const unary = unaryWith(() => undefined, log);
  const leaseTtlS = Math.max(MIN_LEASE_TTL_S, Math.ceil((LEASE_PERIODS * d.heartbeatMs) / 1000));
  const table = new SessionTable(d.now ?? Date.now, leaseTtlS * 1000);
  const assignmentStreams = new Map<string, Set<{ view: AssignmentView; call: Writable }>>();
  const networkStreams = new Set<Writable>();
  /** Open Session streams: they are told when the set of managers changes. */
  const sessionStreams = new Map<string, Writable>();
  const managerList = () => [...cache.managers].map(([id, addr]) => ({ id, addr }));

  /**
   * The session a call names, if it is still this node's session: known
   * here, not expired, and not replaced by a later registration on another
   * manager (the node object, once the cache has seen the registration,
   * names its current session).
   */
  const live = (sessionId: string): Session | undefined => {
    const s = table.get(sessionId);
    if (!s) return undefined;
    const n = cache.nodes.get(s.nodeId);
    if (cache.revision >= s.revision && n && n.sessionId && n.sessionId !== s.id) {
      table.end(s.id, 'replaced');
      return undefined;
    }
    return s;
  };
  const sessionOf = (sessionId: string): Session => {
    const s = live(sessionId);
    if (!s) throw invalid('session invalid');
    return s;
  };

  // ---- pushes on cache changes -------------------------------------------
  const dirtyNodes = new Set<string>();
  let allDirty = false;
  let assignTimer: NodeJS.Timeout | undefined;
  let closed = false;
  /** A flush is running: changes meanwhile wait for the next one (one flush at a time, as when flushes were synchronous). */
  let flushing = false;
  /** The dirty nodes' streams get their changes, in slices of FLUSH_SLICE_MS. */
  const flushAssignments = async () => {
    assignTimer = undefined;
    flushing = true;
    try {
      await flushSliced();
    } finally {
      flushing = false;
    }
    if (!closed && (allDirty || dirtyNodes.size) && !assignTimer) assignTimer = setTimeout(() => void flushAssignments(), PUSH_DEBOUNCE_MS);
  };
  const flushSliced = async () => {
    const nodes = allDirty ? [...assignmentStreams.keys()] : [...dirtyNodes];
    allDirty = false;
    dirtyNodes.clear();
    let t0 = performance.now();
    for (const nodeId of nodes) {
      if (closed) return;
      // Each stream's message is computed and written in one go, so streams stay consistent
      // across slices; a node dirtied again meanwhile is in the next flush.
      for (const s of assignmentStreams.get(nodeId) ?? []) {
        const msg = s.view.incremental(cache);
        if (msg) s.call.write(msg);
      }
      if (performance.now() - t0 >= FLUSH_SLICE_MS) {
        await new Promise<void>((r) => setImmediate(r));
        t0 = performance.now();
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
    for (const n of c.taskNodes) if (assignmentStreams.has(n)) dirtyNodes.add(n);
    if ((allDirty || dirtyNodes.size) && !assignTimer && !flushing) assignTimer = setTimeout(() => void flushAssignments(), PUSH_DEBOUNCE_MS);
    if (c.reset || c.tasks.size || c.services.size || c.nodes.size || c.networks || c.cluster) scheduleNetwork();
    // A registration elsewhere replaced one of ours: end it now, not at its next call.
    for (const nodeId of c.reset ? [...table.all().map((s) => s.nodeId)] : c.nodes) {
      const s = table.ofNode(nodeId);
      if (s) live(s.id);
    }
    if (c.managers || c.reset) {
      const managers = managerList();
      for (const [sessionId, call] of sessionStreams) call.write({ sessionId, node: null, managers, heartbeatPeriodMs: d.heartbeatMs, natsUrl: d.natsUrl() });
    }
  };

  // Sessions whose lease lapsed end without waiting for their next call.
  const sweeper = setInterval(() => {
    for (const s of table.sweep()) log.info('session expired', { 'node.id': s.nodeId, 'session.id': s.id });
  }, d.heartbeatMs);
  sweeper.unref();

  /** Registers the node: its object (created or updated, CAS-retried), then its liveness key under a new lease. */
  const register = async (req: Parameters<DispatcherHandlers['Session']>[0]['request']) => {
    const role = await d.checkToken(req.joinToken);
    // What the agent says about its host and the labels it proposes are bounded like specs.
    const described = validateNodeDescription(req.description ?? {});
    if (!described.ok) throw invalidArgument(described.errors);
    const labelled = validateNodeSpec({ labels: req.labels ?? {} });
    if (!labelled.ok) throw invalidArgument(labelled.errors);
    const desc = described.spec;
    const lease = await store.grantLease(leaseTtlS);
    const sessionId = newId();
    const nodeId = req.nodeId || newId();
    let joined = false;
    try {
      const node = (await store.update<Node>('nodes', nodeId, (cur) => {
        joined = !cur;
        const base: Node = cur ?? {
          id: nodeId,
          meta: null,
          spec: { role, availability: 'ACTIVE', labels: { ...labelled.spec.labels } },
          description: null,
          status: null,
          subnet: '',
          sessionId: '',
          leaseId: 0,
        };
        return { ...base, description: desc, status: { state: 'NODE_READY', message: '', addr: req.addr, updatedAt: Date.now() }, sessionId, leaseId: Number(lease.id) };
      }))!;
      await lease.put('alive', nodeId, sessionId);
      return { node, lease, sessionId, joined };
    } catch (e) {
      await lease.revoke().catch(() => undefined);
      throw e;
    }
  };

  const handlers: DispatcherHandlers = {
    Session(call) {
      const c = call as Writable;
      let sessionId = '';
      let gone = false;
      call.on('cancelled', () => {
        gone = true;
        sessionStreams.delete(sessionId);
        if (sessionId) table.end(sessionId, 'closed');
      });
      (async () => {
        const { node, lease, sessionId: sid, joined } = await register(call.request);
        if (gone) {
          // The agent gave up while we registered: nothing holds this session.
          lease.release();
          return;
        }
        sessionId = sid;
        const s = table.add({ id: sid, nodeId: node.id, lease, revision: node.meta?.version ?? 0 });
        s.streams.add({
          end: (why) => {
            sessionStreams.delete(sid);
            if (!gone) endInvalid(c, why);
          },
        });
        c.write({ sessionId: sid, node, managers: managerList(), heartbeatPeriodMs: d.heartbeatMs, natsUrl: d.natsUrl() });
        sessionStreams.set(sid, c);
        const hostname = call.request.description?.hostname ?? '';
        log.info('node session', { 'node.id': node.id, 'node.hostname': hostname, 'session.id': sid });
        if (joined) d.observer.event({ type: 'node', action: 'joined', time: Date.now(), source: `manager/${d.managerId}`, nodeId: node.id, hostname });
      })().catch((e) => {
        if (!gone) c.emit('error', grpcError(e, log));
      });
    },
    Heartbeat: unary('Heartbeat', async (req: { sessionId: string }) => {
      const s = sessionOf(req.sessionId);
      try {
        await s.lease.keepAlive();
      } catch (e) {
        if (e instanceof LeaseNotFoundError) {
          table.end(s.id, 'expired');
          throw invalid('session invalid: its lease lapsed');
        }
        throw e;
      }
      table.keptAlive(s);
      return { periodMs: d.heartbeatMs };
    }),
    Assignments(call) {
      const c = call as Writable;
      const s = live(call.request.sessionId);
      if (!s) return endInvalid(c, 'session invalid');
      const entry = { view: new AssignmentView(s.nodeId), call: c };
      c.write(entry.view.complete(cache));
      let set = assignmentStreams.get(s.nodeId);
      if (!set) assignmentStreams.set(s.nodeId, (set = new Set()));
      set.add(entry);
      const drop = () => {
        set!.delete(entry);
        if (!set!.size && assignmentStreams.get(s.nodeId) === set) assignmentStreams.delete(s.nodeId);
        s.streams.delete(stream);
      };
      const stream = {
        end: (why: string) => {
          drop();
          endInvalid(c, why);
        },
      };
      s.streams.add(stream);
      call.on('cancelled', drop);
    },
    UpdateTaskStatus: unary('UpdateTaskStatus', async (req: { sessionId: string; updates: { taskId: string; status: Task['status'] }[] }) => {
      const s = sessionOf(req.sessionId);
      await applyStatusUpdates(store, cache, s.nodeId, req.updates);
      return {};
    }),
    Network(call) {
      const c = call as Writable;
      const s = live(call.request.sessionId);
      if (!s) return endInvalid(c, 'session invalid');
      networkStreams.add(c);
      c.write(buildNetworkState(cache, ++netVersion));
      const stream = {
        end: (why: string) => {
          networkStreams.delete(c);
          endInvalid(c, why);
        },
      };
      s.streams.add(stream);
      call.on('cancelled', () => {
        networkStreams.delete(c);
        s.streams.delete(stream);
      });
    },
  };

  return {
    handlers,
    onChange,
    sessions: table,
    close() {
      closed = true;
      clearInterval(sweeper);
      if (assignTimer) clearTimeout(assignTimer);
      if (netTimer) clearTimeout(netTimer);
      for (const set of assignmentStreams.values()) for (const s of set) s.call.end();
      for (const c of networkStreams) c.end();
      for (const c of sessionStreams.values()) c.end();
      sessionStreams.clear();
      // The leases are left to lapse: an agent that fails over to another manager keeps its node up.
      for (const s of table.all()) s.lease.release();
      assignmentStreams.clear();
      networkStreams.clear();
    },
  };
}
