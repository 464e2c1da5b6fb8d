// The Control API on a MemoryStore: services (create, update, scale,
// rollback, remove), conflicts retried, lookups, validation errors, nodes
// without their session ids, networks, the cluster, and reads served from
// the cache as fresh as the store.
import { strict as assert } from 'node:assert';
import * as grpc from '@grpc/grpc-js';
import type { Network, Node, Service, ServiceSpec, Task } from '../../proto/mod';
import { contractTask } from '../../proto/testing/dispatcher-contract';
import { MAX_RECEIVE_BYTES } from '../../proto/grpc-limits';
import { connectControl, PLAINTEXT_FOR_TESTS } from '../../proto/client';
import { node as nodeFixture } from '../orchestrator/testing/fixtures';
import type { MemoryStore } from '../store/memory-store';
import { updateWithRetry, type Kind, type Store, type Stored } from '../store/store';
import { rpc, startControlHarness, type ControlHarness } from './testing/harness';

type ServiceRes = { service: Service; counts: { running: number; desired: number } | null };
type Spec = Partial<ServiceSpec> & { name: string };

const spec = (s: Spec): Spec => ({ replicas: 1, container: { image: 'registry.local/web:1' } as ServiceSpec['container'], ...s });

async function refused(p: Promise<unknown>, code: grpc.status, re?: RegExp): Promise<grpc.ServiceError> {
  const e = await p.then(
    () => undefined,
    (err: grpc.ServiceError) => err,
  );
  assert.ok(e, 'accepted');
  assert.equal(e.code, code, `${grpc.status[e.code]} instead of ${grpc.status[code]}: ${e.details}`);
  if (re) assert.match(e.details, re);
  return e;
}

/** A store whose calls are counted, and whose next get of `interfereOn` is followed by another writer's write. */
function instrumented(s: MemoryStore, calls: Map<string, number>, interfere: { id?: string; write?: (cur: Service) => Service }): Store {
  const proxy: Store = new Proxy<MemoryStore>(s, {
    get(target, prop) {
      const v: unknown = Reflect.get(target, prop);
      if (typeof v !== 'function') return v;
      const name = String(prop);
      // update's own reads and writes go through this proxy too.
      if (name === 'update') {
        return <T extends Stored>(kind: Kind, id: string, mutate: (cur: T | undefined) => T | undefined, attempts?: number) => {
          calls.set(name, (calls.get(name) ?? 0) + 1);
          return updateWithRetry<T>(proxy, kind, id, mutate, attempts);
        };
      }
      return async (...args: unknown[]) => {
        calls.set(name, (calls.get(name) ?? 0) + 1);
        const out: unknown = await (v as (...a: unknown[]) => unknown).apply(target, args);
        if (name === 'get' && args[0] === 'services' && args[1] === interfere.id && interfere.write && out) {
          const w = interfere.write;
          interfere.write = undefined;
          await target.forcePut('services', w(out as Service));
        }
        return out;
      };
    },
  });
  return proxy;
}

describe('control API (MemoryStore)', function () {
  this.timeout(20_000);
  let h: ControlHarness;
  const calls = new Map<string, number>();
  const interfere: { id?: string; write?: (cur: Service) => Service } = {};

  beforeEach(async () => {
    calls.clear();
    interfere.id = undefined;
    interfere.write = undefined;
    h = await startControlHarness({ wrap: (s) => instrumented(s, calls, interfere) });
  });
  afterEach(async () => {
    await h?.stop();
  });

  const create = (s: Spec) => rpc<ServiceRes>((cb) => h.client.CreateService({ spec: spec(s) }, cb));
  const get = (service: string) => rpc<ServiceRes>((cb) => h.client.GetService({ service }, cb));
  const list = () => rpc<{ services: ServiceRes[] }>((cb) => h.client.ListServices({ name: '' }, cb));

  it('creates a service with defaults, finds it by id, name and id prefix, and lists it with counts', async () => {
    const r = await create({ name: 'web', replicas: 3 });
    assert.equal(r.service.spec?.name, 'web');
    assert.equal(r.service.specVersion, 1);
    assert.ok(r.service.meta?.version);
    assert.deepEqual(r.counts, { running: 0, desired: 3, completed: 0, failed: 0 });
    assert.equal((await get('web')).service.id, r.service.id);
    assert.equal((await get(r.service.id)).service.id, r.service.id);
    assert.equal((await get(r.service.id.slice(0, 6))).service.id, r.service.id);
    await refused(get('nope'), grpc.status.NOT_FOUND, /service "nope" not found/);
    const t = { ...contractTask('t1', 'n1', 'RUNNING'), serviceId: r.service.id };
    await h.store.put('tasks', t, true);
    const l = await list();
    assert.deepEqual(l.services.map((x) => [x.service.spec?.name, x.counts]), [['web', { running: 1, desired: 3, completed: 0, failed: 0 }]]);
    assert.deepEqual(h.events.map((e) => e.action), ['created']);
  });

  it('refuses a taken name (ALREADY_EXISTS) and malformed specs naming the field, writing nothing', async () => {
    await create({ name: 'web' });
    await refused(create({ name: 'web' }), grpc.status.ALREADY_EXISTS, /spec\.name/);
    await refused(create({ name: 'neg', replicas: -1 }), grpc.status.INVALID_ARGUMENT, /spec\.replicas/);
    await refused(create({ name: 'Bad_Name' }), grpc.status.INVALID_ARGUMENT, /spec\.name/);
    await refused(create({ name: 'noimage', container: { image: '' } as ServiceSpec['container'] }), grpc.status.INVALID_ARGUMENT, /spec\.container\.image/);
    assert.equal((await list()).services.length, 1);
  });

  it('updates: a task spec change bumps the spec version and keeps the previous spec; renames, mode changes and stale pinned versions are refused', async () => {
    const r = await create({ name: 'web' });
    const u = await rpc<ServiceRes>((cb) => h.client.UpdateService({ service: 'web', version: 0, spec: spec({ name: 'web', container: { image: 'registry.local/web:2' } as ServiceSpec['container'] }), force: false }, cb));
    assert.equal(u.service.specVersion, 2);
    assert.equal(u.service.previousSpec?.container?.image, 'registry.local/web:1');
    assert.equal(u.service.updateStatus?.state, 'UPDATING');
    const same = await rpc<ServiceRes>((cb) => h.client.UpdateService({ service: 'web', version: 0, spec: { ...u.service.spec!, replicas: 5 }, force: false }, cb));
    assert.equal(same.service.specVersion, 2, 'replicas alone change no task');
    await refused(
      rpc((cb) => h.client.UpdateService({ service: 'web', version: r.service.meta!.version, spec: u.service.spec, force: false }, cb)),
      grpc.status.ABORTED,
      /changed since version/,
    );
    await refused(rpc((cb) => h.client.UpdateService({ service: 'web', version: 0, spec: { ...u.service.spec!, name: 'web2' }, force: false }, cb)), grpc.status.INVALID_ARGUMENT, /cannot be renamed/);
    const pinned = await rpc<ServiceRes>((cb) => h.client.UpdateService({ service: 'web', version: same.service.meta!.version, spec: same.service.spec, force: true }, cb));
    assert.equal(pinned.service.specVersion, 3, 'force: a new spec version');
  });

  it('scales (not global, not negative, within autoscale bounds) and rolls back', async () => {
    await create({ name: 'web' });
    const s = await rpc<ServiceRes>((cb) => h.client.ScaleService({ service: 'web', replicas: 4 }, cb));
    assert.equal(s.service.spec?.replicas, 4);
    await refused(rpc((cb) => h.client.ScaleService({ service: 'web', replicas: -1 }, cb)), grpc.status.INVALID_ARGUMENT, /replicas/);
    await create({ name: 'mon', mode: 'GLOBAL', replicas: 0 });
    await refused(rpc((cb) => h.client.ScaleService({ service: 'mon', replicas: 2 }, cb)), grpc.status.FAILED_PRECONDITION, /global/);
    await refused(rpc((cb) => h.client.RollbackService({ service: 'web' }, cb)), grpc.status.FAILED_PRECONDITION, /no previous spec/);
    await rpc((cb) => h.client.UpdateService({ service: 'web', version: 0, spec: spec({ name: 'web', replicas: 4, container: { image: 'registry.local/web:2' } as ServiceSpec['container'] }), force: false }, cb));
    const rb = await rpc<ServiceRes>((cb) => h.client.RollbackService({ service: 'web' }, cb));
    assert.equal(rb.service.spec?.container?.image, 'registry.local/web:1');
    assert.equal(rb.service.spec?.replicas, 4, 'replicas are kept');
    assert.equal(rb.service.specVersion, 3);
    assert.equal(rb.service.updateStatus?.state, 'ROLLBACK_STARTED');
  });

  it('retries a write that lost its race with another writer, keeping both changes', async () => {
    const r = await create({ name: 'web' });
    // The leader writes the service's update status right after the API read it.
    interfere.id = r.service.id;
    interfere.write = (cur) => ({ ...cur, updateStatus: { state: 'UPDATE_COMPLETED' as const, startedAt: 1, completedAt: 2, message: 'by the leader' } });
    const s = await rpc<ServiceRes>((cb) => h.client.ScaleService({ service: 'web', replicas: 7 }, cb));
    assert.equal(s.service.spec?.replicas, 7);
    assert.equal(s.service.updateStatus?.message, 'by the leader');
    assert.ok((calls.get('put') ?? 0) >= 2, 'the first guarded write lost and was retried');
  });

  it('a pinned update that loses its race is ABORTED, not retried', async () => {
    const r = await create({ name: 'web' });
    interfere.id = r.service.id;
    interfere.write = (cur) => ({ ...cur, updateStatus: { state: 'UPDATE_COMPLETED' as const, startedAt: 1, completedAt: 2, message: 'by the leader' } });
    await refused(rpc((cb) => h.client.UpdateService({ service: 'web', version: r.service.meta!.version, spec: r.service.spec, force: true }, cb)), grpc.status.ABORTED);
  });

  it('removes a service (retrying past a concurrent write); its name is free again', async () => {
    const r = await create({ name: 'web' });
    interfere.id = r.service.id;
    interfere.write = (cur) => ({ ...cur, updateStatus: { state: 'UPDATE_COMPLETED' as const, startedAt: 1, completedAt: 2, message: '' } });
    await rpc((cb) => h.client.RemoveService({ service: 'web' }, cb));
    await refused(get('web'), grpc.status.NOT_FOUND);
    await create({ name: 'web' });
  });

  it('serves reads from the cache, as fresh as the store: no range of the store per read', async () => {
    const r = await create({ name: 'web' });
    // Another manager writes straight to the store; the next read here must see it.
    await h.store.forcePut('services', { ...r.service, spec: { ...r.service.spec!, replicas: 9 } });
    assert.equal((await get('web')).service.spec?.replicas, 9);
    for (let i = 0; i < 5; i++) await list();
    await rpc((cb) => h.client.ListTasks({ service: '', node: '', states: [], desiredStates: [], currentOnly: false }, cb));
    await rpc((cb) => h.client.ListNodes({}, cb));
    assert.equal(calls.get('list') ?? 0, 0, 'no list of the store');
    assert.ok((calls.get('syncRevision') ?? 0) >= 1);
  });

  it("answers nodes with their tasks' reservations and the agent's latest use", async () => {
    await h.stop();
    const sampled = Date.now();
    h = await startControlHarness({ nodeUsage: (id) => (id === 'node-a' ? { receivedAt: sampled, cpuCores: 0.5, memoryBytes: 300 } : undefined) });
    await h.store.put('nodes', nodeFixture('node-a'), true);
    await h.store.put('nodes', nodeFixture('node-b'), true);
    const withRes = (id: string, nodeId: string, state: NonNullable<Task['status']>['state'], cpu: number, mem: number): Task => ({
      ...contractTask(id, nodeId, state),
      spec: { container: null, resources: { limits: null, reservations: { nanoCpus: cpu, memoryBytes: mem, pids: 0 } }, restart: null, placement: null, networks: [], ports: [] },
    });
    await h.store.put('tasks', withRes('t1', 'node-a', 'RUNNING', 1e9, 1000), true);
    await h.store.put('tasks', withRes('t2', 'node-a', 'ASSIGNED', 5e8, 24), true);
    await h.store.put('tasks', withRes('t3', 'node-a', 'FAILED', 4e9, 99999), true); // ended: holds nothing
    const l = await rpc<{ nodes: Node[] }>((cb) => h.client.ListNodes({}, cb));
    const a = l.nodes.find((n) => n.id === 'node-a')!;
    assert.deepEqual(a.usage, { reservedNanoCpus: 1.5e9, reservedMemoryBytes: 1024, tasks: 2, usedNanoCpus: 5e8, usedMemoryBytes: 300, sampledAt: sampled });
    const b = (await rpc<{ node: Node }>((cb) => h.client.GetNode({ node: 'node-b' }, cb))).node;
    assert.deepEqual(b.usage, { reservedNanoCpus: 0, reservedMemoryBytes: 0, tasks: 0, usedNanoCpus: 0, usedMemoryBytes: 0, sampledAt: 0 }, 'no sample: in use unknown');
    assert.equal((await h.store.get<Node>('nodes', 'node-a'))?.usage ?? null, null, 'never stored');
  });

  it('lists and gets nodes without their session ids or leases; finds nodes by id, hostname, prefix', async () => {
    const n: Node = { ...nodeFixture('node-abc'), sessionId: 'secret-session', leaseId: 42 };
    await h.store.put('nodes', n, true);
    await h.store.put('nodes', { ...nodeFixture('node-abd'), sessionId: 'other-secret', leaseId: 43 }, true);
    const l = await rpc<{ nodes: Node[] }>((cb) => h.client.ListNodes({}, cb));
    assert.equal(l.nodes.length, 2);
    for (const x of l.nodes) {
      assert.equal(x.sessionId, '');
      assert.equal(Number(x.leaseId), 0);
    }
    const g = await rpc<{ node: Node }>((cb) => h.client.GetNode({ node: 'host-node-abc' }, cb));
    assert.equal(g.node.id, 'node-abc');
    assert.equal(g.node.sessionId, '');
    assert.equal((await rpc<{ node: Node }>((cb) => h.client.GetNode({ node: 'node-abd' }, cb))).node.id, 'node-abd');
    await refused(rpc((cb) => h.client.GetNode({ node: 'node-ab' }, cb)), grpc.status.NOT_FOUND, /not found/);
    const u = await rpc<{ node: Node }>((cb) => h.client.UpdateNode({ node: 'node-abc', version: 0, spec: { ...n.spec!, availability: 'DRAIN' } }, cb));
    assert.equal(u.node.spec?.availability, 'DRAIN');
    assert.equal(u.node.sessionId, '');
    assert.equal((await h.store.get<Node>('nodes', 'node-abc'))?.sessionId, 'secret-session', 'the stored node keeps its session');
    assert.deepEqual(h.events.map((e) => e.action), ['drained']);
    await refused(rpc((cb) => h.client.UpdateNode({ node: 'node-abc', version: 0, spec: { ...n.spec!, labels: { ['k'.repeat(200)]: 'v' } } }, cb)), grpc.status.INVALID_ARGUMENT, /labels/);
    await refused(rpc((cb) => h.client.RemoveNode({ node: 'node-abc', force: false }, cb)), grpc.status.FAILED_PRECONDITION, /is up/);
    await rpc((cb) => h.client.RemoveNode({ node: 'node-abc', force: true }, cb));
    await refused(rpc((cb) => h.client.GetNode({ node: 'node-abc' }, cb)), grpc.status.NOT_FOUND);
  });

  it('lists tasks by service and node, and gets one by id prefix', async () => {
    const r = await create({ name: 'web' });
    await h.store.put('nodes', nodeFixture('n1'), true);
    await h.store.put('tasks', { ...contractTask('task-1', 'n1', 'RUNNING'), serviceId: r.service.id }, true);
    await h.store.put('tasks', { ...contractTask('task-2', 'n2', 'RUNNING'), serviceId: 'other' }, true);
    const byService = await rpc<{ tasks: Task[] }>((cb) => h.client.ListTasks({ service: 'web', node: '', states: [], desiredStates: [], currentOnly: false }, cb));
    assert.deepEqual(byService.tasks.map((t) => t.id), ['task-1']);
    const byNode = await rpc<{ tasks: Task[] }>((cb) => h.client.ListTasks({ service: '', node: 'host-n1', states: [], desiredStates: [], currentOnly: false }, cb));
    assert.deepEqual(byNode.tasks.map((t) => t.id), ['task-1']);
    assert.equal((await rpc<{ task: Task }>((cb) => h.client.GetTask({ task: 'task-2' }, cb))).task.id, 'task-2');
    await refused(rpc((cb) => h.client.GetTask({ task: 'zzz' }, cb)), grpc.status.NOT_FOUND);
  });

  it('networks: create, refuse a duplicate or bad name, refuse removing one in use or the default', async () => {
    const n = await rpc<{ network: Network }>((cb) => h.client.CreateNetwork({ spec: { name: 'back', subnet: '', labels: {}, internal: false } }, cb));
    assert.equal(n.network.spec?.name, 'back');
    await refused(rpc((cb) => h.client.CreateNetwork({ spec: { name: 'back', subnet: '', labels: {}, internal: false } }, cb)), grpc.status.ALREADY_EXISTS);
    await refused(rpc((cb) => h.client.CreateNetwork({ spec: { name: 'Bad!', subnet: '', labels: {}, internal: false } }, cb)), grpc.status.INVALID_ARGUMENT);
    await create({ name: 'api', networks: ['back'] });
    await refused(rpc((cb) => h.client.RemoveNetwork({ network: 'back' }, cb)), grpc.status.FAILED_PRECONDITION, /in use by service\(s\) api/);
    await rpc((cb) => h.client.RemoveService({ service: 'api' }, cb));
    await rpc((cb) => h.client.RemoveNetwork({ network: 'back' }, cb));
    assert.equal((await rpc<{ networks: Network[] }>((cb) => h.client.ListNetworks({}, cb))).networks.length, 0);
  });

  it('bounds network and node specs: too many or too long labels refused naming the field, nothing written', async () => {
    const labels = Object.fromEntries(Array.from({ length: 5000 }, (_, i) => [`k${i}`, 'v']));
    await refused(rpc((cb) => h.client.CreateNetwork({ spec: { name: 'big', subnet: '', labels, internal: false } }, cb)), grpc.status.INVALID_ARGUMENT, /^spec(\.labels)?: /);
    await refused(rpc((cb) => h.client.CreateNetwork({ spec: { name: 'long', subnet: '', labels: { k: 'v'.repeat(70_000) }, internal: false } }, cb)), grpc.status.INVALID_ARGUMENT, /spec\.labels/);
    assert.equal((await rpc<{ networks: Network[] }>((cb) => h.client.ListNetworks({}, cb))).networks.length, 0);
    const n: Node = nodeFixture('node-l');
    await h.store.put('nodes', n, true);
    const before = (await h.store.get<Node>('nodes', 'node-l'))?.meta?.version;
    await refused(rpc((cb) => h.client.UpdateNode({ node: 'node-l', version: 0, spec: { ...n.spec!, labels } }, cb)), grpc.status.INVALID_ARGUMENT, /^spec(\.labels)?: /);
    assert.equal((await h.store.get<Node>('nodes', 'node-l'))?.meta?.version, before, 'the node is unchanged');
  });

  it('cluster: info from the cache; rotating the join tokens changes their hashes', async () => {
    await create({ name: 'web' });
    const info = await rpc<{ services: number; cluster: { workerTokenHash: string } }>((cb) => h.client.GetClusterInfo({}, cb));
    assert.equal(Number(info.services), 1);
    const t = await rpc<{ worker: string; manager: string }>((cb) => h.client.RotateJoinToken({ worker: true, manager: false }, cb));
    assert.match(t.worker, /^CVYTKN-1-[0-9a-f]{64}-[0-9a-f]{32}$/);
    const after = await rpc<{ cluster: { workerTokenHash: string; managerTokenHash: string } }>((cb) => h.client.GetClusterInfo({}, cb));
    assert.notEqual(after.cluster.workerTokenHash, info.cluster.workerTokenHash);
    assert.equal(after.cluster.managerTokenHash, 'm');
    assert.deepEqual(await rpc((cb) => h.client.GetJoinTokens({}, cb)), t);
  });

  it('cluster update: the bind allow list gates bind mounts at create and update, each entry checked; refused writes nothing', async () => {
    const bind = (name: string, source: string) => spec({ name, container: { image: 'registry.local/web:1', mounts: [{ type: 'BIND', source, target: '/data', readOnly: true, tmpfsSizeBytes: 0 }] } as never });
    const createWith = (s: Spec) => rpc<ServiceRes>((cb) => h.client.CreateService({ spec: s }, cb));
    await refused(createWith(bind('b1', '/srv/data')), grpc.status.INVALID_ARGUMENT, /^spec\.container\.mounts\[0\]\.source: "\/srv\/data" is not under a path the cluster allows \(none yet/);
    const update = (bindAllow: string[]) => rpc<{ cluster: { bindAllow: string[] } }>((cb) => h.client.UpdateCluster({ bindAllow, setBindAllow: true }, cb));
    await refused(update(['/srv', '/etc/ssl']), grpc.status.INVALID_ARGUMENT, /^bindAllow\[1\]: "\/etc\/ssl" cannot be allowed: \/etc is the host's configuration$/);
    await refused(update(['srv']), grpc.status.INVALID_ARGUMENT, /^bindAllow\[0\]: must be an absolute path$/);
    await refused(update(['/srv/../etc']), grpc.status.INVALID_ARGUMENT, /'\.\.'/);
    await refused(rpc((cb) => h.client.UpdateCluster({ bindAllow: [], setBindAllow: false }, cb)), grpc.status.INVALID_ARGUMENT, /nothing to update/);
    assert.deepEqual((await rpc<{ cluster: { bindAllow: string[] } }>((cb) => h.client.GetClusterInfo({}, cb))).cluster.bindAllow, [], 'nothing written');
    assert.deepEqual((await update(['/srv/', '/data', '/srv'])).cluster.bindAllow, ['/srv', '/data']);
    const ok = await createWith(bind('b1', '/srv/data/'));
    assert.equal(ok.service.spec?.container?.mounts[0].source, '/srv/data');
    await refused(createWith(bind('b2', '/var/lib/convoy/manager')), grpc.status.INVALID_ARGUMENT, /is never mounted/);
    await refused(createWith(bind('b3', '/opt/x')), grpc.status.INVALID_ARGUMENT, /not under a path the cluster allows \(\/srv, \/data/);
    await refused(
      rpc((cb) => h.client.UpdateService({ service: 'b1', version: 0, spec: bind('b1', '/home/u'), force: false }, cb)),
      grpc.status.INVALID_ARGUMENT,
      /^spec\.container\.mounts\[0\]\.source: /,
    );
    assert.equal((await get('b1')).service.spec?.container?.mounts[0].source, '/srv/data', 'the refused update wrote nothing');
    assert.deepEqual((await update([])).cluster.bindAllow, []);
    await refused(createWith(bind('b4', '/srv/data')), grpc.status.INVALID_ARGUMENT, /none yet/);
  });

  it("refuses publishing the cluster's own ports at create, naming the field", async () => {
    const pub = (name: string, publishedPort: number) =>
      rpc<ServiceRes>((cb) => h.client.CreateService({ spec: spec({ name, endpoint: { mode: 'VIP', ports: [{ name: '', protocol: 'tcp', targetPort: 80, publishedPort, publishMode: 'INGRESS' }] } }) }, cb));
    await refused(pub('p1', 7420), grpc.status.INVALID_ARGUMENT, /^spec\.endpoint\.ports\[0\]\.publishedPort: 7420 is the manager's gRPC port: the cluster's own ports cannot be published$/);
    await refused(pub('p2', 2379), grpc.status.INVALID_ARGUMENT, /etcd's client port/);
    assert.equal((await list()).services.length, 0);
  });

  it('refuses a request over the server\'s 4 MiB receive limit before parsing it (RESOURCE_EXHAUSTED), and keeps serving', async () => {
    const huge = spec({ name: 'huge', labels: { k: 'v'.repeat(MAX_RECEIVE_BYTES) } });
    await refused(rpc((cb) => h.client.CreateService({ spec: huge }, cb)), grpc.status.RESOURCE_EXHAUSTED);
    assert.equal((await list()).services.length, 0);
  });

  it('pages list calls in a stable order (keyed tokens, a bad token refused); the typed client follows every page', async () => {
    for (const n of ['e', 'a', 'd', 'c', 'b']) await create({ name: `svc-${n}` });
    type Page = { services: ServiceRes[]; nextPageToken: string };
    const names: string[] = [];
    let token = '';
    let pages = 0;
    do {
      const p = await rpc<Page>((cb) => h.client.ListServices({ name: '', pageSize: 2, pageToken: token }, cb));
      assert.ok(p.services.length <= 2);
      names.push(...p.services.map((s) => s.service.spec!.name));
      token = p.nextPageToken;
      pages++;
      // A service created between pages, before the cursor, is not listed twice nor shifts what follows.
      if (pages === 1) await create({ name: 'svc-0' });
    } while (token);
    assert.equal(pages, 3);
    assert.deepEqual(names, ['svc-a', 'svc-b', 'svc-c', 'svc-d', 'svc-e']);
    await refused(rpc((cb) => h.client.ListServices({ name: '', pageSize: 2, pageToken: 'garbage' }, cb)), grpc.status.INVALID_ARGUMENT, /^pageToken: /);
    await refused(rpc((cb) => h.client.ListServices({ name: '', pageSize: 2, pageToken: 'x'.repeat(5000) }, cb)), grpc.status.INVALID_ARGUMENT, /^pageToken: /);
    const typed = connectControl(h.addr, { security: PLAINTEXT_FOR_TESTS });
    try {
      const all = await typed.listServices({ name: '', labels: {} });
      assert.deepEqual(all.services.map((s) => s.service!.spec!.name), ['svc-0', 'svc-a', 'svc-b', 'svc-c', 'svc-d', 'svc-e']);
      assert.equal(all.nextPageToken, '');
    } finally {
      typed.close();
    }
    const first = await rpc<Page>((cb) => h.client.ListServices({ name: '', pageSize: 0, pageToken: '' }, cb));
    assert.equal(first.services.length, 6, 'default page size');
    assert.equal(first.nextPageToken, '');
  });

  it('maps a store out of reach to UNAVAILABLE', async () => {
    h.store.unavailable = true;
    await refused(list(), grpc.status.UNAVAILABLE);
  });
});
