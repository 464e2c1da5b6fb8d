// The real dispatcher on a MemoryStore with a fake clock: the session table
// (register, heartbeat, expiry, re-register, replacement, stream end), what
// registration writes, the assignments stream's content and status updates.
import { strict as assert } from 'node:assert';
import * as grpc from '@grpc/grpc-js';
import { dispatcherClient, PLAINTEXT_FOR_TESTS } from '../../proto/client';
import { grpcPackages, type DispatcherClient, type Node, type Task } from '../../proto/mod';
import { contractTask, watchAssignments } from '../../proto/testing/dispatcher-contract';
import { nullLogger } from '../../common/logger';
import { nullObserver } from '../hooks';
import { StateCache } from '../state/cache';
import type { Store, Write } from '../store/store';
import { createDispatcher, MAX_STREAMS_PER_SESSION } from './dispatcher';
import { applyStatusUpdates } from './status';
import { HARNESS_TOKEN, startDispatcherHarness, type DispatcherHarness } from './testing/harness';
import { eventually } from '../../common/eventually';


describe('dispatcher (MemoryStore, fake clock)', function () {
  this.timeout(20_000);
  let h: DispatcherHarness;
  let client: DispatcherClient;
  const open: { cancel(): void }[] = [];

  beforeEach(async () => {
    h = await startDispatcherHarness({ heartbeatMs: 1000 });
    client = dispatcherClient(h.addr, { security: PLAINTEXT_FOR_TESTS });
  });
  afterEach(async () => {
    for (const c of open.splice(0)) c.cancel();
    client?.close();
    await h?.stop();
  });

  const session = (nodeId = '', hostname = 'host-1') =>
    new Promise<{ sessionId: string; node: Node; call: grpc.ClientReadableStream<unknown> }>((resolve, reject) => {
      const call = client.Session({ joinToken: HARNESS_TOKEN, nodeId, addr: '10.0.0.1', description: { hostname, platform: null, resources: null, engineLabels: {} }, labels: { zone: 'a' } });
      open.push(call);
      call.on('data', (m: { sessionId: string; node: Node }) => m.sessionId && resolve({ sessionId: m.sessionId, node: m.node, call }));
      call.on('error', reject);
    });
  const heartbeat = (sessionId: string) =>
    new Promise<void>((resolve, reject) => client.Heartbeat({ sessionId }, (e) => (e ? reject(e) : resolve())));
  const status = (sessionId: string, updates: { taskId: string; state: string }[]) =>
    new Promise<void>((resolve, reject) =>
      client.UpdateTaskStatus(
        { sessionId, updates: updates.map((u) => ({ taskId: u.taskId, status: { state: u.state as 'RUNNING', timestamp: 1, message: '', err: '', exitCode: 0, pid: 0, health: '' } })) },
        (e) => (e ? reject(e) : resolve()),
      ),
    );
  const code = async (p: Promise<unknown>) =>
    p.then(
      () => grpc.status.OK,
      (e: grpc.ServiceError) => e.code,
    );
  const assignments = (sessionId: string) => watchAssignments(client, sessionId, open);
  const storedNode = (id: string) => h.store.get<Node>('nodes', id);

  it("claiming a manager's address from elsewhere, or advertising loopback, leaves a new node a worker", async () => {
    const reg = await h.store.registerManager('m-local', '127.0.0.1:7420');
    const reg2 = await h.store.registerManager('m-far', '10.0.0.7:7420');
    try {
      const open1 = (addr: string, hostname: string) =>
        new Promise<Node>((resolve, reject) => {
          const call = client.Session({ joinToken: HARNESS_TOKEN, nodeId: '', addr, description: { hostname, platform: null, resources: null, engineLabels: {} }, labels: {} });
          open.push(call);
          call.on('data', (m: { sessionId: string; node: Node }) => m.sessionId && resolve(m.node));
          call.on('error', reject);
        });
      // Each session without a node id is a new node of the harness.
      // The harness is loopback only: the positive case (an agent beside its manager) is e2e/stack.e2e.ts's node.role == manager.
      const local = await open1('127.0.0.1', 'hollow-beside-manager');
      assert.equal((await storedNode(local.id))?.spec?.role, 'WORKER', 'loopback is no host address (hollow fleets): stays a worker');
      const elsewhere = await open1('10.0.0.1', 'plain-worker');
      assert.equal((await storedNode(elsewhere.id))?.spec?.role, 'WORKER');
      const spoof = await open1('10.0.0.7', 'claims-far-manager');
      assert.equal((await storedNode(spoof.id))?.spec?.role, 'WORKER', 'the address of a manager, but the connection comes from 127.0.0.1');
    } finally {
      await reg.close();
      await reg2.close();
    }
  });

  it('registers a node: its object (ready, labels, lease), its liveness key, a session in the table', async () => {
    const s = await session();
    const n = (await storedNode(s.node.id))!;
    assert.equal(n.status?.state, 'NODE_READY');
    assert.equal(n.status?.addr, '10.0.0.1');
    assert.deepEqual(n.spec?.labels, { zone: 'a' });
    assert.equal(n.sessionId, s.sessionId);
    assert.ok(n.leaseId > 0);
    assert.deepEqual([...(await h.store.aliveNodeIds())], [s.node.id]);
    assert.equal(h.dispatcher.sessions.size, 1);
  });

  it('keeps a heartbeating session past many TTLs; an expired one gets NOT_FOUND and its node goes down', async () => {
    const s = await session();
    for (let i = 0; i < 10; i++) {
      h.advance(h.heartbeatMs);
      await heartbeat(s.sessionId);
    }
    assert.deepEqual([...(await h.store.aliveNodeIds())], [s.node.id], 'alive after 10 periods of heartbeats');
    h.advance(h.dispatcher.sessions.ttlMs + 1);
    assert.equal(await code(heartbeat(s.sessionId)), grpc.status.NOT_FOUND);
    assert.equal(await code(status(s.sessionId, [])), grpc.status.NOT_FOUND);
    assert.deepEqual([...(await h.store.aliveNodeIds())], [], 'the lease lapsed: liveness key gone');
    assert.equal(h.dispatcher.sessions.size, 0, 'pruned from the table');
  });

  it('a heartbeat on a lease the store already dropped is NOT_FOUND (not UNAVAILABLE)', async () => {
    const s = await session();
    // The store's clock ran past the TTL, the table's check has not seen it yet: the keepalive finds the lease gone.
    const lease = h.dispatcher.sessions.get(s.sessionId)!.lease;
    await lease.revoke();
    assert.equal(await code(heartbeat(s.sessionId)), grpc.status.NOT_FOUND);
    assert.equal(h.dispatcher.sessions.size, 0);
  });

  it('re-register after expiry: a new session, the same node id, the node up again', async () => {
    const s = await session();
    h.advance(h.dispatcher.sessions.ttlMs + 1);
    assert.equal(await code(heartbeat(s.sessionId)), grpc.status.NOT_FOUND);
    const again = await session(s.node.id);
    assert.equal(again.node.id, s.node.id);
    assert.notEqual(again.sessionId, s.sessionId);
    await heartbeat(again.sessionId);
    assert.deepEqual([...(await h.store.aliveNodeIds())], [s.node.id]);
    assert.equal((await h.store.list<Node>('nodes')).items.length, 1, 'no second node');
  });

  it('a replaced session is NOT_FOUND at once; the old lease lapsing leaves the node up', async () => {
    const old = await session();
    const next = await session(old.node.id);
    assert.equal(await code(heartbeat(old.sessionId)), grpc.status.NOT_FOUND);
    await heartbeat(next.sessionId);
    // The old lease is not kept alive any more: it lapses, the node stays up through the new one.
    h.advance(h.dispatcher.sessions.ttlMs - 100);
    await heartbeat(next.sessionId);
    h.advance(200);
    assert.deepEqual([...(await h.store.aliveNodeIds())], [old.node.id]);
    assert.equal(h.dispatcher.sessions.size, 1);
  });

  it('a session replaced on another manager is refused here once the cache has seen the new registration', async () => {
    const s = await session();
    // Another manager (a second dispatcher on the same store) registers the same node.
    const cache2 = new StateCache(h.store, nullLogger);
    await cache2.start();
    const other = createDispatcher({ store: h.store, cache: cache2, heartbeatMs: 1000, natsUrl: () => '', managerId: 'm2', log: nullLogger, observer: nullObserver, identify: () => ({ id: s.node.id, role: 'worker', cluster: '' }) });
    const server = new grpc.Server();
    server.addService(grpcPackages().dispatcher.convoy.Dispatcher.service, other.handlers);
    const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
    const c2 = dispatcherClient(`127.0.0.1:${port}`, { security: PLAINTEXT_FOR_TESTS });
    try {
      const call = c2.Session({ joinToken: HARNESS_TOKEN, nodeId: s.node.id, addr: '10.0.0.1', description: null, labels: {} });
      open.push(call);
      call.on('error', () => undefined);
      await new Promise<void>((resolve) => call.on('data', () => resolve()));
      await eventually(async () => (await code(heartbeat(s.sessionId))) === grpc.status.NOT_FOUND, 'the old session refused');
    } finally {
      c2.close();
      other.close();
      server.forceShutdown();
      await cache2.close();
    }
  });

  it(`refuses a session's streams past ${MAX_STREAMS_PER_SESSION} with RESOURCE_EXHAUSTED; one ending makes room`, async () => {
    const s = await session();
    const first = open.length;
    const streams = Array.from({ length: MAX_STREAMS_PER_SESSION - 1 }, () => assignments(s.sessionId));
    await eventually(() => streams.every((a) => a.messages.length === 1), 'each open stream got its COMPLETE set');
    const over = assignments(s.sessionId);
    await eventually(() => !!over.ended(), 'the stream past the limit ends');
    assert.equal(over.ended()!.code, grpc.status.RESOURCE_EXHAUSTED);
    assert.match(over.ended()!.details, /at most 8/);
    assert.ok(streams.every((a) => !a.ended()), 'the open ones stay open');
    open[first].cancel();
    await eventually(() => h.dispatcher.sessions.get(s.sessionId)!.streams.size < MAX_STREAMS_PER_SESSION, 'a stream ended');
    const again = assignments(s.sessionId);
    await eventually(() => again.messages.length === 1, 'room again');
  });

  it('ends a session with its Session stream: its assignments stream ends NOT_FOUND', async () => {
    const s = await session();
    const a = assignments(s.sessionId);
    await eventually(() => a.messages.length === 1, 'COMPLETE');
    s.call.cancel();
    await eventually(() => h.dispatcher.sessions.size === 0, 'session ended');
    await eventually(() => !!a.ended(), 'assignments ended');
    assert.equal(a.ended()!.code, grpc.status.NOT_FOUND);
    assert.equal(await code(heartbeat(s.sessionId)), grpc.status.NOT_FOUND);
  });

  it('the sweeper ends an expired session\'s streams without waiting for a call', async () => {
    const s = await session();
    const a = assignments(s.sessionId);
    await eventually(() => a.messages.length === 1, 'COMPLETE');
    h.advance(h.dispatcher.sessions.ttlMs + 1);
    await eventually(() => !!a.ended(), 'assignments ended by the sweep', 3 * h.heartbeatMs);
    assert.equal(a.ended()!.code, grpc.status.NOT_FOUND);
  });

  it('streams assignments: placed tasks only, desired-state changes, REMOVE once a task is done with', async () => {
    const s = await session();
    const nodeId = s.node.id;
    await h.put({ ...contractTask('pending', nodeId, 'PENDING') });
    await h.put(contractTask('t1', nodeId));
    const a = assignments(s.sessionId);
    await eventually(() => a.messages.length === 1, 'COMPLETE');
    assert.deepEqual(a.messages[0].changes.map((c) => [c.action, c.task?.id]), [['UPDATE', 't1']], 'a PENDING task is not the agent\'s yet');
    const t1 = (await h.store.get<Task>('tasks', 't1'))!;
    await h.put({ ...t1, desiredState: 'SHUTDOWN' });
    await eventually(() => a.messages.length === 2, 'desired state change');
    assert.equal(a.messages[1].changes[0].task?.desiredState, 'SHUTDOWN');
    const t1b = (await h.store.get<Task>('tasks', t1.id))!;
    await h.put({ ...t1b, status: { ...t1b.status!, state: 'SHUTDOWN' } });
    await eventually(() => a.messages.length === 3, 'REMOVE');
    assert.deepEqual(a.messages[2].changes.map((c) => [c.action, c.task?.id]), [['REMOVE', 't1']]);
    assert.deepEqual(a.messages.map((m) => [m.appliesTo, m.resultsIn]), [['', 'v1'], ['v1', 'v2'], ['v2', 'v3']]);
  });

  it('status updates: forward only, own tasks only, newest of a batch wins', async () => {
    const s = await session();
    await h.put(contractTask('mine', s.node.id));
    await h.put(contractTask('theirs', 'other-node'));
    await status(s.sessionId, [
      { taskId: 'mine', state: 'PREPARING' },
      { taskId: 'mine', state: 'RUNNING' },
      { taskId: 'theirs', state: 'RUNNING' },
      { taskId: 'missing', state: 'RUNNING' },
    ]);
    assert.equal((await h.store.get<Task>('tasks', 'mine'))?.status?.state, 'RUNNING');
    assert.equal((await h.store.get<Task>('tasks', 'theirs'))?.status?.state, 'ASSIGNED');
    await status(s.sessionId, [{ taskId: 'mine', state: 'ACCEPTED' }]);
    assert.equal((await h.store.get<Task>('tasks', 'mine'))?.status?.state, 'RUNNING', 'not backwards');
  });

  it('bounds what an agent sends: an oversized description or labels refused at Session (nothing written), a huge status message cut', async () => {
    const refusedSession = (description: object, labels: Record<string, string>) =>
      new Promise<grpc.ServiceError>((resolve, reject) => {
        const call = client.Session({ joinToken: HARNESS_TOKEN, nodeId: '', addr: '10.0.0.9', description, labels });
        open.push(call);
        call.on('data', () => reject(new Error('registered')));
        call.on('error', resolve);
      });
    const e1 = await refusedSession({ hostname: 'h'.repeat(200_000), platform: null, resources: null, engineLabels: {} }, {});
    assert.equal(e1.code, grpc.status.INVALID_ARGUMENT, e1.details);
    assert.match(e1.details, /^description/);
    const e2 = await refusedSession({ hostname: 'ok', platform: null, resources: null, engineLabels: {} }, { ['k'.repeat(300)]: 'v' });
    assert.equal(e2.code, grpc.status.INVALID_ARGUMENT, e2.details);
    assert.match(e2.details, /spec\.labels/);
    assert.equal((await h.store.list<Node>('nodes')).items.length, 0, 'no node written');

    const s = await session();
    await h.put(contractTask('loud', s.node.id));
    await new Promise<void>((resolve, reject) =>
      client.UpdateTaskStatus(
        { sessionId: s.sessionId, updates: [{ taskId: 'loud', status: { state: 'FAILED', timestamp: 1, message: `\u001b[2J${'x'.repeat(100_000)}`, err: '', exitCode: 1, pid: 0, health: '' } }] },
        (e) => (e ? reject(e) : resolve()),
      ),
    );
    const t = (await h.store.get<Task>('tasks', 'loud'))!;
    assert.equal(t.status?.state, 'FAILED', 'the state change is kept');
    assert.ok((t.status?.message.length ?? 0) <= 4200, `message cut (${t.status?.message.length} characters)`);
    assert.ok(!t.status?.message.includes('\u001b'), 'no terminal escape');
  });

  it('status updates retry only the task that conflicted', async () => {
    const s = await session();
    await h.put(contractTask('a', s.node.id));
    await h.put(contractTask('b', s.node.id));
    // A cache that has not yet seen the leader's write of b: the first batch conflicts on b alone.
    const stale = { tasks: new Map(h.cache.tasks) } as unknown as StateCache;
    const b = (await h.store.get<Task>('tasks', 'b'))!;
    await h.store.forcePut('tasks', { ...b, slot: 2 });
    const sizes: number[] = [];
    const counting = new Proxy<Store>(h.store, {
      get(target, prop) {
        if (prop === 'batch')
          return (ws: Write[]) => {
            sizes.push(ws.length);
            return target.batch(ws);
          };
        const v: unknown = Reflect.get(target, prop);
        return typeof v === 'function' ? v.bind(target) : v;
      },
    });
    const running = { state: 'RUNNING' as const, timestamp: 1, message: '', err: '', exitCode: 0, pid: 0, health: '' };
    await applyStatusUpdates(counting, stale, s.node.id, [
      { taskId: 'a', status: running },
      { taskId: 'b', status: running },
    ]);
    assert.deepEqual(sizes, [2, 1], 'the whole batch, then b alone');
    const after = new Map((await h.store.list<Task>('tasks')).items.map((t) => [t.id, t]));
    assert.equal(after.get('a')?.status?.state, 'RUNNING');
    assert.equal(after.get('b')?.status?.state, 'RUNNING');
    assert.equal(after.get('b')?.slot, 2, 'the other writer\'s change kept');
  });
});
