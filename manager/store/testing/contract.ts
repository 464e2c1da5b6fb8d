// The Store's semantics as tests, run against every implementation:
// MemoryStore in the unit tests (store.test.ts), EtcdStore on a real etcd in
// the integration tests (etcd-store.int.test.ts). What the control API, the
// dispatcher and the leader rely on is here, so the in-memory store they are
// unit-tested on cannot drift from etcd.
import { strict as assert } from 'node:assert';
import type { Node, Service, Task } from '../../../proto/mod';
import { ConflictError, LeaseNotFoundError } from '../errors';
import { updateWithRetry, type KeyValue, type Kind, type Store, type Stored, type Versioned, type WatchBatch, type Write } from '../store';
import { eventually } from '../../../common/eventually';
import { node, service } from '../../orchestrator/testing/fixtures';

export interface StoreUnderTest {
  store: Store;
  /** Makes a lease lapse as if its TTL ran out (fake clock, or waiting on a real one). */
  lapse(leaseId: string, ttlS: number): Promise<void>;
  close(): Promise<void>;
}

export function task(id: string, nodeId = '', version = 0): Task {
  return {
    id,
    meta: version ? { version, createdAt: 0, updatedAt: 0 } : null,
    serviceId: 'svc',
    serviceName: 'web',
    slot: 1,
    nodeId,
    spec: null,
    desiredState: 'RUNNING',
    specVersion: 1,
    attempt: 0,
    jobIteration: 0,
    status: { state: 'NEW', message: '', timestamp: 0, exitCode: 0, err: '', pid: 0, health: '' },
    networks: [],
    endpointPorts: [],
  };
}

export function storeContract(name: string, make: () => Promise<StoreUnderTest>): void {
  describe(`Store contract: ${name}`, function () {
    this.timeout(30_000);
    let t: StoreUnderTest;
    let s: Store;
    beforeEach(async () => {
      t = await make();
      s = t.store;
    });
    afterEach(async () => {
      await t?.close();
    });

    it('versions objects by mod revision and guards writes by it', async () => {
      const r1 = await s.put('tasks', task('t1'), true);
      const t1 = (await s.get<Task>('tasks', 't1'))!;
      assert.equal(t1.meta?.version, r1);
      await assert.rejects(s.put('tasks', task('t1'), true), ConflictError, 'create of an existing key');
      const r2 = await s.put('tasks', { ...t1, nodeId: 'n1' });
      assert.ok(r2 > r1);
      await assert.rejects(s.put('tasks', { ...t1, nodeId: 'n2' }), ConflictError, 'update at a stale version');
      assert.equal((await s.get<Task>('tasks', 't1'))?.nodeId, 'n1');
      const l = await s.list<Task>('tasks');
      assert.deepEqual(l.items.map((x) => x.id), ['t1']);
      assert.ok(l.revision >= r2);
    });

    it('keeps service names unique through the name index', async () => {
      const svc: Service = { ...service('s1', { name: 'web' }), meta: null };
      await s.createService(svc);
      assert.equal(await s.serviceIdByName('web'), 's1');
      await assert.rejects(s.createService({ ...svc, id: 's2' }), ConflictError);
      const cur = (await s.get<Service>('services', 's1'))!;
      await s.removeService(cur);
      assert.equal(await s.serviceIdByName('web'), undefined);
      await s.createService({ ...svc, id: 's3' });
    });

    it('update: read, mutate, guarded write; retried when another writer got in between', async () => {
      await s.put('tasks', task('t1'), true);
      // The store's update is updateWithRetry over its get and put; here another writer moves
      // the task right after the first read, so the first guarded write must lose.
      let reads = 0;
      const racing = {
        get: async <T extends Versioned>(kind: Kind, id: string) => {
          const x = await s.get<T>(kind, id);
          if (++reads === 1) await s.put('tasks', { ...(await s.get<Task>('tasks', 't1'))!, slot: 7 });
          return x;
        },
        put: (kind: Kind, obj: Stored, create?: boolean) => s.put(kind, obj, create),
      };
      let calls = 0;
      const out = await updateWithRetry<Task>(racing, 'tasks', 't1', (cur) => cur && { ...cur, nodeId: `n${++calls}` });
      assert.equal(calls, 2, 'mutated again on the re-read object');
      const now = (await s.get<Task>('tasks', 't1'))!;
      assert.equal(now.nodeId, 'n2');
      assert.equal(now.slot, 7, 'the other writer\'s change is kept');
      assert.equal(now.meta?.version, out?.meta?.version, 'update returns the version it wrote');
      const direct = await s.update<Task>('tasks', 't1', (cur) => cur && { ...cur, nodeId: 'n3' });
      assert.equal((await s.get<Task>('tasks', 't1'))?.meta?.version, direct?.meta?.version);
      assert.equal(await s.update<Task>('tasks', 't1', () => undefined), undefined, 'no write when mutate returns nothing');
      await assert.rejects(
        s.update<Task>('tasks', 'gone', (cur) => {
          if (!cur) throw new RangeError('missing');
          return cur;
        }),
        RangeError,
        'what mutate throws reaches the caller',
      );
      await assert.rejects(
        updateWithRetry<Task>({ get: racing.get, put: async () => Promise.reject(new ConflictError('always')) }, 'tasks', 't1', (cur) => cur, 3),
        ConflictError,
        'bounded: the conflict reaches the caller after the last attempt',
      );
    });

    it('batch commits every write whose guard holds and returns the conflicting ones alone', async () => {
      for (const id of ['a', 'b', 'c', 'd']) await s.put('tasks', task(id), true);
      const read = new Map((await s.list<Task>('tasks')).items.map((x) => [x.id, x]));
      // Someone else moves b and creates e after we read.
      await s.put('tasks', { ...read.get('b')!, slot: 9 });
      await s.put('tasks', task('e'), true);
      const writes: Write[] = [
        { op: 'update', kind: 'tasks', obj: { ...read.get('a')!, nodeId: 'n1' } },
        { op: 'update', kind: 'tasks', obj: { ...read.get('b')!, nodeId: 'n1' } },
        { op: 'update', kind: 'tasks', obj: { ...read.get('c')!, nodeId: 'n1' } },
        { op: 'create', kind: 'tasks', obj: task('e', 'n1') },
        { op: 'delete', kind: 'tasks', obj: read.get('d')! },
        { op: 'create', kind: 'tasks', obj: task('f', 'n1') },
      ];
      const r = await s.batch(writes);
      assert.deepEqual(r.conflicts.map((w) => w.obj.id).sort(), ['b', 'e']);
      assert.equal(r.committed, 4);
      assert.equal(r.dropped, 2);
      assert.ok(r.revision > 0);
      const after = new Map((await s.list<Task>('tasks')).items.map((x) => [x.id, x]));
      assert.equal(after.get('a')?.nodeId, 'n1');
      assert.equal(after.get('c')?.nodeId, 'n1');
      assert.equal(after.get('f')?.nodeId, 'n1');
      assert.equal(after.has('d'), false);
      assert.equal(after.get('b')?.nodeId, '', 'the conflicting write did not land');
      assert.equal(after.get('b')?.slot, 9);
      assert.equal(after.get('e')?.nodeId, '');
    });

    it('batch: a chunk of many writes with one conflict commits all the others', async () => {
      const ids = Array.from({ length: 300 }, (_, i) => `m${String(i).padStart(3, '0')}`);
      const w0 = await s.batch(ids.map((id) => ({ op: 'create', kind: 'tasks', obj: task(id) })));
      assert.equal(w0.committed, ids.length);
      const read = (await s.list<Task>('tasks')).items;
      await s.put('tasks', { ...read[150], slot: 2 });
      const r = await s.batch(read.map((x) => ({ op: 'update', kind: 'tasks', obj: { ...x, nodeId: 'n' } })));
      assert.deepEqual(r.conflicts.map((w) => w.obj.id), [read[150].id]);
      assert.equal(r.committed, ids.length - 1);
      const placed = (await s.list<Task>('tasks')).items.filter((x) => x.nodeId === 'n').length;
      assert.equal(placed, ids.length - 1);
    });

    it('batch: called off by its caller, it sends nothing more and says so (never throws for it)', async () => {
      const ids = Array.from({ length: 300 }, (_, i) => `s${String(i).padStart(3, '0')}`);
      const none = await s.batch(
        ids.map((id) => ({ op: 'create', kind: 'tasks', obj: task(id) })),
        { proceed: () => false },
      );
      assert.equal(none.committed, 0);
      assert.equal(none.dropped, ids.length);
      assert.ok(none.error, 'the result says why');
      assert.equal((await s.list<Task>('tasks')).items.length, 0, 'nothing written');
      // Called off after the first transaction (the memory store commits in one, before it asks again).
      let asked = 0;
      const some = await s.batch(
        ids.map((id) => ({ op: 'create', kind: 'tasks', obj: task(id) })),
        { proceed: () => asked++ === 0 },
      );
      assert.equal(some.committed + some.dropped, ids.length);
      assert.ok(some.committed > 0);
      assert.equal((await s.list<Task>('tasks')).items.length, some.committed, 'exactly the committed writes landed');
    });

    it('syncRevision is a revision the watch reaches', async () => {
      const seen: WatchBatch[] = [];
      const from = await s.load(() => undefined);
      const w = await s.watch(from, (b) => seen.push(b), () => undefined);
      try {
        await s.put('tasks', task('t1'), true);
        const rev = await s.syncRevision('test');
        await eventually(() => seen.some((b) => b.revision >= rev), 'the watch reached the sync revision');
        const keys = seen.flatMap((b) => b.events.map((e) => e.kv.key));
        assert.ok(keys.includes('/convoy/tasks/t1'));
      } finally {
        await w.cancel();
      }
    });

    it('load + watch: a consistent snapshot, then every change after it in order', async () => {
      await s.put('tasks', task('t1'), true);
      const loaded: KeyValue[] = [];
      const rev = await s.load((kv) => loaded.push(kv));
      assert.ok(loaded.some((kv) => kv.key === '/convoy/tasks/t1'));
      // Written between the load and the watch: the watch must still report it.
      await s.put('tasks', task('t2'), true);
      const events: { type: string; key: string }[] = [];
      const w = await s.watch(rev, (b) => events.push(...b.events.map((e) => ({ type: e.type, key: e.kv.key }))), () => undefined);
      try {
        const t3 = await s.put('tasks', task('t3'), true);
        const cur = (await s.get<Task>('tasks', 't1'))!;
        await s.batch([{ op: 'delete', kind: 'tasks', obj: cur }]);
        await eventually(() => events.length >= 3, 'three events');
        assert.deepEqual(events.slice(0, 3), [
          { type: 'put', key: '/convoy/tasks/t2' },
          { type: 'put', key: '/convoy/tasks/t3' },
          { type: 'delete', key: '/convoy/tasks/t1' },
        ]);
        assert.ok(t3 > rev);
      } finally {
        await w.cancel();
      }
    });

    it('a lease keeps its keys while kept alive; they vanish when it lapses, and keepalive then fails', async () => {
      const lease = await s.grantLease(2);
      await lease.put('alive', 'n1', 'sess-1');
      assert.deepEqual([...(await s.aliveNodeIds())], ['n1']);
      await lease.keepAlive();
      await t.lapse(lease.id, 2);
      assert.deepEqual([...(await s.aliveNodeIds())], []);
      await assert.rejects(lease.keepAlive(), LeaseNotFoundError);
    });

    it('a key put through a newer lease survives the older lease lapsing', async () => {
      const old = await s.grantLease(2);
      await old.put('alive', 'n1', 'sess-1');
      const next = await s.grantLease(30);
      await next.put('alive', 'n1', 'sess-2');
      await t.lapse(old.id, 2);
      assert.deepEqual([...(await s.aliveNodeIds())], ['n1']);
      await next.revoke();
      assert.deepEqual([...(await s.aliveNodeIds())], []);
    });

    it('registers managers and elects one leader at a time', async () => {
      const reg = await s.registerManager('m1', '127.0.0.1:1', 5);
      assert.deepEqual([...(await s.managers())], [['m1', '127.0.0.1:1']]);
      const c1 = s.campaign('m1', 5);
      let elected = false;
      c1.on((e) => (elected ||= e.type === 'elected'));
      await eventually(() => elected, 'm1 elected');
      assert.equal(await s.leader(), 'm1');
      const c2 = s.campaign('m2', 5);
      let elected2 = false;
      c2.on((e) => (elected2 ||= e.type === 'elected'));
      await c1.resign();
      await eventually(() => elected2, 'm2 elected after m1 resigned');
      assert.equal(await s.leader(), 'm2');
      await c2.resign();
      await reg.close();
      assert.deepEqual([...(await s.managers())], []);
    });

    it('nodes: the node write and its liveness key are separate objects', async () => {
      const n: Node = { ...node('n1'), meta: null, spec: null, description: null, status: null, subnet: '', sessionId: 's', leaseId: 1 };
      await s.put('nodes', n, true);
      assert.equal((await s.get<Node>('nodes', 'n1'))?.sessionId, 's');
      assert.deepEqual([...(await s.aliveNodeIds())], []);
    });
  });
}
