// The agent against in-process fake managers (agent/session/fake-manager.ts):
// join, refusal, failover, resync, re-registration. No external process.
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { startAgent, JoinRefusedError, HollowExecutor, type AgentHandle } from './mod';
import { PLAINTEXT_FOR_TESTS } from '../proto/client';
import { fakeCluster, startFakeManager, type FakeManager } from './session/testing/fake-manager';
import { eventually } from '../common/eventually';
import { makeSpec, makeTask } from './controller/testing/fake-executor';
import { loadNodeId } from './state/node-state';

describe('agent (fake managers)', function () {
  let dir: string;
  const cleanup: (() => unknown)[] = [];

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'convoy-agent-test-'));
  });
  afterEach(async () => {
    for (const c of cleanup.splice(0).reverse()) await c();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  async function manager(cluster = fakeCluster()): Promise<FakeManager> {
    const m = await startFakeManager(cluster);
    cleanup.push(() => m.stop());
    return m;
  }

  async function agent(managers: string[], executor: HollowExecutor, token = 'good-token'): Promise<AgentHandle> {
    const a = await startAgent({ testSecurity: PLAINTEXT_FOR_TESTS, managers, joinToken: token, stateDir: dir, advertiseAddr: '127.0.0.1', executor });
    cleanup.push(() => a.stop());
    return a;
  }

  it('a wrong join token is refused with a clear error and the agent stops retrying', async () => {
    const m = await manager();
    const p = startAgent({ testSecurity: PLAINTEXT_FOR_TESTS, managers: [m.addr], joinToken: 'wrong', stateDir: dir, advertiseAddr: '127.0.0.1', executor: 'hollow' });
    await assert.rejects(p, (e: unknown) => e instanceof JoinRefusedError && e.message === 'join refused: invalid join token');
    assert.equal(m.sessionCalls, 1);
  });

  it('joins, remembers its node id, runs its tasks and reports their status', async () => {
    const cluster = fakeCluster();
    cluster.tasks.set('t1', makeTask('t1', { nodeId: 'node-1' }));
    const m = await manager(cluster);
    const ex = new HollowExecutor();
    const a = await agent([m.addr], ex);
    assert.equal(a.nodeId(), 'node-1');
    await eventually(() => cluster.tasks.get('t1')?.status?.state === 'RUNNING', 't1 RUNNING at the manager');
    assert.equal(await loadNodeId(dir), 'node-1');
    assert.equal(ex.starts.get('t1'), 1);
  });

  it('fails over to the next manager when its manager dies, without restarting running tasks', async () => {
    const cluster = fakeCluster();
    cluster.tasks.set('t1', makeTask('t1', { nodeId: 'node-1' }));
    cluster.tasks.set('t2', makeTask('t2', { nodeId: 'node-1' }));
    const a1 = await startFakeManager(cluster);
    const b = await manager(cluster);
    a1.peers = [a1.addr, b.addr];
    b.peers = [a1.addr, b.addr];
    const ex = new HollowExecutor();
    const a = await agent([a1.addr], ex); // only A given: B is learnt from the manager list
    await eventually(() => cluster.tasks.get('t2')?.status?.state === 'RUNNING', 'tasks RUNNING');
    a1.stop();
    await eventually(() => a.manager() === b.addr && b.assignmentStreams > 0, 'session with manager B');
    // B's complete set still has t1, t2 (and a new t3).
    cluster.tasks.set('t3', makeTask('t3', { nodeId: 'node-1' }));
    b.push('node-1', [{ action: 'UPDATE', task: cluster.tasks.get('t3')! }]);
    await eventually(() => cluster.tasks.get('t3')?.status?.state === 'RUNNING', 't3 RUNNING');
    assert.equal(ex.starts.get('t1'), 1);
    assert.equal(ex.starts.get('t2'), 1);
  });

  it('resyncs with a new Assignments stream when it detects a gap', async () => {
    const cluster = fakeCluster();
    const m = await manager(cluster);
    const ex = new HollowExecutor();
    await agent([m.addr], ex);
    await eventually(() => m.assignmentStreams === 1, 'first stream');
    // A change the agent never saw: t1 arrives with applies_to from the future.
    cluster.tasks.set('t1', makeTask('t1', { nodeId: 'node-1' }));
    m.push('node-1', [{ action: 'UPDATE', task: cluster.tasks.get('t1')! }], 'v42');
    await eventually(() => m.assignmentStreams === 2, 'second stream (resync)');
    await eventually(() => cluster.tasks.get('t1')?.status?.state === 'RUNNING', 't1 RUNNING after resync');
  });

  it('registers again when its session is refused as invalid, keeping its tasks', async () => {
    const cluster = fakeCluster();
    cluster.heartbeatPeriodMs = 50;
    cluster.tasks.set('t1', makeTask('t1', { nodeId: 'node-1' }));
    const m = await manager(cluster);
    const ex = new HollowExecutor();
    const a = await agent([m.addr], ex);
    await eventually(() => cluster.tasks.get('t1')?.status?.state === 'RUNNING', 't1 RUNNING');
    m.forgetSessions();
    await eventually(() => m.sessions.size === 1 && a.sessions() === 2, 'second session');
    assert.equal(a.nodeId(), 'node-1');
    assert.equal(ex.starts.get('t1'), 1);
  });

  it('stops and removes a task whose desired state becomes SHUTDOWN', async () => {
    const cluster = fakeCluster();
    cluster.tasks.set('t1', makeTask('t1', { nodeId: 'node-1' }));
    const m = await manager(cluster);
    const ex = new HollowExecutor();
    await agent([m.addr], ex);
    await eventually(() => cluster.tasks.get('t1')?.status?.state === 'RUNNING', 't1 RUNNING');
    const t = { ...cluster.tasks.get('t1')!, desiredState: 'SHUTDOWN' as const };
    cluster.tasks.set('t1', t);
    m.push('node-1', [{ action: 'UPDATE', task: t }]);
    await eventually(() => cluster.tasks.get('t1')?.status?.state === 'SHUTDOWN' && ex.removes === 1, 't1 SHUTDOWN');
  });

  it('hollow failure injection: convoy.hollow.exit=1 makes the task FAILED with exit code 1', async () => {
    const cluster = fakeCluster();
    const spec = makeSpec({ labels: { 'convoy.hollow.exit': '1' } });
    cluster.tasks.set('t1', makeTask('t1', { nodeId: 'node-1', spec }));
    const m = await manager(cluster);
    await agent([m.addr], new HollowExecutor());
    await eventually(() => cluster.tasks.get('t1')?.status?.state === 'FAILED', 't1 FAILED');
    assert.equal(cluster.tasks.get('t1')?.status?.exitCode, 1);
  });

  it('retries a network programming that failed, with the same state, until it succeeds (the manager sends a state only when it changes)', async () => {
    const cluster = fakeCluster();
    cluster.network = { version: 7, services: [], nodes: [], networks: [], clusterCidr: '10.200.0.0/16', vipCidr: '10.201.0.0/16', bindAllow: [] } as unknown as NonNullable<typeof cluster.network>;
    const m = await manager(cluster);
    const applied: number[] = [];
    let failures = 2;
    const programmer = {
      async apply(st: { version: number }) {
        applied.push(st.version);
        if (failures-- > 0) throw new Error('nft: transient failure');
      },
      async close() {},
    };
    const attacher = { attach: async () => ({ netnsPath: '' }), detach: async () => undefined };
    const a = await startAgent({ testSecurity: PLAINTEXT_FOR_TESTS, managers: [m.addr], joinToken: 'good-token', stateDir: dir, advertiseAddr: '127.0.0.1', executor: new HollowExecutor(), network: { attacher, programmer } });
    cleanup.push(() => a.stop());
    await eventually(() => applied.length === 3, 'applied three times: two failures, then success', 10_000);
    assert.deepEqual(applied, [7, 7, 7], 'the same state each time, sent once by the manager');
  });

  it('a restarted agent rejoins as the same node, adopts its running tasks and removes unassigned containers', async () => {
    const cluster = fakeCluster();
    cluster.tasks.set('t1', makeTask('t1', { nodeId: 'node-1' }));
    cluster.tasks.set('t2', makeTask('t2', { nodeId: 'node-1' }));
    const m = await manager(cluster);
    const ex = new HollowExecutor(); // outlives the agent, as containers outlive a killed agent
    const first = await startAgent({ testSecurity: PLAINTEXT_FOR_TESTS, managers: [m.addr], joinToken: 'good-token', stateDir: dir, advertiseAddr: '127.0.0.1', executor: ex });
    await eventually(() => cluster.tasks.get('t2')?.status?.state === 'RUNNING', 'tasks RUNNING');
    await first.stop();
    assert.deepEqual(ex.running().sort(), ['t1', 't2']);
    cluster.tasks.delete('t2'); // reassigned elsewhere while the agent was away
    const second = await agent([m.addr], ex);
    assert.equal(second.nodeId(), 'node-1');
    await eventually(() => ex.removes === 1, 'leftover t2 removed');
    assert.deepEqual(ex.running(), ['t1']);
    assert.equal(ex.starts.get('t1'), 1);
    assert.equal(cluster.tasks.get('t1')?.status?.state, 'RUNNING');
  });
});
