// The Control API (proto/control.proto), served by every manager for the
// CLI. Reads go to etcd (an operator sees their own writes at once); every
// write is a revision-guarded transaction; every refusal names the field or
// the object and why.
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import type { Etcd3 } from 'etcd3';
import { grpcPackages, type Cluster, type ControlHandlers, type Network, type Node, type Service, type Task } from '../proto/mod';
import type { Logger } from '../common/logger';
import { ApiError, grpcError, unaryWith } from './api';
import type { ManagerObserver } from './hooks';
import { newId } from './ids';
import { DEFAULT_NETWORK } from './allocator/allocator';
import { validateServiceSpec } from './spec/validate';
import { ConflictError, type Store } from './store/store';

export interface ControlDeps {
  store: Store;
  client: Etcd3;
  managerId: string;
  tokensFile: string;
  natsUrl: () => string;
  log: Logger;
  observer: ManagerObserver;
}

export const sha256 = (s: string) => crypto.createHash('sha256').update(s).digest('hex');

export function makeToken(clusterId: string): string {
  return `SWMTKN-1-${clusterId}-${crypto.randomBytes(16).toString('hex')}`;
}

const NETWORK_NAME_RE = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

export function createControl(d: ControlDeps): ControlHandlers {
  const { store, client, log, observer } = d;
  const unary = unaryWith((m, code, s) => observer.controlCall(m, code, s));
  const source = `manager/${d.managerId}`;
  const pk = grpcPackages();

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
    const prefixed = all.filter((x) => x.id.startsWith(ref));
    const n = all.find((x) => x.id === ref) ?? all.find((x) => x.description?.hostname === ref) ?? (prefixed.length === 1 ? prefixed[0] : undefined);
    if (!n) throw new ApiError(grpc.status.NOT_FOUND, `node "${ref}" not found`);
    return n;
  };
  /**
   * Runs a read-modify-write again when another writer (the leader: update
   * status, autoscaler; the dispatcher: node status) got in between, unless the
   * caller pinned the version it read: then the conflict is theirs to see.
   */
  const retryConflicts = async <T>(pinned: boolean, fn: () => Promise<T>): Promise<T> => {
    for (let attempt = 1; ; attempt++) {
      try {
        return await fn();
      } catch (e) {
        if (!(e instanceof ConflictError) || pinned || attempt >= 5) throw e;
      }
    }
  };
  const findNetwork = async (ref: string): Promise<Network> => {
    const all = (await store.list<Network>('networks')).items;
    const prefixed = all.filter((x) => x.id.startsWith(ref));
    const n = all.find((x) => x.id === ref) ?? all.find((x) => x.spec?.name === ref) ?? (prefixed.length === 1 ? prefixed[0] : undefined);
    if (!n) throw new ApiError(grpc.status.NOT_FOUND, `network "${ref}" not found`);
    return n;
  };
  const counts = (svc: Service, tasks: Task[]) => ({
    running: tasks.filter((t) => t.serviceId === svc.id && t.status?.state === 'RUNNING' && t.desiredState === 'RUNNING').length,
    desired: svc.spec?.mode === 'GLOBAL' ? tasks.filter((t) => t.serviceId === svc.id && t.desiredState === 'RUNNING').length : Number(svc.spec?.replicas ?? 0),
  });
  const validated = async (spec: Service['spec'], existingId?: string) => {
    if (!spec) throw new ApiError(grpc.status.INVALID_ARGUMENT, 'spec: missing');
    const [nodes, services, networks] = await Promise.all([store.list<Node>('nodes'), store.list<Service>('services'), store.list<Network>('networks')]);
    const v = validateServiceSpec(spec, { nodes: nodes.items, services: services.items, existingId, networks: networks.items });
    if (!v.ok) throw new ApiError(v.conflict ? grpc.status.FAILED_PRECONDITION : grpc.status.INVALID_ARGUMENT, v.errors.map((e) => `${e.field}: ${e.message}`).join('; '));
    return v.spec;
  };
  const serviceEvent = (action: 'created' | 'updated' | 'scaled' | 'removed' | 'rollback', s: Service, extra: { from?: number; to?: number; message?: string } = {}) =>
    observer.event({ type: 'service', action, time: Date.now(), source, serviceId: s.id, serviceName: s.spec?.name ?? '', ...extra });

  return {
    CreateService: unary('CreateService', async (req: { spec: Service['spec'] }) => {
      const spec = await validated(req.spec);
      const svc: Service = { id: newId(), meta: null, spec, previousSpec: null, specVersion: 1, updateStatus: null, endpoint: null };
      try {
        await store.createService(svc);
      } catch (e) {
        if (e instanceof ConflictError) throw new ApiError(grpc.status.ALREADY_EXISTS, `spec.name: ${e.message}`);
        throw e;
      }
      log.info('service created', { 'service.id': svc.id, 'service.name': spec.name });
      serviceEvent('created', svc);
      const s = await findService(svc.id);
      return { service: s, counts: { running: 0, desired: counts(s, []).desired } };
    }),
    GetService: unary('GetService', async (req: { service: string }) => {
      const s = await findService(req.service);
      return { service: s, counts: counts(s, (await store.list<Task>('tasks')).items) };
    }),
    ListServices: unary('ListServices', async (req: { name: string }) => {
      const [s, t] = await Promise.all([store.list<Service>('services'), store.list<Task>('tasks')]);
      return { services: s.items.filter((x) => !req.name || (x.spec?.name ?? '').startsWith(req.name)).map((x) => ({ service: x, counts: counts(x, t.items) })) };
    }),
    UpdateService: unary('UpdateService', async (req: { service: string; version: number; spec: Service['spec']; force: boolean }) => retryConflicts(!!req.version, async () => {
      const svc = await findService(req.service);
      if (req.version && req.version !== svc.meta?.version) throw new ApiError(grpc.status.ABORTED, `service "${svc.spec?.name}" changed since version ${req.version}; retry`);
      const spec = await validated(req.spec, svc.id);
      if (spec.name !== svc.spec?.name) throw new ApiError(grpc.status.INVALID_ARGUMENT, `spec.name: a service cannot be renamed ("${svc.spec?.name}" → "${spec.name}")`);
      if (spec.mode !== svc.spec?.mode) throw new ApiError(grpc.status.INVALID_ARGUMENT, `spec.mode: a service's mode cannot change (${svc.spec?.mode} → ${spec.mode})`);
      // Replicas and the autoscale policy change no task: no rolling update for them.
      const strip = (x: Service['spec']) => JSON.stringify({ ...x, replicas: 0, autoscale: null });
      const taskSpecChanged = strip(svc.spec) !== strip(spec) || req.force;
      const next: Service = {
        ...svc,
        spec,
        previousSpec: taskSpecChanged ? svc.spec : svc.previousSpec,
        specVersion: taskSpecChanged ? svc.specVersion + 1 : svc.specVersion,
        // The update supervisor starts the update when it sees outdated slots.
        updateStatus: taskSpecChanged ? { state: 'UPDATING', startedAt: Date.now(), completedAt: 0, message: 'update in progress' } : svc.updateStatus,
      };
      await store.put('services', next);
      serviceEvent('updated', next, { message: taskSpecChanged ? `spec version ${next.specVersion}` : 'no task change' });
      return { service: await findService(svc.id), counts: null };
    })),
    ScaleService: unary('ScaleService', async (req: { service: string; replicas: number }) => retryConflicts(false, async () => {
      const svc = await findService(req.service);
      if (svc.spec?.mode === 'GLOBAL') throw new ApiError(grpc.status.FAILED_PRECONDITION, `service "${svc.spec.name}" is global: it cannot be scaled`);
      const n = Number(req.replicas);
      if (!Number.isInteger(n) || n < 0) throw new ApiError(grpc.status.INVALID_ARGUMENT, 'replicas: must be an integer >= 0');
      const a = svc.spec?.autoscale;
      if (a?.enabled && (n < a.minReplicas || n > a.maxReplicas)) {
        throw new ApiError(
          grpc.status.FAILED_PRECONDITION,
          `replicas: ${n} is outside the autoscale bounds ${a.minReplicas}..${a.maxReplicas} of "${svc.spec?.name}"; change them with \`convoy service autoscale\` or turn autoscaling off with --off`,
        );
      }
      const from = Number(svc.spec?.replicas ?? 0);
      await store.put('services', { ...svc, spec: { ...svc.spec!, replicas: n } });
      serviceEvent('scaled', svc, { from, to: n, message: 'manual scale' });
      return { service: await findService(svc.id), counts: null };
    })),
    RollbackService: unary('RollbackService', async (req: { service: string }) => retryConflicts(false, async () => {
      const svc = await findService(req.service);
      if (!svc.previousSpec) throw new ApiError(grpc.status.FAILED_PRECONDITION, `service "${svc.spec?.name}" has no previous spec to roll back to`);
      const next: Service = {
        ...svc,
        spec: { ...svc.previousSpec, replicas: svc.spec?.replicas ?? svc.previousSpec.replicas, autoscale: svc.spec?.autoscale ?? null },
        previousSpec: svc.spec,
        specVersion: svc.specVersion + 1,
        updateStatus: { state: 'ROLLBACK_STARTED', startedAt: Date.now(), completedAt: 0, message: 'manually requested rollback' },
      };
      await store.put('services', next);
      serviceEvent('rollback', next, { message: 'manually requested rollback' });
      return { service: await findService(svc.id), counts: null };
    })),
    RemoveService: unary('RemoveService', async (req: { service: string }) => {
      const svc = await findService(req.service);
      await store.removeService(svc);
      log.info('service removed', { 'service.id': svc.id, 'service.name': svc.spec?.name ?? '' });
      serviceEvent('removed', svc);
      return {};
    }),
    ListTasks: unary('ListTasks', async (req: { service: string; node: string; states: string[]; desiredStates: string[]; currentOnly: boolean }) => {
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
      tasks.sort((a, b) => a.serviceName.localeCompare(b.serviceName) || a.slot - b.slot || a.nodeId.localeCompare(b.nodeId) || b.attempt - a.attempt);
      return { tasks };
    }),
    GetTask: unary('GetTask', async (req: { task: string }) => {
      const t = (await store.get<Task>('tasks', req.task)) ?? (await store.list<Task>('tasks')).items.find((x) => x.id.startsWith(req.task));
      if (!t) throw new ApiError(grpc.status.NOT_FOUND, `task "${req.task}" not found`);
      return { task: t };
    }),
    ListNodes: unary('ListNodes', async () => {
      const nodes = (await store.list<Node>('nodes')).items;
      return { nodes, leader: (await client.election('convoy-leader').leader()) ?? '' };
    }),
    GetNode: unary('GetNode', async (req: { node: string }) => ({ node: await findNode(req.node) })),
    UpdateNode: unary('UpdateNode', async (req: { node: string; version: number; spec: Node['spec'] }) => {
      if (!req.spec) throw new ApiError(grpc.status.INVALID_ARGUMENT, 'spec: missing');
      // The leader and the dispatcher write nodes too (status, subnet). A caller that pins a version
      // gets ABORTED when the node moved on; one that does not gets its spec applied to the current
      // node, retried when such a write lands in between.
      const reqSpec = req.spec;
      const { n, spec } = await retryConflicts(!!req.version, async () => {
        const n = await findNode(req.node);
        if (req.version && req.version !== n.meta?.version) throw new ApiError(grpc.status.ABORTED, `node changed since version ${req.version}; retry`);
        const spec = { ...n.spec!, ...reqSpec, labels: reqSpec.labels ?? n.spec?.labels ?? {} };
        for (const [k, v] of Object.entries(spec.labels)) {
          if (!k || k.length > 128) throw new ApiError(grpc.status.INVALID_ARGUMENT, `spec.labels["${k.slice(0, 32)}"]: key must be 1..128 characters`);
          if (String(v).length > 4096) throw new ApiError(grpc.status.INVALID_ARGUMENT, `spec.labels["${k.slice(0, 32)}"]: value longer than 4096 bytes`);
        }
        await store.put('nodes', { ...n, spec });
        return { n, spec };
      });
      if (spec.availability !== n.spec?.availability) {
        const action = spec.availability === 'DRAIN' ? 'drained' : spec.availability === 'PAUSE' ? 'paused' : 'active';
        observer.event({ type: 'node', action, time: Date.now(), source, nodeId: n.id, hostname: n.description?.hostname ?? '' });
      }
      return { node: await findNode(n.id) };
    }),
    RemoveNode: unary('RemoveNode', async (req: { node: string; force: boolean }) => {
      const n = await findNode(req.node);
      if (n.status?.state === 'NODE_READY' && !req.force) throw new ApiError(grpc.status.FAILED_PRECONDITION, `node ${n.id} is up: drain it and stop its agent, or use --force`);
      if ((await store.batch([{ op: 'delete', kind: 'nodes', obj: n }])).dropped) throw new ApiError(grpc.status.ABORTED, `node ${n.id} changed meanwhile; retry`);
      observer.event({ type: 'node', action: 'removed', time: Date.now(), source, nodeId: n.id, hostname: n.description?.hostname ?? '' });
      return {};
    }),
    CreateNetwork: unary('CreateNetwork', async (req: { spec: Network['spec'] }) => {
      const spec = req.spec;
      if (!spec?.name) throw new ApiError(grpc.status.INVALID_ARGUMENT, 'spec.name: must not be empty');
      if (!NETWORK_NAME_RE.test(spec.name)) throw new ApiError(grpc.status.INVALID_ARGUMENT, `spec.name: "${spec.name.slice(0, 80)}" is not a valid DNS label`);
      if (spec.subnet) throw new ApiError(grpc.status.INVALID_ARGUMENT, `spec.subnet: networks share the cluster CIDR (a /24 per node) and are isolated by nftables; a subnet of its own is not supported`);
      const all = (await store.list<Network>('networks')).items;
      if (all.some((n) => n.spec?.name === spec.name)) throw new ApiError(grpc.status.ALREADY_EXISTS, `spec.name: network "${spec.name}" already exists`);
      // The leader's allocator gives it its VXLAN id on its next tick.
      const net: Network = { id: newId(), meta: null, spec: { name: spec.name, subnet: '', labels: spec.labels ?? {}, internal: !!spec.internal }, vni: 0, subnet: '' };
      await store.put('networks', net, true);
      return { network: await findNetwork(net.id) };
    }),
    GetNetwork: unary('GetNetwork', async (req: { network: string }) => ({ network: await findNetwork(req.network) })),
    ListNetworks: unary('ListNetworks', async () => ({ networks: (await store.list<Network>('networks')).items })),
    RemoveNetwork: unary('RemoveNetwork', async (req: { network: string }) => {
      const net = await findNetwork(req.network);
      const name = net.spec?.name ?? '';
      if (name === DEFAULT_NETWORK) throw new ApiError(grpc.status.FAILED_PRECONDITION, 'network "default" is built in and cannot be removed');
      const users = (await store.list<Service>('services')).items.filter((s) => s.spec?.networks?.includes(name)).map((s) => s.spec?.name);
      if (users.length) throw new ApiError(grpc.status.FAILED_PRECONDITION, `network "${name}" is in use by service(s) ${users.join(', ')}`);
      if ((await store.batch([{ op: 'delete', kind: 'networks', obj: net }])).dropped) throw new ApiError(grpc.status.ABORTED, `network "${name}" changed meanwhile; retry`);
      return {};
    }),
    GetClusterInfo: unary('GetClusterInfo', async () => {
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
        natsUrl: d.natsUrl(),
      };
    }),
    GetJoinTokens(call, cb) {
      // etcd keeps only the tokens' hashes; the plain tokens live in the data
      // dir of the manager that made them. A manager without them asks the others.
      if (fs.existsSync(d.tokensFile)) return cb(null, JSON.parse(fs.readFileSync(d.tokensFile, 'utf8')) as { worker: string; manager: string });
      if (call.metadata.get('convoy-forwarded').length) return cb(grpcError(new ApiError(grpc.status.NOT_FOUND, 'no join tokens here')));
      (async () => {
        const peers = (await client.getAll().prefix('/convoy/managers/').strings()) as Record<string, string>;
        for (const [k, addr] of Object.entries(peers)) {
          if (k.endsWith(`/${d.managerId}`)) continue;
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
    RotateJoinToken: unary('RotateJoinToken', async (req: { worker: boolean; manager: boolean }) => {
      const c = await store.get<Cluster>('cluster', 'default');
      if (!c) throw new ApiError(grpc.status.UNAVAILABLE, 'cluster not initialised');
      const old = fs.existsSync(d.tokensFile) ? (JSON.parse(fs.readFileSync(d.tokensFile, 'utf8')) as { worker: string; manager: string }) : { worker: '', manager: '' };
      const both = !req.worker && !req.manager;
      const tokens = { worker: req.worker || both ? makeToken(newId()) : old.worker, manager: req.manager || both ? makeToken(newId()) : old.manager };
      await store.put('cluster', {
        ...c,
        workerTokenHash: req.worker || both ? sha256(tokens.worker) : c.workerTokenHash,
        managerTokenHash: req.manager || both ? sha256(tokens.manager) : c.managerTokenHash,
      });
      fs.writeFileSync(d.tokensFile, JSON.stringify(tokens), { mode: 0o600 });
      return tokens;
    }),
  };
}
