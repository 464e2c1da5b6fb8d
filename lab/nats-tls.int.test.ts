// A manager on the embedded default with a NATS bundle: its NATS is TLS only
// and admits the nodes as they join (their certificate subject, by role),
// and nobody else; a node's NATS rights are its own subjects. On its own
// cluster CA (what the lab runs): the admin bundle and the users created
// with CreateUser read events, a viewer cannot publish one, and a removed
// user is refused.
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { connect, type NatsConnection } from 'nats';
import { createKeyAndCsr } from '../common/csr';
import { readBundle } from '../common/identity';
import { Agent } from '../agent/agent';
import { createTestCa } from '../common/testing/test-ca';
import { eventually } from '../common/eventually';
import { natsTlsOptions } from '../common/nats-tls';
import { nullLogger } from '../common/logger';
import { freePort } from '../common/net';
import { connectControl, type ControlConnection } from '../proto/client';
import { adminSecurity } from '../e2e/support/security';
import { startManager, type ManagerHandle } from '../manager/mod';
import { statsSubject } from '../proto/events';

describe('manager with TLS NATS: nodes admitted as they join (integration)', function () {
  this.timeout(90_000);
  let dir = '';
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'convoy-manager-nats-'));
  });
  let manager: ManagerHandle | undefined;
  let agent: Agent | undefined;
  let conn: ControlConnection | undefined;
  const open: NatsConnection[] = [];
  after(async () => {
    for (const nc of open) await nc.close().catch(() => undefined);
    await agent?.stop().catch(() => undefined);
    conn?.close();
    await manager?.stop().catch(() => undefined);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  let ca: Awaited<ReturnType<typeof createTestCa>>;
  it('starts a TLS NATS, adds a joined node to its users, and the node may publish its own stats only', async () => {
    ca = await createTestCa('c1');
    const natsTls = await ca.bundle({ id: 'm1', role: 'manager', ips: ['127.0.0.1'] });
    manager = await startManager({ id: 'm1', dataDir: path.join(dir, 'm1'), listen: `127.0.0.1:${await freePort()}`, natsTls, logger: nullLogger });
    assert.match(manager.natsUrl, /^tls:\/\/127\.0\.0\.1:\d+$/);
    conn = connectControl(manager.grpcAddr, { security: adminSecurity(manager) });
    agent = new Agent({ managers: [manager.grpcAddr], joinToken: (await conn.getJoinTokens({})).worker, stateDir: path.join(dir, 'agent'), advertiseAddr: '127.0.0.1', executor: 'hollow', runDir: '', logger: nullLogger });
    await agent.start();
    const nodeId = agent.nodeId();
    const conf = path.join(dir, 'm1', 'nats', 'nats.conf');
    await eventually(() => fs.readFileSync(conf, 'utf8').includes(`CN=${nodeId},OU=worker,O=c1`), 'the joined node among the NATS users');
    const dial = async (b: { ca: string; cert: string; key: string }) => {
      const nc = await connect({ servers: manager!.natsUrl, tls: natsTlsOptions(manager!.natsUrl, b), timeout: 3_000, reconnect: false });
      open.push(nc);
      return nc;
    };
    // The node's certificate connects (after the reload) and may publish its stats; a stranger's may not connect.
    const node = await eventually(async () => dial(await ca.bundle({ id: nodeId, role: 'worker' })).catch(() => undefined), 'the node connects');
    await assert.rejects(dial(await ca.bundle({ id: 'stranger', role: 'worker' })), /Authorization Violation/i);
    const errs: string[] = [];
    void (async () => {
      for await (const s of node.status()) if (s.type === 'error') errs.push(String(s.data));
    })().catch(() => undefined);
    node.publish(statsSubject('someone-else'), '{}');
    await eventually(() => errs.length === 1, 'the forged subject refused');
  });

  it('a node promoted to the manager role (placement) still connects with its worker certificate', async () => {
    const nodeId = agent!.nodeId();
    const cur = (await conn!.getNode({ node: nodeId })).node!;
    await conn!.updateNode({ node: nodeId, version: cur.meta?.version ?? 0, spec: { ...cur.spec!, role: 'MANAGER' } });
    const conf = path.join(dir, 'm1', 'nats', 'nats.conf');
    await eventually(() => fs.readFileSync(conf, 'utf8').includes(`CN=${nodeId},OU=manager,O=c1`), 'the promoted node among the NATS users as a manager');
    assert.ok(fs.readFileSync(conf, 'utf8').includes(`CN=${nodeId},OU=worker,O=c1`), 'and still as a worker: its certificate says worker');
    const nc = await connect({ servers: manager!.natsUrl, tls: natsTlsOptions(manager!.natsUrl, await ca.bundle({ id: nodeId, role: 'worker' })), timeout: 3_000, reconnect: false });
    open.push(nc);
    nc.publish(statsSubject(nodeId), '{}');
    await nc.flush();
  });

  it("a node with a manager certificate, placed as a worker (demoted), still connects, with a worker's rights only", async () => {
    const nodeId = agent!.nodeId();
    const cur = (await conn!.getNode({ node: nodeId })).node!;
    await conn!.updateNode({ node: nodeId, version: cur.meta?.version ?? 0, spec: { ...cur.spec!, role: 'WORKER' } });
    const conf = path.join(dir, 'm1', 'nats', 'nats.conf');
    // Its manager entry now carries a worker's rights: no subscription to every node's stats.
    const entry = () => {
      const text = fs.readFileSync(conf, 'utf8');
      const at = text.indexOf(`CN=${nodeId},OU=manager,O=c1`);
      return at < 0 ? '' : text.slice(at, text.indexOf('}', text.indexOf('subscribe', at)) + 1);
    };
    await eventually(() => entry() !== '' && !entry().includes('convoy.stats.*'), 'the manager subject with worker rights');
    // What an agent joined with the manager token holds: a manager certificate for its node.
    const nc = await connect({ servers: manager!.natsUrl, tls: natsTlsOptions(manager!.natsUrl, await ca.bundle({ id: nodeId, role: 'manager' })), timeout: 3_000, reconnect: false });
    open.push(nc);
    const errs: string[] = [];
    void (async () => {
      for await (const s of nc.status()) if (s.type === 'error') errs.push(String(s.data));
    })().catch(() => undefined);
    nc.publish(statsSubject(nodeId), '{}');
    await nc.flush();
    assert.deepEqual(errs, [], 'its own stats are accepted');
    // A subscription it may not make ends with the server's permissions violation.
    let refused = '';
    void (async () => {
      for await (const _ of nc.subscribe('convoy.stats.*')) void _;
    })().catch((e: Error) => (refused = e.message));
    await eventually(() => /permissions violation/i.test(refused + errs.join(' ')), "every node's stats refused: a worker's rights");
  });
});

describe('embedded NATS on the cluster CA: the admin bundle and users from the store (integration)', function () {
  this.timeout(90_000);
  let dir = '';
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'convoy-manager-nats-users-'));
  });
  let manager: ManagerHandle | undefined;
  let conn: ControlConnection | undefined;
  const open: NatsConnection[] = [];
  after(async () => {
    for (const nc of open) await nc.close().catch(() => undefined);
    conn?.close();
    await manager?.stop().catch(() => undefined);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('admits the admin and a created viewer (who read events and cannot publish one), refuses a removed user', async () => {
    manager = await startManager({ id: 'm1', dataDir: path.join(dir, 'm1'), listen: `127.0.0.1:${await freePort()}`, logger: nullLogger });
    assert.match(manager.natsUrl, /^tls:\/\/127\.0\.0\.1:\d+$/);
    conn = connectControl(manager.grpcAddr, { security: adminSecurity(manager) });
    const dial = async (b: { ca: string; cert: string; key: string }) => {
      const nc = await connect({ servers: manager!.natsUrl, tls: natsTlsOptions(manager!.natsUrl, b), timeout: 3_000, reconnect: false });
      open.push(nc);
      return nc;
    };
    const userBundle = async (name: string, role: string) => {
      const { keyPem, csrPem } = await createKeyAndCsr(name);
      const r = await conn!.createUser({ name, role, csr: csrPem });
      return { ca: r.ca, cert: r.cert, key: keyPem };
    };
    const admin = await dial(readBundle(manager.adminDir));
    const viv = await userBundle('viv', 'viewer');
    const gone = await userBundle('gone', 'operator');
    const viewer = await eventually(async () => dial(viv).catch(() => undefined), 'the created viewer connects');
    await eventually(async () => dial(gone).catch(() => undefined), 'the created operator connects');

    // Both read the manager's events.
    const seen = (nc: NatsConnection) => {
      const got: string[] = [];
      const sub = nc.subscribe('convoy.events.>');
      void (async () => {
        for await (const m of sub) got.push(m.subject);
      })().catch(() => undefined);
      return got;
    };
    const byAdmin = seen(admin);
    const byViewer = seen(viewer);
    await admin.flush();
    await viewer.flush();
    await conn.createService({ spec: { name: 'nats-users', replicas: 0, container: { image: 'busybox' } } });
    await eventually(() => byAdmin.some((s) => s.startsWith('convoy.events.service.')) && byViewer.some((s) => s.startsWith('convoy.events.service.')), 'the service event read by admin and viewer');

    // A viewer may not publish an event (the server refuses the subject).
    const errs: string[] = [];
    void (async () => {
      for await (const st of viewer.status()) if (st.type === 'error') errs.push(String(st.data));
    })().catch(() => undefined);
    viewer.publish('convoy.events.service.created.m1', '{}');
    await eventually(() => errs.some((e) => /permissions[ _]violation/i.test(e)), 'the forged event refused');
    await admin.flush();
    assert.equal(byAdmin.filter((s) => s === 'convoy.events.service.created.m1').length, 1, 'only the manager\'s own event reached the admin');

    // A removed user is no NATS user any more: a new connection is refused.
    await conn.removeUser({ name: 'gone' });
    await eventually(async () => (await dial(gone).then(() => 'connected', (e: Error) => e.message)).match(/Authorization Violation/i) !== null, 'the removed user refused');
  });
});
