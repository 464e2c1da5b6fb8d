// The Dispatcher API (proto/dispatcher.proto), served by every manager:
// sessions bound to a store lease (the node is alive while the lease is),
// kept in a session table (./sessions.ts) that refuses an expired or
// replaced session with NOT_FOUND; heartbeats; per-node assignment streams
// (./assignments.ts); forward-only task status updates, the calls of all
// sessions coalesced into one commit at a time (./status.ts); the
// NetworkState stream (./network.ts). Assignments and network state are computed from the manager's StateCache, so a change
// costs work proportional to what changed, not to the cluster's size.
import { isIP } from 'node:net';
import { performance } from 'node:perf_hooks';
import * as grpc from '@grpc/grpc-js';
import { grpcPackages, type DispatcherHandlers, type NetworkState, type Node, type Task } from '../../proto/mod';
import { errMsg, type Logger } from '../../common/logger';
import type { Identity } from '../../common/identity';
import { identityOf } from '../auth/identity';
import { ApiError, grpcError, invalid as invalidArgument, unaryWith } from '../api';
import type { ManagerObserver } from '../hooks';
import { newId } from '../ids';
import { validateNodeDescription, validateNodeSpec } from '../spec/objects';
import type { Change, StateCache } from '../state/cache';
import { LeaseNotFoundError, type Store } from '../store/store';
import { AssignmentView, type FileOpener } from './assignments';
import { openFile } from '../controlapi/files';
import { buildNetworkState, NetworkPublisher, sharedEncoding } from './network';
import { SessionTable, type Session } from './sessions';
import { StatusCoalescer } from './status';
import type { KeyRing } from '../crypto/kek';

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
  /** The key-encryption key, to open the secrets and configs a node's tasks use; without it none are sent. */
  kek?: KeyRing;
  /**
   * The caller's identity: from its verified certificate (identityOf, the
   * default). Test harnesses on plaintext give their own. Never the request.
   */
  identify?: (call: unknown) => Identity | undefined;
  /** Whether an identity was revoked (manager/ca/): its sessions end and its calls are refused. */
  isRevoked?: (id: string) => boolean;
  /** The session table's clock (tests give the MemoryStore's fake clock). */
  now?: () => number;
}

/** Debounce of cache changes before assignment and network pushes. */
const PUSH_DEBOUNCE_MS = 10;
/**
 * Assignment flushes start at most this often: a quiet cluster's change still
 * goes out PUSH_DEBOUNCE_MS after it, but under a burst every node's stream
 * gets one larger message per interval instead of one per flush round (each
 * message is its own HTTP/2 frames and TLS records on that node's connection).
 */
export const ASSIGN_MIN_INTERVAL_MS = 100;
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

/**
 * Open streams per session (its Session stream included). An agent holds
 * three (Session, Assignments, Network) and reopens one after a failure
 * while the old one may not have ended yet; past this a new stream is
 * RESOURCE_EXHAUSTED: a misbehaving or hostile agent cannot make the
 * manager fan every change out to thousands of its streams.
 */
export const MAX_STREAMS_PER_SESSION = 8;

/** Ends a new stream of a session that holds MAX_STREAMS_PER_SESSION already; true when it did. */
function overStreamLimit(call: Writable, open: number): boolean {
  if (open < MAX_STREAMS_PER_SESSION) return false;
  call.emit('error', grpcError(new ApiError(grpc.status.RESOURCE_EXHAUSTED, `session has ${open} open streams (at most ${MAX_STREAMS_PER_SESSION})`)));
  return true;
}

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
  /** NetworkStates built so far (one per flush after a change, whatever the number of streams). */
  networkBuilds(): number;
  close(): void;
}

export function createDispatcher(d: DispatcherDeps): Dispatcher {
  const { store, cache, log } = d;
  const unary = unaryWith(() => undefined, log);
  const leaseTtlS = Math.max(MIN_LEASE_TTL_S, Math.ceil((LEASE_PERIODS * d.heartbeatMs) / 1000));
  const table = new SessionTable(d.now ?? Date.now, leaseTtlS * 1000);
  const assignmentStreams = new Map<string, Set<{ view: AssignmentView; call: Writable }>>();
  /** Every Network stream, and the one state they are all sent (./network.ts). */
  const networkStreams = new NetworkPublisher<Writable>(
    (version) => buildNetworkState(cache, version),
    (st) => networkSerializer()(st),
  );
  /** Open Session streams: they are told when the set of managers changes. */
  const sessionStreams = new Map<string, Writable>();
  /** Every session's status reports, committed together (./status.ts). */
  const statuses = new StatusCoalescer(store, cache);
  const managerList = () => [...cache.managers].map(([id, addr]) => ({ id, addr }));
  const opener: FileOpener = (noun, o) => {
    if (!d.kek) return undefined;
    try {
      return openFile(d.kek, noun, o);
    } catch (e) {
      // Another manager's KEK, or a tampered value: the task fails on its node naming the object.
      log.error(`${noun.kind} does not open`, { [`${noun.kind}.id`]: o.id, [`${noun.kind}.name`]: o.spec?.name ?? '', err: errMsg(e) });
      return undefined;
    }
  };
  const identify = d.identify ?? ((call: unknown) => identityOf(call as Parameters<typeof identityOf>[0]));
  const isRevoked = d.isRevoked ?? ((id: string) => cache.revoked.has(id));

  /** The node behind a call: a node certificate (worker or manager) that is not revoked. */
  const nodeOf = (call: unknown): Identity => {
    const who = identify(call);
    if (!who) throw new ApiError(grpc.status.UNAUTHENTICATED, 'no node certificate: join the cluster with a token first');
    if (who.role !== 'worker' && who.role !== 'manager') throw new ApiError(grpc.status.PERMISSION_DENIED, `a ${who.role} certificate cannot hold a node session`);
    if (isRevoked(who.id)) throw new ApiError(grpc.status.UNAUTHENTICATED, `node ${who.id}: certificate revoked (node removed)`);
    return who;
  };
  /** The session a call names, if it is the caller's own (another node's session id is as good as unknown). */
  const ownSession = (call: unknown, sessionId: string): Session => {
    const who = nodeOf(call);
    const s = sessionOf(sessionId);
    if (s.nodeId !== who.id) throw invalid('session invalid');
    return s;
  };

  /**
   * The session a call names, if it is still this node's session: known
   * here, not expired, and not replaced by a later registration on another
   * manager (the node object, once the cache has seen the registration,
   * names its current session).
   */
  const live = (sessionId: string): Session | undefined => {
    const s = table.get(sessionId);
    if (!s) return undefined;
    if (isRevoked(s.nodeId)) {
      table.end(s.id, 'closed');
      return undefined;
    }
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
  /** When the last flush started (performance.now()). */
  let lastFlush = -Infinity;
  const scheduleAssignments = () => {
    if (closed || assignTimer || flushing || !(allDirty || dirtyNodes.size)) return;
    assignTimer = setTimeout(() => void flushAssignments(), Math.max(PUSH_DEBOUNCE_MS, lastFlush + ASSIGN_MIN_INTERVAL_MS - performance.now()));
  };
  /** The dirty nodes' streams get their changes, in slices of FLUSH_SLICE_MS. */
  const flushAssignments = async () => {
    assignTimer = undefined;
    flushing = true;
    lastFlush = performance.now();
    try {
      await flushSliced();
    } finally {
      flushing = false;
    }
    scheduleAssignments();
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
  let netTimer: NodeJS.Timeout | undefined;
  let lastNetBuild = 0;
  const flushNetwork = () => {
    netTimer = undefined;
    if (!networkStreams.size) return;
    lastNetBuild = Date.now();
    networkStreams.flush();
  };
  const scheduleNetwork = () => {
    if (netTimer || !networkStreams.size) return;
    netTimer = setTimeout(flushNetwork, Math.max(PUSH_DEBOUNCE_MS, lastNetBuild + NETWORK_MIN_INTERVAL_MS - Date.now()));
  };

  const onChange = (c: Change) => {
    // A rotation: every stream whose node holds the object gets the new version (the views tell).
    if (c.reset || c.files) allDirty = true;
    for (const n of c.taskNodes) if (assignmentStreams.has(n)) dirtyNodes.add(n);
    scheduleAssignments();
    if (c.reset || c.tasks.size || c.services.size || c.nodes.size || c.networks || c.cluster) {
      networkStreams.changed();
      scheduleNetwork();
    }
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
  const register = async (who: Identity, req: Parameters<DispatcherHandlers['Session']>[0]['request'], peer: string) => {
    // The underlay address other nodes' VXLAN and load balancers are pointed at: an IP literal, nothing else.
    if (!req.addr || !isIP(req.addr)) throw new ApiError(grpc.status.INVALID_ARGUMENT, `addr: "${String(req.addr ?? '').slice(0, 64)}" is not an IP address`);
    // A new node's role (what `node.role == manager` places by): a manager's certificate, or an agent on a
    // manager's host — it advertises the address a registered manager listens on and its connection comes
    // from that address (a node elsewhere cannot claim it by the request alone). node promote|demote change it later.
    let role: 'MANAGER' | 'WORKER' = who.role === 'manager' ? 'MANAGER' : 'WORKER';
    if (role === 'WORKER' && peer === req.addr && !isLoopbackAddr(req.addr) && !(await store.get<Node>('nodes', who.id)))
      for (const a of (await store.managers()).values()) if (hostOfAddr(a) === req.addr) role = 'MANAGER';
    // What the agent says about its host and the labels it proposes are bounded like specs.
    const described = validateNodeDescription(req.description ?? {});
    if (!described.ok) throw invalidArgument(described.errors);
    const labelled = validateNodeSpec({ labels: req.labels ?? {} });
    if (!labelled.ok) throw invalidArgument(labelled.errors);
    const desc = described.spec;
    const lease = await store.grantLease(leaseTtlS);
    const sessionId = newId();
    // The certificate names the node; whatever id the request carries is ignored.
    const nodeId = who.id;
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
          usage: null,
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
        const { node, lease, sessionId: sid, joined } = await register(nodeOf(call), call.request, hostOfAddr(call.getPeer()));
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
    Heartbeat: unary('Heartbeat', async (req: { sessionId: string }, _md, call) => {
      const s = ownSession(call, req.sessionId);
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
      let s: Session;
      try {
        s = ownSession(call, call.request.sessionId);
      } catch (e) {
        return void c.emit('error', grpcError(e, log));
      }
      if (overStreamLimit(c, s.streams.size)) return;
      const entry = { view: new AssignmentView(s.nodeId, opener), call: c };
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
    UpdateTaskStatus: unary('UpdateTaskStatus', async (req: { sessionId: string; updates: { taskId: string; status: Task['status'] }[] }, _md, call) => {
      // Only the caller's own session, and within it only tasks assigned to the caller (status.ts).
      const s = ownSession(call, req.sessionId);
      await statuses.submit(s.nodeId, req.updates);
      return {};
    }),
    Network(call) {
      const c = call as Writable;
      let s: Session;
      try {
        s = ownSession(call, call.request.sessionId);
      } catch (e) {
        return void c.emit('error', grpcError(e, log));
      }
      if (overStreamLimit(c, s.streams.size)) return;
      networkStreams.add(c);
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
    networkBuilds: () => networkStreams.builds,
    close() {
      closed = true;
      clearInterval(sweeper);
      if (assignTimer) clearTimeout(assignTimer);
      if (netTimer) clearTimeout(netTimer);
      for (const set of assignmentStreams.values()) for (const s of set) s.call.end();
      for (const c of networkStreams.streams()) c.end();
      for (const c of sessionStreams.values()) c.end();
      sessionStreams.clear();
      // The leases are left to lapse: an agent that fails over to another manager keeps its node up.
      for (const s of table.all()) s.lease.release();
      assignmentStreams.clear();
      networkStreams.clear();
    },
  };
}

/** The wire encoding of a NetworkState (what grpc-js writes on a Network stream). */
function networkSerializer(): (st: NetworkState) => Buffer {
  return grpcPackages().dispatcher.convoy.Dispatcher.service.Network.responseSerialize as (st: NetworkState) => Buffer;
}

let service: grpc.ServiceDefinition | undefined;

/**
 * The Dispatcher's service definition to serve: proto's, with a NetworkState
 * encoded once for all the streams it is written to (./network.ts).
 */
export function dispatcherService(): grpc.ServiceDefinition {
  if (service) return service;
  const def = grpcPackages().dispatcher.convoy.Dispatcher.service;
  return (service = { ...def, Network: { ...def.Network, responseSerialize: sharedEncoding(networkSerializer()) } });
}

/** The host of "host:port", "[v6]:port" or grpc-js's "ipv4:host:port" peer form; IPv4-mapped IPv6 as IPv4. */
export function hostOfAddr(a: string): string {
  const m = /^(?:ipv[46]:)?(?:\[([^\]]+)\]|([^:]+)):\d+$/.exec(a ?? '');
  const h = m ? (m[1] ?? m[2]) : '';
  return h.replace(/^::ffff:(?=\d+\.)/i, '');
}

/** Loopback is no host's underlay address: nodes advertising it (hollow fleets, tests) share no host with a manager. */
function isLoopbackAddr(a: string): boolean {
  return /^127\./.test(a) || a === '::1';
}
