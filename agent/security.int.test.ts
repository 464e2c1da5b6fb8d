// Identity and mutual TLS end to end (issue 11, docs/security.md), against a
// real manager on a real etcd, with hollow agents and raw Dispatcher clients
// holding real node certificates: who is refused where, what a node's
// certificate lets it see and report, tokens that rotate under joined
// nodes, a manager restart, renewal with a short lifetime, node rm revoking,
// and a manager joining with a manager token.
import { strict as assert } from 'node:assert';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { eventually } from '../common/eventually';
import { readBundle, type TlsBundle } from '../common/identity';
import { nullLogger } from '../common/logger';
import { createTestCa } from '../common/testing/test-ca';
import { connectControl, dispatcherClient, mtls, PLAINTEXT_FOR_TESTS, type ClientSecurity, type ControlConnection } from '../proto/client';
import { joinCluster } from '../proto/join';
import type { DispatcherClient, Node, Task } from '../proto/mod';
import { adminSecurity, freePort, issueFromClusterCa, startManager, type ManagerHandle, type ManagerOptions } from '../e2e/support/manager';
import { startEtcd, type TestEtcd } from '../lab/etcd';
import { HollowExecutor, startAgent, type AgentHandle } from './mod';

const code = (p: Promise<unknown>) =>
  p.then(
    () => grpc.status.OK,
    (e: grpc.ServiceError) => e.code,
  );

describe('identity and mutual TLS (integration)', function () {
  this.timeout(120_000);
  let dir: string;
  let etcd: TestEtcd;
  let m: ManagerHandle | undefined;
  let listen = '';
  const closers: (() => unknown)[] = [];
  const agents: AgentHandle[] = [];

  const start = async (o: Partial<ManagerOptions> = {}) => {
    m = await startManager({ id: 'm1', dataDir: path.join(dir, 'm1'), listen, etcdEndpoints: etcd.endpoints, etcdTls: etcd.tls, kekFile: path.join(dir, 'kek'), heartbeatPeriodMs: 300, natsUrl: '', logger: nullLogger, ...o });
    return m;
  };
  const control = (security: ClientSecurity, deadlineMs = 3000): ControlConnection => {
    const c = connectControl(m!.grpcAddr, { security, deadlineMs });
    closers.push(() => c.close());
    return c;
  };
  const dispatcher = (b: TlsBundle): DispatcherClient => {
    const c = dispatcherClient(m!.grpcAddr, { security: mtls(b) });
    closers.push(() => c.close());
    return c;
  };
  const session = (c: DispatcherClient, o: { addr?: string; nodeId?: string } = {}) =>
    new Promise<{ sessionId: string; node: Node }>((resolve, reject) => {
      const call = c.Session({ joinToken: '', nodeId: o.nodeId ?? '', addr: o.addr ?? '127.0.0.1', labels: {}, description: { hostname: 'raw', platform: null, resources: null, engineLabels: {} } });
      closers.push(() => call.cancel());
      call.on('data', (msg: { sessionId: string; node: Node }) => msg.sessionId && resolve(msg));
      call.on('error', reject);
    });
  const heartbeat = (c: DispatcherClient, sessionId: string) => new Promise<void>((resolve, reject) => c.Heartbeat({ sessionId }, (e) => (e ? reject(e) : resolve())));

  beforeEach(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'convoy-security-int-'));
    etcd = await startEtcd({ dataDir: path.join(dir, 'etcd') });
    listen = `127.0.0.1:${await freePort()}`;
  });
  afterEach(async () => {
    for (const a of agents.splice(0)) await a.stop();
    for (const c of closers.splice(0)) await c();
    await m?.stop().catch(() => undefined);
    m = undefined;
    await etcd?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('refuses no certificate, plaintext, another CA and an expired certificate at the TLS layer; a removed node is revoked', async () => {
    await start();
    const admin = adminSecurity(m!);
    assert.equal(fs.statSync(m!.adminDir).mode & 0o777, 0o700);
    assert.equal(fs.statSync(path.join(m!.adminDir, 'key.pem')).mode & 0o777, 0o600);
    assert.equal(await code(control(admin).listServices({})), grpc.status.OK, 'the admin bundle the manager wrote works');
    const caPem = readBundle(m!.adminDir).ca;

    // The handshake fails: grpc-js reports UNAVAILABLE, and no handler ever sees the call.
    assert.equal(await code(control({ mode: 'join', ca: caPem }).listServices({})), grpc.status.UNAVAILABLE, 'no client certificate');
    assert.equal(await code(control(PLAINTEXT_FOR_TESTS).listServices({})), grpc.status.UNAVAILABLE, 'plaintext');
    const other = await (await createTestCa('intruders')).bundle({ id: 'admin', role: 'admin' });
    assert.equal(await code(control({ mode: 'mtls', ca: caPem, cert: other.cert, key: other.key }).listServices({})), grpc.status.UNAVAILABLE, 'another CA');
    const expired = await issueFromClusterCa({ etcd: etcd.endpoints, etcdTls: etcd.tls, kekFile: path.join(dir, 'kek'), who: { id: 'admin', role: 'admin' }, ttlMs: 1 });
    await eventually(() => Date.parse(new crypto.X509Certificate(expired.cert).validTo) < Date.now() - 1000, 'the certificate expired');
    assert.equal(await code(control(mtls(expired)).listServices({})), grpc.status.UNAVAILABLE, 'expired');

    // A node joins, holds a session; `node rm --force` revokes it: its calls are refused from then on.
    const worker = await joinCluster({ joinAddr: m!.joinAddr, token: (await control(admin).getJoinTokens({})).worker });
    assert.equal(worker.role, 'worker');
    const d = dispatcher(worker.bundle);
    const s = await session(d);
    assert.equal(s.node.id, worker.nodeId, 'the node id is the one in the certificate');
    await heartbeat(d, s.sessionId);
    await control(admin).removeNode({ node: worker.nodeId, force: true });
    await eventually(async () => (await code(heartbeat(d, s.sessionId))) === grpc.status.UNAUTHENTICATED, 'the revoked node refused');
    const e = await heartbeat(d, s.sessionId).catch((x: grpc.ServiceError) => x);
    assert.match((e as grpc.ServiceError).details, /revoked/);
    await assert.rejects(session(dispatcher(worker.bundle)), (x: grpc.ServiceError) => x.code === grpc.status.UNAUTHENTICATED);
  });

  it("a node's certificate gets only its own assignments, reports only its own tasks, and names it whatever the request says", async () => {
    await start();
    const admin = control(adminSecurity(m!));
    const token = (await admin.getJoinTokens({})).worker;
    const [a, b] = [await joinCluster({ joinAddr: m!.joinAddr, token }), await joinCluster({ joinAddr: m!.joinAddr, token })];
    const [da, db] = [dispatcher(a.bundle), dispatcher(b.bundle)];
    // B claims to be A: the certificate wins.
    const sa = await session(da);
    const sb = await session(db, { nodeId: a.nodeId });
    assert.equal(sb.node.id, b.nodeId);
    await assert.rejects(session(db, { addr: 'evil.example; rm -rf /' }), (x: grpc.ServiceError) => x.code === grpc.status.INVALID_ARGUMENT && /addr: .* is not an IP address/.test(x.details));
    for (const [c, sid] of [[da, sa.sessionId], [db, sb.sessionId]] as const) {
      const hb = () => void heartbeat(c, sid).catch(() => undefined);
      const t = setInterval(hb, 200);
      closers.push(() => clearInterval(t));
    }
    await admin.createService({ spec: { name: 'web', replicas: 4, container: { image: 'hollow/web:1' } } });
    const tasks = await eventually(async () => {
      const ts = (await admin.listTasks({ service: 'web' })).tasks as Task[];
      return ts.filter((t) => t.nodeId).length === 4 && ts;
    }, 'web placed on both nodes');
    const ofA = tasks.filter((t) => t.nodeId === a.nodeId);
    assert.ok(ofA.length > 0);
    // B with A's session id: as good as unknown.
    assert.equal(await code(heartbeat(db, sa.sessionId)), grpc.status.NOT_FOUND);
    const stolen = db.Assignments({ sessionId: sa.sessionId });
    closers.push(() => stolen.cancel());
    const got: unknown[] = [];
    stolen.on('error', () => undefined);
    stolen.on('data', (x) => got.push(x));
    const st = await new Promise<grpc.StatusObject>((resolve) => stolen.on('status', resolve));
    assert.equal(st.code, grpc.status.NOT_FOUND);
    assert.equal(got.length, 0, "B received nothing of A's assignments");
    // B reports A's task RUNNING on its own session: ignored.
    await new Promise<void>((resolve, reject) =>
      db.UpdateTaskStatus({ sessionId: sb.sessionId, updates: [{ taskId: ofA[0].id, status: { state: 'FAILED', timestamp: Date.now(), message: 'forged', err: 'forged', exitCode: 1, pid: 0, health: '' } }] }, (e) => (e ? reject(e) : resolve())),
    );
    const after = (await admin.getTask({ task: ofA[0].id })).task as Task;
    assert.notEqual(after.status?.state, 'FAILED');
    assert.notEqual(after.status?.message, 'forged');
    // Session ids never leave the manager.
    for (const n of (await admin.listNodes({})).nodes) assert.equal(n.sessionId, '');
  });

  it('joined agents stay connected across a token rotation and a manager restart; a restarted agent needs no token', async () => {
    await start();
    let admin = control(adminSecurity(m!));
    const token = (await admin.getJoinTokens({})).worker;
    const ex = new HollowExecutor();
    const stateDir = path.join(dir, 'agent');
    const agent = await startAgent({ managers: [m!.grpcAddr], joinAddr: m!.joinAddr, joinToken: token, stateDir, advertiseAddr: '127.0.0.1', executor: ex, logger: nullLogger });
    agents.push(agent);
    assert.equal(fs.statSync(path.join(stateDir, 'tls', 'key.pem')).mode & 0o777, 0o600);
    await admin.createService({ spec: { name: 'web', replicas: 2, container: { image: 'hollow/web:1' } } });
    await eventually(async () => (await admin.listTasks({ service: 'web', states: ['RUNNING'] })).tasks.length === 2, 'web running');
    const sessions = agent.sessions();
    const rotated = await admin.rotateJoinToken({ worker: true, manager: true });
    assert.notEqual(rotated.worker, token);
    // A few heartbeat periods: the same session, the node ready.
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(agent.sessions(), sessions, 'no reconnect after the rotation');
    assert.equal((await admin.listNodes({})).nodes.find((n) => n.id === agent.nodeId())?.status?.state, 'NODE_READY');
    // The old token no longer joins anyone.
    await assert.rejects(joinCluster({ joinAddr: m!.joinAddr, token }), /join refused: invalid join token/);

    await m!.stop();
    await start();
    admin = control(adminSecurity(m!));
    await eventually(() => agent.sessions() > sessions, 'the agent reconnected to the restarted manager');
    await eventually(async () => (await admin.listTasks({ service: 'web', states: ['RUNNING'] })).tasks.length === 2, 'web still running');
    assert.equal(ex.totalStarts, 2, 'no task restarted');

    // Restart the agent with no token: it authenticates with its certificate, as the same node.
    const id = agent.nodeId();
    await agent.stop();
    agents.splice(agents.indexOf(agent), 1);
    const again = await startAgent({ managers: [m!.grpcAddr], stateDir, advertiseAddr: '127.0.0.1', executor: new HollowExecutor(), logger: nullLogger });
    agents.push(again);
    assert.equal(again.nodeId(), id);
  });

  it('with a short certificate lifetime the agent and the manager renew, and no task restarts', async () => {
    await start({ certExpiryMs: 12_000 });
    const admin = control(adminSecurity(m!));
    const ex = new HollowExecutor();
    const agent = await startAgent({ managers: [m!.grpcAddr], joinAddr: m!.joinAddr, joinToken: (await admin.getJoinTokens({})).worker, stateDir: path.join(dir, 'agent'), advertiseAddr: '127.0.0.1', executor: ex, logger: nullLogger });
    agents.push(agent);
    await admin.createService({ spec: { name: 'web', replicas: 2, container: { image: 'hollow/web:1' } } });
    await eventually(async () => (await admin.listTasks({ service: 'web', states: ['RUNNING'] })).tasks.length === 2, 'web running');
    const certOf = (f: string) => fs.readFileSync(f, 'utf8');
    const agentCert0 = certOf(path.join(dir, 'agent', 'tls', 'cert.pem'));
    const managerCert0 = certOf(path.join(m!.tlsDir, 'cert.pem'));
    // Renewal at 50-80% of 12 s; then once more, to see renewed credentials renew again.
    await eventually(() => certOf(path.join(m!.tlsDir, 'cert.pem')) !== managerCert0, 'the manager renewed', 30_000);
    await eventually(() => certOf(path.join(dir, 'agent', 'tls', 'cert.pem')) !== agentCert0, 'the agent renewed', 30_000);
    const agentCert1 = certOf(path.join(dir, 'agent', 'tls', 'cert.pem'));
    await eventually(() => certOf(path.join(dir, 'agent', 'tls', 'cert.pem')) !== agentCert1, 'the agent renewed again', 30_000);
    // Past the first certificates' expiry: still connected, still running, nothing restarted.
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal((await admin.listNodes({})).nodes.find((n) => n.id === agent.nodeId())?.status?.state, 'NODE_READY');
    assert.equal((await admin.listTasks({ service: 'web', states: ['RUNNING'] })).tasks.length, 2);
    assert.equal(ex.totalStarts, 2, 'no task restarted');
  });

  it('a manager joins with a manager token and is handed the KEK; a worker token or none is refused', async () => {
    await start();
    const tokens = await control(adminSecurity(m!)).getJoinTokens({});
    const base = { etcdEndpoints: etcd.endpoints, etcdTls: etcd.tls, natsUrl: '', logger: nullLogger, heartbeatPeriodMs: 300 };
    await assert.rejects(startManager({ ...base, id: 'm3', dataDir: path.join(dir, 'm3'), listen: `127.0.0.1:${await freePort()}` }), /key-encryption key this manager does not have .*--kek-file/);
    await assert.rejects(
      startManager({ ...base, id: 'm4', dataDir: path.join(dir, 'm4'), listen: `127.0.0.1:${await freePort()}`, joinToken: tokens.worker, join: m!.joinAddr }),
      /a manager join token is needed/,
    );
    const m2 = await startManager({ ...base, id: 'm2', dataDir: path.join(dir, 'm2'), listen: `127.0.0.1:${await freePort()}`, joinToken: tokens.manager, join: m!.joinAddr });
    closers.push(() => m2.stop());
    assert.equal(m2.caFingerprint, m!.caFingerprint);
    assert.deepEqual(fs.readFileSync(path.join(dir, 'm2', 'kek'), 'utf8'), fs.readFileSync(path.join(dir, 'kek'), 'utf8'));
    assert.equal(fs.statSync(path.join(dir, 'm2', 'kek')).mode & 0o777, 0o600);
    // Its peers' admin bundle works against it (one CA).
    const c = connectControl(m2.grpcAddr, { security: adminSecurity(m!), deadlineMs: 3000 });
    closers.push(() => c.close());
    assert.ok((await c.getJoinTokens({})).worker, 'it asks its peer for the tokens over mTLS with its own certificate');
  });
});
