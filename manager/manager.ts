// A Convoy manager: serves the Control API (CLI) and the Dispatcher API
// (agents) on one gRPC port, writes straight to etcd, and stands for election;
// the leader runs the reconcile loop (manager/reconcile).
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { Etcd3, type Lease } from 'etcd3';
import {
  grpcPackages,
  isForward,
  isTerminal,
  type Cluster,
  type ControlHandlers,
  type DispatcherHandlers,
  type Node,
  type Service,
  type Task,
} from '../proto/mod';
import { createLogger, errMsg, type Logger } from '../proto/common/logger';
import { startEtcd, ETCD_MAX_TXN_OPS, type EmbeddedEtcd } from './embedded/etcd';
import { ConflictError, DEFAULT_MAX_TXN_OPS, key, Store, type Write } from './store/store';
import { newId, reconcile } from './reconcile/reconcile';
import { validateServiceSpec } from './reconcile/validate';
import type { ClusterSnapshot } from './state/snapshot';

export interface ManagerOptions {
  id?: string;
  dataDir: string;
  /** host:port of the gRPC server (Control + Dispatcher). */
  listen: string;
  /** host:port agents and other managers reach this one at. */
  advertiseAddr?: string;
  /** No endpoints: start a local etcd in dataDir (the embedded default). */
  etcdEndpoints?: string[];
  natsUrl?: string;
  /** How often agents heartbeat; a node silent for about 3 periods is down. */
  heartbeatPeriodMs?: number;
  /** Leader lease TTL in seconds: how long a dead leader keeps the lead. */
  electionTtlS?: number;
  logger?: Logger;
}

export interface ManagerHandle {
  id: string;
  grpcAddr: string;
  etcdEndpoints: string[];
  isLeader(): boolean;
  stop(): Promise<void>;
}

/** Agents heartbeat once a second by default; a node is down after ~3 s of silence. */
export const DEFAULT_HEARTBEAT_MS = 1000;
/** Leader lease: 2 s, so a new leader takes over within ~2-3 s of the old one dying. */
export const DEFAULT_ELECTION_TTL_S = 2;
/** Upper bound between two reconcile ticks (restart delays, time-based decisions). */
const MAX_TICK_INTERVAL_MS = 500;
/** Debounce of store events before a tick. */
const TICK_DEBOUNCE_MS = 20;

type Code = grpc.status;
class ApiError extends Error {
  constructor(
    readonly code: Code,
    message: string,
  ) {
    super(message);
  }
}

function grpcError(e: unknown): grpc.ServiceError {
  if (e instanceof ApiError) return Object.assign(new Error(e.message), { code: e.code, details: e.message, metadata: new grpc.Metadata() });
  if (e instanceof ConflictError) return Object.assign(new Error(e.message), { code: grpc.status.ABORTED, details: e.message, metadata: new grpc.Metadata() });
  const msg = errMsg(e);
  return Object.assign(new Error(msg), { code: grpc.status.UNAVAILABLE, details: msg, metadata: new grpc.Metadata() });
}

function unary<Req, Res>(fn: (req: Req) => Promise<Res>) {
  return (call: { request: Req }, cb: (err: grpc.ServiceError | null, res?: Res) => void) => {
    fn(call.request).then(
      (r) => cb(null, r),
      (e) => cb(grpcError(e)),
    );
  };
}

const sha256 = (s: string) => crypto.createHash('sha256').update(s).digest('hex');

function makeToken(clusterId: string): string {
  return `SWMTKN-1-${clusterId}-${crypto.randomBytes(16).toString('hex')}`;
}

export async function startManager(opts: ManagerOptions): Promise<ManagerHandle> {
  const id = opts.id ?? (fs.existsSync(path.join(opts.dataDir, 'manager-id')) ? fs.readFileSync(path.join(opts.dataDir, 'manager-id'), 'utf8').trim() : newId());
  fs.mkdirSync(opts.dataDir, { recursive: true });
  fs.writeFileSync(path.join(opts.dataDir, 'manager-id'), id);
  const log = (opts.logger ?? createLogger('manager')).child({ 'manager.id': id });
  const heartbeatMs = opts.heartbeatPeriodMs ?? DEFAULT_HEARTBEAT_MS;

  let embedded: EmbeddedEtcd | undefined;
  let endpoints = opts.etcdEndpoints ?? [];
  if (!endpoints.length) {
    embedded = await startEtcd({ dataDir: path.join(opts.dataDir, 'etcd') });
    endpoints = [embedded.endpoint];
    log.info('started embedded etcd', { endpoint: embedded.endpoint, pid: embedded.pid });
  }
  const client = new Etcd3({ hosts: endpoints });
  const store = new Store(client, embedded ? ETCD_MAX_TXN_OPS : DEFAULT_MAX_TXN_OPS);
  const tokensFile = path.join(opts.dataDir, 'join-tokens.json');

  // Cluster object, created once by whichever manager gets there first.
  let cluster = await store.get<Cluster>('cluster', 'default');
  if (!cluster) {
    const cid = newId();
    const tokens = { worker: makeToken(cid), manager: makeToken(cid) };
    const c: Cluster = {
      id: 'default',
      meta: null,
      workerTokenHash: sha256(tokens.worker),
      managerTokenHash: sha256(tokens.manager),
      clusterCidr: '10.42.0.0/16',
      vipCidr: '10.43.0.0/16',
      ingressPortMin: 30000,
      ingressPortMax: 32767,
      createdAt: Date.now(),
    };
    try {
      await store.put('cluster', c, true);
      fs.writeFileSync(tokensFile, JSON.stringify(tokens), { mode: 0o600 });
      log.info('cluster initialised');
    } catch (e) {
      if (!(e instanceof ConflictError)) throw e;
    }
    cluster = await store.get<Cluster>('cluster', 'default');
  }

  // ---- Dispatcher -------------------------------------------------------
  const sessions = new Map<string, { nodeId: string; lease: Lease }>();
  const streams = new Set<{ nodeId: string; call: grpc.ServerWritableStream<unknown, unknown>; sent: Map<string, string>; version: number }>();
  const leaseTtlS = Math.max(2, Math.ceil((3 * heartbeatMs) / 1000));

  const checkToken = async (token: string): Promise<'WORKER' | 'MANAGER'> => {
    const c = await store.get<Cluster>('cluster', 'default');
    const h = sha256(token);
    if (c && h === c.workerTokenHash) return 'WORKER';
    if (c && h === c.managerTokenHash) return 'MANAGER';
    throw new ApiError(grpc.status.PERMISSION_DENIED, 'invalid join token');
  };

  const nodeTasksMessage = (nodeId: string, all: Task[], s: { sent: Map<string, string> }) => {
    const now = new Map<string, Task>();
    for (const t of all) {
      if (t.nodeId !== nodeId) continue;
      if (t.desiredState !== 'RUNNING' && isTerminal(t.status?.state ?? 'NEW')) continue;
      now.set(t.id, t);
    }
    const changes: { action: 'UPDATE' | 'REMOVE'; task: Task }[] = [];
    for (const [tid, t] of now) {
      const sig = `${t.desiredState}/${t.specVersion}`;
      if (s.sent.get(tid) !== sig) {
        changes.push({ action: 'UPDATE', task: t });
        s.sent.set(tid, sig);
      }
    }
    for (const tid of [...s.sent.keys()]) {
      if (!now.has(tid)) {
        const t = all.find((x) => x.id === tid);
        changes.push({ action: 'REMOVE', task: t ?? ({ id: tid } as Task) });
        s.sent.delete(tid);
      }
    }
    return changes;
  };

  let refreshTimer: NodeJS.Timeout | undefined;
  const refreshStreams = () => {
    if (refreshTimer || !streams.size) return;
    refreshTimer = setTimeout(async () => {
      refreshTimer = undefined;
      try {
        const { items } = await store.list<Task>('tasks');
        for (const s of streams) {
          const changes = nodeTasksMessage(s.nodeId, items, s);
          if (!changes.length) continue;
          const from = `v${s.version}`;
          s.version++;
          s.call.write({ type: 'INCREMENTAL', appliesTo: from, resultsIn: `v${s.version}`, changes });
        }
      } catch (e) {
        log.warn('assignments refresh failed', { err: errMsg(e) });
      }
    }, TICK_DEBOUNCE_MS);
  };

  const dispatcher: DispatcherHandlers = {
    Session(call) {
      (async () => {
        const role = await checkToken(call.request.joinToken);
        const desc = call.request.description;
        let node = call.request.nodeId ? await store.get<Node>('nodes', call.request.nodeId) : undefined;
        const nodeId = node?.id ?? (call.request.nodeId || newId());
        const base: Node = node ?? {
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
        node = { ...base, description: desc, status: { state: 'NODE_READY', message: '', addr: call.request.addr, updatedAt: Date.now() }, sessionId, leaseId };
        await store.put('nodes', node, !base.meta);
        await lease.put(key('alive', nodeId)).value(sessionId);
        sessions.set(sessionId, { nodeId, lease });
        const managers = (await client.getAll().prefix('/convoy/managers/').strings()) as Record<string, string>;
        call.write({
          sessionId,
          node,
          managers: Object.entries(managers).map(([k, addr]) => ({ id: k.split('/').pop() ?? '', addr })),
          heartbeatPeriodMs: heartbeatMs,
          natsUrl: opts.natsUrl ?? '',
        });
        log.info('node session', { 'node.id': nodeId, 'node.hostname': desc?.hostname ?? '' });
        call.on('cancelled', () => undefined);
      })().catch((e) => call.emit('error', grpcError(e)));
    },
    Heartbeat: unary(async (req: { sessionId: string }) => {
      const s = sessions.get(req.sessionId);
      if (!s) throw new ApiError(grpc.status.NOT_FOUND, 'session invalid');
      await s.lease.keepaliveOnce();
      return { periodMs: heartbeatMs };
    }),
    Assignments(call) {
      const s = sessions.get(call.request.sessionId);
      if (!s) {
        call.emit('error', grpcError(new ApiError(grpc.status.NOT_FOUND, 'session invalid')));
        return;
      }
      const st = { nodeId: s.nodeId, call: call as grpc.ServerWritableStream<unknown, unknown>, sent: new Map<string, string>(), version: 1 };
      store.list<Task>('tasks').then(
        ({ items }) => {
          const changes = nodeTasksMessage(s.nodeId, items, st);
          call.write({ type: 'COMPLETE', appliesTo: '', resultsIn: 'v1', changes: changes.filter((c) => c.action === 'UPDATE') });
          streams.add(st);
        },
        (e) => call.emit('error', grpcError(e)),
      );
      call.on('cancelled', () => streams.delete(st));
    },
    UpdateTaskStatus: unary(async (req: { sessionId: string; updates: { taskId: string; status: Task['status'] }[] }) => {
      const s = sessions.get(req.sessionId);
      if (!s) throw new ApiError(grpc.status.NOT_FOUND, 'session invalid');
      for (let attempt = 0; attempt < 3; attempt++) {
        const tasks = await Promise.all(req.updates.map((u) => store.get<Task>('tasks', u.taskId)));
        const writes: Write[] = [];
        req.updates.forEach((u, i) => {
          const t = tasks[i];
          if (!t || t.nodeId !== s.nodeId || !u.status) return;
          if (!isForward(t.status?.state ?? 'NEW', u.status.state)) return;
          writes.push({ op: 'update', kind: 'tasks', obj: { ...t, status: u.status } });
        });
        if (!writes.length) return {};
        const r = await store.batch(writes);
        if (!r.dropped) return {};
      }
      return {};
    }),
    Network(call) {
      const s = sessions.get(call.request.sessionId);
      if (!s) {
        call.emit('error', grpcError(new ApiError(grpc.status.NOT_FOUND, 'session invalid')));
        return;
      }
      // Service endpoints are not published yet (cluster networking is not built): an empty snapshot.
      call.write({ version: 1, services: [], nodes: [], networks: [], clusterCidr: cluster?.clusterCidr ?? '', vipCidr: cluster?.vipCidr ?? '' });
    },
  };

  const pk = grpcPackages();

  // ---- Control API ------------------------------------------------------
  const findService = async (ref: string): Promise<Service> => {
    const byId = await store.get<Service>('services', ref);
    if (byId) return byId;
    const id = await store.serviceIdByName(ref);
    if (id) {
      const s = await store.get<Service>('services', id);
      if (s) return s;
    }
    const all = (await store.list<Service>('services')).items.filter((s) => s.id.startsWith(ref));
    if (all.length === 1) return all[0];
    throw new ApiError(grpc.status.NOT_FOUND, `service "${ref}" not found`);
  };
  const findNode = async (ref: string): Promise<Node> => {
    const all = (await store.list<Node>('nodes')).items;
    const n = all.find((x) => x.id === ref) ?? all.find((x) => x.description?.hostname === ref) ?? (all.filter((x) => x.id.startsWith(ref)).length === 1 ? all.find((x) => x.id.startsWith(ref)) : undefined);
    if (!n) throw new ApiError(grpc.status.NOT_FOUND, `node "${ref}" not found`);
    return n;
  };
  const counts = (svc: Service, tasks: Task[]) => ({
    running: tasks.filter((t) => t.serviceId === svc.id && t.status?.state === 'RUNNING' && t.desiredState === 'RUNNING').length,
    desired: svc.spec?.mode === 'GLOBAL' ? tasks.filter((t) => t.serviceId === svc.id && t.desiredState === 'RUNNING').length : Number(svc.spec?.replicas ?? 0),
  });
  const validated = async (spec: Service['spec'], selfId?: string) => {
    if (!spec) throw new ApiError(grpc.status.INVALID_ARGUMENT, 'spec: missing');
    const nodes = (await store.list<Node>('nodes')).items;
    const v = validateServiceSpec(spec, { nodes });
    if (!v.ok) throw new ApiError(grpc.status.INVALID_ARGUMENT, v.errors.map((e) => `${e.field}: ${e.message}`).join('; '));
    // Ingress ports are cluster-wide: one service per published port.
    const services = (await store.list<Service>('services')).items.filter((s) => s.id !== selfId);
    for (const p of v.spec.endpoint?.ports ?? []) {
      if (!p.publishedPort || p.publishMode === 'HOST') continue;
      const other = services.find((s) => s.spec?.endpoint?.ports?.some((q) => q.publishedPort === p.publishedPort && (q.protocol || 'tcp') === p.protocol && q.publishMode !== 'HOST'));
      if (other) throw new ApiError(grpc.status.FAILED_PRECONDITION, `port ${p.publishedPort}/${p.protocol} is already published by service "${other.spec?.name}"`);
    }
    return v.spec;
  };
  const updateSpec = async (svc: Service, spec: NonNullable<Service['spec']>, version: number) => {
    if (version && version !== svc.meta?.version) throw new ApiError(grpc.status.ABORTED, `service "${svc.spec?.name}" changed since version ${version}; retry`);
    const taskSpecChanged = JSON.stringify({ ...svc.spec, replicas: 0, autoscale: null }) !== JSON.stringify({ ...spec, replicas: 0, autoscale: null });
    const next: Service = {
      ...svc,
      spec,
      previousSpec: taskSpecChanged ? svc.spec : svc.previousSpec,
      specVersion: taskSpecChanged ? svc.specVersion + 1 : svc.specVersion,
      updateStatus: taskSpecChanged ? { state: 'UPDATING', startedAt: Date.now(), completedAt: 0, message: 'update in progress' } : svc.updateStatus,
    };
    await store.put('services', next);
    return next;
  };

  const control: ControlHandlers = {
    CreateService: unary(async (req: { spec: Service['spec'] }) => {
      const spec = await validated(req.spec);
      const svc: Service = { id: newId(), meta: null, spec, previousSpec: null, specVersion: 1, updateStatus: null, endpoint: null };
      try {
        await store.createService(svc);
      } catch (e) {
        if (e instanceof ConflictError) throw new ApiError(grpc.status.ALREADY_EXISTS, `spec.name: ${e.message}`);
        throw e;
      }
      log.info('service created', { 'service.id': svc.id, 'service.name': spec.name });
      const s = await findService(svc.id);
      return { service: s, counts: { running: 0, desired: counts(s, []).desired } };
    }),
    GetService: unary(async (req: { service: string }) => {
      const s = await findService(req.service);
      return { service: s, counts: counts(s, (await store.list<Task>('tasks')).items) };
    }),
    ListServices: unary(async (req: { name: string }) => {
      const [s, t] = await Promise.all([store.list<Service>('services'), store.list<Task>('tasks')]);
      return { services: s.items.filter((x) => !req.name || (x.spec?.name ?? '').startsWith(req.name)).map((x) => ({ service: x, counts: counts(x, t.items) })) };
    }),
    UpdateService: unary(async (req: { service: string; version: number; spec: Service['spec']; force: boolean }) => {
      const svc = await findService(req.service);
      const spec = await validated(req.spec, svc.id);
      let next = await updateSpec(svc, spec, req.version);
      if (req.force && next.specVersion === svc.specVersion) {
        next = { ...(await findService(svc.id)) };
        next.specVersion++;
        await store.put('services', next);
      }
      return { service: await findService(svc.id), counts: null };
    }),
    ScaleService: unary(async (req: { service: string; replicas: number }) => {
      const svc = await findService(req.service);
      if (svc.spec?.mode === 'GLOBAL') throw new ApiError(grpc.status.FAILED_PRECONDITION, `service "${svc.spec.name}" is global: it cannot be scaled`);
      if (!Number.isInteger(Number(req.replicas)) || Number(req.replicas) < 0) throw new ApiError(grpc.status.INVALID_ARGUMENT, 'replicas: must be an integer >= 0');
      await store.put('services', { ...svc, spec: { ...svc.spec!, replicas: req.replicas } });
      return { service: await findService(svc.id), counts: null };
    }),
    RollbackService: unary(async (req: { service: string }) => {
      const svc = await findService(req.service);
      if (!svc.previousSpec) throw new ApiError(grpc.status.FAILED_PRECONDITION, `service "${svc.spec?.name}" has no previous spec to roll back to`);
      const next: Service = {
        ...svc,
        spec: { ...svc.previousSpec, replicas: svc.spec?.replicas ?? svc.previousSpec.replicas },
        previousSpec: svc.spec,
        specVersion: svc.specVersion + 1,
        updateStatus: { state: 'ROLLBACK_STARTED', startedAt: Date.now(), completedAt: 0, message: 'manually requested rollback' },
      };
      await store.put('services', next);
      return { service: await findService(svc.id), counts: null };
    }),
    RemoveService: unary(async (req: { service: string }) => {
      const svc = await findService(req.service);
      await store.removeService(svc);
      log.info('service removed', { 'service.id': svc.id, 'service.name': svc.spec?.name ?? '' });
      return {};
    }),
    ListTasks: unary(async (req: { service: string; node: string; states: string[]; desiredStates: string[]; currentOnly: boolean }) => {
      let tasks = (await store.list<Task>('tasks')).items;
      if (req.service) {
        const svc = await findService(req.service);
        tasks = tasks.filter((t) => t.serviceId === svc.id);
      }
      if (req.node) {
        const n = await findNode(req.node);
        tasks = tasks.filter((t) => t.nodeId === n.id);
      }
      if (req.states?.length) tasks = tasks.filter((t) => req.states.includes(t.status?.state ?? 'NEW'));
      if (req.desiredStates?.length) tasks = tasks.filter((t) => req.desiredStates.includes(t.desiredState));
      if (req.currentOnly) tasks = tasks.filter((t) => t.desiredState === 'RUNNING');
      tasks.sort((a, b) => a.serviceName.localeCompare(b.serviceName) || a.slot - b.slot || b.attempt - a.attempt);
      return { tasks };
    }),
    GetTask: unary(async (req: { task: string }) => {
      const t = (await store.get<Task>('tasks', req.task)) ?? (await store.list<Task>('tasks')).items.find((x) => x.id.startsWith(req.task));
      if (!t) throw new ApiError(grpc.status.NOT_FOUND, `task "${req.task}" not found`);
      return { task: t };
    }),
    ListNodes: unary(async () => {
      const nodes = (await store.list<Node>('nodes')).items;
      return { nodes, leader: (await client.election('convoy-leader').leader()) ?? '' };
    }),
    GetNode: unary(async (req: { node: string }) => ({ node: await findNode(req.node) })),
    UpdateNode: unary(async (req: { node: string; version: number; spec: Node['spec'] }) => {
      const n = await findNode(req.node);
      if (req.version && req.version !== n.meta?.version) throw new ApiError(grpc.status.ABORTED, `node changed since version ${req.version}; retry`);
      if (!req.spec) throw new ApiError(grpc.status.INVALID_ARGUMENT, 'spec: missing');
      await store.put('nodes', { ...n, spec: { ...n.spec!, ...req.spec, labels: req.spec.labels ?? n.spec?.labels ?? {} } });
      return { node: await findNode(n.id) };
    }),
    RemoveNode: unary(async (req: { node: string; force: boolean }) => {
      const n = await findNode(req.node);
      if (n.status?.state === 'NODE_READY' && !req.force) throw new ApiError(grpc.status.FAILED_PRECONDITION, `node ${n.id} is up: drain it and stop its agent, or use --force`);
      await store.batch([{ op: 'delete', kind: 'nodes', obj: n }]);
      return {};
    }),
    CreateNetwork: unary(async () => {
      throw new ApiError(grpc.status.UNIMPLEMENTED, 'networks are not implemented yet');
    }),
    GetNetwork: unary(async () => {
      throw new ApiError(grpc.status.UNIMPLEMENTED, 'networks are not implemented yet');
    }),
    ListNetworks: unary(async () => ({ networks: [] })),
    RemoveNetwork: unary(async () => {
      throw new ApiError(grpc.status.UNIMPLEMENTED, 'networks are not implemented yet');
    }),
    GetClusterInfo: unary(async () => {
      const [c, n, s, t, m] = await Promise.all([
        store.get<Cluster>('cluster', 'default'),
        store.list<Node>('nodes'),
        store.list<Service>('services'),
        store.list<Task>('tasks'),
        client.getAll().prefix('/convoy/managers/').strings(),
      ]);
      const leader = await client.election('convoy-leader').leader();
      return {
        cluster: c,
        managers: Object.entries(m).map(([k, addr]) => ({ id: k.split('/').pop() ?? '', addr, leader: leader === k.split('/').pop() })),
        nodes: n.items.length,
        services: s.items.length,
        tasks: t.items.length,
        natsUrl: opts.natsUrl ?? '',
      };
    }),
    GetJoinTokens(call, cb) {
      // etcd keeps only the tokens' hashes; the plain tokens live in the data
      // dir of the manager that made them. A manager without them asks the others.
      if (fs.existsSync(tokensFile)) return cb(null, JSON.parse(fs.readFileSync(tokensFile, 'utf8')) as { worker: string; manager: string });
      if (call.metadata.get('convoy-forwarded').length) return cb(grpcError(new ApiError(grpc.status.NOT_FOUND, 'no join tokens here')));
      (async () => {
        const peers = (await client.getAll().prefix('/convoy/managers/').strings()) as Record<string, string>;
        for (const [k, addr] of Object.entries(peers)) {
          if (k.endsWith(`/${id}`)) continue;
          const c = new pk.control.convoy.Control(addr, grpc.credentials.createInsecure());
          const md = new grpc.Metadata();
          md.set('convoy-forwarded', '1');
          try {
            return await new Promise<{ worker: string; manager: string }>((resolve, reject) =>
              c.GetJoinTokens({}, md, { deadline: Date.now() + 2000 }, (e, r) => (e || !r ? reject(e) : resolve(r))),
            );
          } catch {
            /* next peer */
          } finally {
            c.close();
          }
        }
        throw new ApiError(grpc.status.FAILED_PRECONDITION, 'no reachable manager holds the join tokens (etcd keeps only their hashes): rotate them to get new ones');
      })().then(
        (r) => cb(null, r),
        (e) => cb(grpcError(e)),
      );
    },
    RotateJoinToken: unary(async (req: { worker: boolean; manager: boolean }) => {
      const c = await store.get<Cluster>('cluster', 'default');
      if (!c) throw new ApiError(grpc.status.UNAVAILABLE, 'cluster not initialised');
      const old = fs.existsSync(tokensFile) ? (JSON.parse(fs.readFileSync(tokensFile, 'utf8')) as { worker: string; manager: string }) : { worker: '', manager: '' };
      const both = !req.worker && !req.manager;
      const tokens = { worker: req.worker || both ? makeToken(newId()) : old.worker, manager: req.manager || both ? makeToken(newId()) : old.manager };
      await store.put('cluster', {
        ...c,
        workerTokenHash: req.worker || both ? sha256(tokens.worker) : c.workerTokenHash,
        managerTokenHash: req.manager || both ? sha256(tokens.manager) : c.managerTokenHash,
      });
      fs.writeFileSync(tokensFile, JSON.stringify(tokens), { mode: 0o600 });
      return tokens;
    }),
  };

  // ---- gRPC server ------------------------------------------------------
  const server = new grpc.Server();
  server.addService(pk.control.convoy.Control.service, control);
  server.addService(pk.dispatcher.convoy.Dispatcher.service, dispatcher);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(opts.listen, grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  const host = opts.listen.slice(0, opts.listen.lastIndexOf(':'));
  const grpcAddr = opts.advertiseAddr ?? `${host === '0.0.0.0' ? '127.0.0.1' : host}:${port}`;
  const managerLease = client.lease(Math.max(2, opts.electionTtlS ?? DEFAULT_ELECTION_TTL_S));
  await managerLease.put(`/convoy/managers/${id}`).value(grpcAddr);

  // ---- Watches: wake the assignment streams and the leader --------------
  let tickTimer: NodeJS.Timeout | undefined;
  let leading = false;
  let ticking = false;
  let again = false;
  const scheduleTick = (delay = TICK_DEBOUNCE_MS) => {
    if (!leading || tickTimer) return;
    tickTimer = setTimeout(() => {
      tickTimer = undefined;
      void tick();
    }, delay);
  };
  const watcher = await client.watch().prefix('/convoy/').create();
  watcher.on('data', (res) => {
    if (res.events.some((e) => e.kv.key.toString().startsWith('/convoy/tasks/'))) refreshStreams();
    scheduleTick();
  });
  watcher.on('error', (e) => log.warn('watch error', { err: errMsg(e) }));

  const tick = async (): Promise<void> => {
    if (!leading) return;
    if (ticking) {
      again = true;
      return;
    }
    ticking = true;
    try {
      const raw = await store.snapshotRaw();
      const now = Date.now();
      // Node liveness: a node is up while its session's lease-bound key lives.
      const nodeWrites: Write[] = [];
      for (const n of raw.nodes) {
        const up = raw.alive.has(n.id);
        const want = up ? 'NODE_READY' : 'NODE_DOWN';
        if (n.status?.state !== want) {
          const next: Node = { ...n, status: { ...(n.status ?? { message: '', addr: '', updatedAt: 0 }), state: want, message: up ? '' : 'heartbeat failure', updatedAt: now } };
          nodeWrites.push({ op: 'update', kind: 'nodes', obj: next });
          Object.assign(n, next);
          log.info(up ? 'node up' : 'node down', { 'node.id': n.id });
        }
      }
      const snap: ClusterSnapshot = {
        revision: raw.revision,
        now,
        cluster: raw.cluster!,
        services: new Map(raw.services.map((s) => [s.id, s])),
        tasks: new Map(raw.tasks.map((t) => [t.id, t])),
        nodes: new Map(raw.nodes.map((n) => [n.id, n])),
        networks: new Map(),
      };
      const { actions } = reconcile(snap);
      const writes: Write[] = [...nodeWrites];
      for (const a of actions) {
        if (a.op === 'createTask') writes.push({ op: 'create', kind: 'tasks', obj: a.task });
        else if (a.op === 'updateTask') writes.push({ op: 'update', kind: 'tasks', obj: a.task });
        else if (a.op === 'deleteTask') writes.push({ op: 'delete', kind: 'tasks', obj: a.task });
        else if (a.op === 'updateService') writes.push({ op: 'update', kind: 'services', obj: a.service });
        else if (a.op === 'updateNode') writes.push({ op: 'update', kind: 'nodes', obj: a.node });
      }
      // Rolling updates that have converged are marked completed.
      for (const s of snap.services.values()) {
        const st = s.updateStatus?.state;
        if (st !== 'UPDATING' && st !== 'ROLLBACK_STARTED') continue;
        const live = [...snap.tasks.values()].filter((t) => t.serviceId === s.id && t.desiredState === 'RUNNING');
        const failedNew = [...snap.tasks.values()].filter((t) => t.serviceId === s.id && t.specVersion === s.specVersion && (t.status?.state === 'FAILED' || t.status?.state === 'REJECTED'));
        const upd = st === 'UPDATING' ? s.spec?.update : s.spec?.rollback ?? s.spec?.update;
        const updatedCount = Math.max(1, [...snap.tasks.values()].filter((t) => t.serviceId === s.id && t.specVersion === s.specVersion).length);
        if (failedNew.length && failedNew.length / updatedCount > (upd?.maxFailureRatio ?? 0) && st === 'UPDATING') {
          const action = upd?.failureAction ?? 'FAILURE_PAUSE';
          if (action === 'FAILURE_PAUSE') {
            writes.push({ op: 'update', kind: 'services', obj: { ...s, updateStatus: { ...s.updateStatus!, state: 'UPDATE_PAUSED', message: `update paused: ${failedNew.length} task(s) failed` } } });
          } else if (action === 'FAILURE_ROLLBACK' && s.previousSpec) {
            writes.push({
              op: 'update',
              kind: 'services',
              obj: { ...s, spec: { ...s.previousSpec, replicas: s.spec?.replicas ?? 0 }, previousSpec: s.spec, specVersion: s.specVersion + 1, updateStatus: { state: 'ROLLBACK_STARTED', startedAt: now, completedAt: 0, message: `rollback: ${failedNew.length} task(s) failed` } },
            });
          }
          continue;
        }
        if (live.length && live.every((t) => t.specVersion === s.specVersion && t.status?.state === 'RUNNING') && live.length >= Number(s.spec?.mode === 'GLOBAL' ? 1 : (s.spec?.replicas ?? 0))) {
          writes.push({ op: 'update', kind: 'services', obj: { ...s, updateStatus: { ...s.updateStatus!, state: st === 'UPDATING' ? 'UPDATE_COMPLETED' : 'ROLLBACK_COMPLETED', completedAt: now, message: 'update completed' } } });
        }
      }
      // One write per object per tick: later actions on the same key win.
      const byKey = new Map<string, Write>();
      for (const w of writes) {
        const k = `${w.kind}/${w.obj.id}`;
        const prev = byKey.get(k);
        byKey.set(k, prev && prev.op === 'create' && w.op === 'update' ? { ...w, op: 'create' } : w);
      }
      if (byKey.size) await store.batch([...byKey.values()]);
    } catch (e) {
      log.warn('reconcile failed', { err: errMsg(e) });
    } finally {
      ticking = false;
      if (again) {
        again = false;
        scheduleTick();
      }
    }
  };
  const periodic = setInterval(() => scheduleTick(0), MAX_TICK_INTERVAL_MS);

  // ---- Election -----------------------------------------------------------
  const election = client.election('convoy-leader', Math.max(2, opts.electionTtlS ?? DEFAULT_ELECTION_TTL_S));
  let stopped = false;
  let campaign: ReturnType<typeof election.campaign> | undefined;
  const stand = () => {
    if (stopped) return;
    campaign = election.campaign(id);
    campaign.on('elected', () => {
      leading = true;
      log.info('elected leader');
      scheduleTick(0);
    });
    campaign.on('error', (e) => {
      leading = false;
      log.warn('lost leadership', { err: errMsg(e) });
      setTimeout(stand, 500);
    });
  };
  stand();

  log.info('manager started', { addr: grpcAddr, etcd: endpoints.join(',') });
  return {
    id,
    grpcAddr,
    etcdEndpoints: endpoints,
    isLeader: () => leading,
    async stop() {
      stopped = true;
      leading = false;
      clearInterval(periodic);
      if (tickTimer) clearTimeout(tickTimer);
      if (refreshTimer) clearTimeout(refreshTimer);
      for (const s of streams) s.call.end();
      server.forceShutdown();
      await campaign?.resign().catch(() => undefined);
      await watcher.cancel().catch(() => undefined);
      await managerLease.revoke().catch(() => undefined);
      for (const s of sessions.values()) s.lease.release();
      client.close();
      await embedded?.stop();
    },
  };
}
