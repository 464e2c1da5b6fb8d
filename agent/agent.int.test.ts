// The agent against real managers (manager core's startManager) on a real
// etcd (lab/etcd.ts): join refusal, failover without restarts, and
// batched status reaching etcd (read back through a surviving manager).
//
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Task } from '../proto/mod';
import { connectControl, type ControlApi, type ControlConnection } from '../proto/client';
import { HollowExecutor, JoinRefusedError, startAgent, type AgentHandle } from './mod';
import { eventually } from '../common/eventually';
import { adminSecurity, freePort, startManager } from '../e2e/support/manager';
import { makeJoinToken } from '../common/join-token';
import { startEtcd, type TestEtcd } from '../lab/etcd';
import { nullLogger } from '../common/logger';

interface ManagerLike {
  /** host:port of its gRPC server. */
  addr: string;
  joinAddr: string;
  adminDir: string;
  caFingerprint: string;
  stop(): Promise<void>;
}

async function startRealManager(etcd: TestEtcd, dataDir: string, kekFile: string): Promise<ManagerLike> {
  const port = await freePort();
  const h = await startManager({ dataDir, listen: `127.0.0.1:${port}`, etcdEndpoints: etcd.endpoints, etcdTls: etcd.tls, kekFile, logger: nullLogger });
  return { addr: h.grpcAddr, joinAddr: h.joinAddr, adminDir: h.adminDir, caFingerprint: h.caFingerprint, stop: () => h.stop() };
}

describe('agent with real managers (integration)', function () {
  let dir: string;
  let etcdHandle: TestEtcd | undefined;
  const managers: ManagerLike[] = [];
  const agents: AgentHandle[] = [];
  const clients: ControlConnection[] = [];

  beforeEach(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'convoy-agent-int-'));
    etcdHandle = await startEtcd({ dataDir: path.join(dir, 'etcd') });
    for (const i of [1, 2]) managers.push(await startRealManager(etcdHandle, path.join(dir, `m${i}`), path.join(dir, 'kek')));
  });

  afterEach(async () => {
    for (const a of agents.splice(0)) await a.stop();
    for (const c of clients.splice(0)) c.close();
    for (const m of managers.splice(0)) await m.stop().catch(() => {});
    await etcdHandle?.stop();
    etcdHandle = undefined;
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  function control(addr: string): ControlConnection {
    const c = connectControl(addr, { security: adminSecurity(managers[0]) });
    clients.push(c);
    return c;
  }

  it('refuses a wrong join token with a clear one-line error, and writes no certificate', async () => {
    const wrong = makeJoinToken(managers[0].caFingerprint); // pins the right CA, wrong secret
    const p = startAgent({ managers: [managers[0].addr], joinAddr: managers[0].joinAddr, joinToken: wrong, stateDir: path.join(dir, 'a'), advertiseAddr: '127.0.0.1', executor: 'hollow' });
    await assert.rejects(p, (e: unknown) => e instanceof JoinRefusedError && /^join refused: invalid join token \(wrong, or rotated since\)/.test(e.message) && !e.message.includes('\n'));
    assert.equal(fs.existsSync(path.join(dir, 'a', 'tls', 'cert.pem')), false);
    const garbled = startAgent({ managers: [managers[0].addr], joinAddr: managers[0].joinAddr, joinToken: 'SWMTKN-wrong', stateDir: path.join(dir, 'b'), advertiseAddr: '127.0.0.1', executor: 'hollow' });
    await assert.rejects(garbled, /^JoinRefusedError: join refused: join token: not a Convoy join token/);
    // A token pinning another CA: refused before the secret is sent (the CA digest does not match).
    const otherCa = makeJoinToken('ab'.repeat(32));
    await assert.rejects(
      startAgent({ managers: [managers[0].addr], joinAddr: managers[0].joinAddr, joinToken: otherCa, stateDir: path.join(dir, 'c'), advertiseAddr: '127.0.0.1', executor: 'hollow' }),
      /join refused: the manager at .* presents a CA .* that is not the one the join token pins/,
    );
  });

  it('fails over to the second manager without restarting running tasks; statuses reach etcd', async () => {
    const ctl = control(managers[1].addr);
    const tokens = await ctl.getJoinTokens({});
    const ex = new HollowExecutor();
    const agent = await startAgent({
      managers: managers.map((m) => m.addr),
      joinAddr: managers[0].joinAddr,
      joinToken: tokens.worker,
      stateDir: path.join(dir, 'a'),
      advertiseAddr: '127.0.0.1',
      executor: ex,
    });
    agents.push(agent);
    await ctl.createService({
      spec: { name: 'web', replicas: 3, container: { image: 'hollow/web:1' } },
    });
    const running = async (via: ControlApi): Promise<Task[]> =>
      (await via.listTasks({ service: 'web', states: ['RUNNING'] })).tasks;
    let tasks: Task[] = [];
    await eventually(async () => (tasks = await running(ctl)).length === 3, '3 tasks RUNNING in etcd', 60_000);
    assert.equal(ex.totalStarts, 3);

    // Stop the manager holding the session; the agent moves to the other one.
    const held = agent.manager();
    const victim = managers.find((m) => m.addr === held);
    assert.ok(victim, `agent holds a session with ${held}`);
    await victim.stop();
    managers.splice(managers.indexOf(victim), 1);
    const survivor = control(managers[0].addr);
    await eventually(() => agent.manager() === managers[0].addr, 'session with the surviving manager', 60_000);
    await eventually(() => agent.sessions() >= 2, 'second session', 60_000);
    // Same tasks, still RUNNING, each started exactly once.
    const after = await running(survivor);
    assert.deepEqual(after.map((t) => t.id).sort(), tasks.map((t) => t.id).sort());
    for (const t of tasks) assert.equal(ex.starts.get(t.id), 1, `task ${t.id} started once`);
  });
});
