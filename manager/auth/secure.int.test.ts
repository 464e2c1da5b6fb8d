// A real manager (embedded etcd and NATS) with roles and audit in front of
// its Control API: the CLI reaches it as local root through the unix socket
// in its data dir (CONVOY_HOST=unix://...), nobody cannot, and each change
// leaves a line in <dataDir>/audit.log and an audit event on NATS.
// Run under the kernel lock (it starts etcd and nats-server).
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { connect, JSONCodec, type NatsConnection } from 'nats';
import { eventually } from '../../common/eventually';
import { natsTlsOptions } from '../../common/nats-tls';
import { createTestCa } from '../../common/testing/test-ca';
import { nullLogger } from '../../common/logger';
import { processIO, type CliIO } from '../../cli/client';
import { run } from '../../cli/main';
import { connectControl, PLAINTEXT_FOR_TESTS } from '../../proto/client';
import { adminSecurity } from '../../e2e/support/security';
import type { AuditEvent } from '../../proto/events';
import { startManager, type ManagerHandle } from '../manager';

const CLI = path.join(__dirname, '..', '..', 'cli', 'main.js');

describe('roles and audit on a real manager (integration)', function () {
  this.timeout(90_000);
  let dir: string;
  let m: ManagerHandle | undefined;
  let nc: NatsConnection | undefined;
  const seen: AuditEvent[] = [];

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'convoy-auth-int-'));
    // NATS is TLS only: the manager's certificate and an admin's (whom its NATS admits) from a throwaway CA.
    const ca = await createTestCa('c1');
    const natsTls = await ca.bundle({ id: 'm-auth', role: 'manager', ips: ['127.0.0.1'] });
    const admin = await ca.bundle({ id: 'alice', role: 'admin' });
    m = await startManager({ dataDir: path.join(dir, 'm'), listen: '127.0.0.1:0', natsTls, natsUsers: () => [{ id: 'alice', role: 'admin', cluster: 'c1' }], logger: nullLogger });
    nc = await connect({ servers: m.natsUrl, tls: natsTlsOptions(m.natsUrl, admin) });
    const sub = nc.subscribe('convoy.events.audit.>');
    void (async () => {
      for await (const msg of sub) seen.push(JSONCodec<AuditEvent>().decode(msg.data));
    })();
    await nc.flush();
  });
  after(async () => {
    await nc?.close().catch(() => undefined);
    await m?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const cli = async (args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; out: string; err: string }> => {
    let out = '';
    let err = '';
    const io: CliIO = { ...processIO(), env, out: (s) => void (out += s), err: (s) => void (err += s), setExitCode: () => undefined };
    const code = await run(args, io);
    return { code, out, err };
  };

  it('serves the Control API to local root on <dataDir>/convoy.sock, 0600 and root\'s', async () => {
    const sock = path.join(dir, 'm', 'convoy.sock');
    assert.equal(m!.socketPath, sock);
    const st = fs.statSync(sock);
    assert.ok(st.isSocket());
    assert.equal(st.mode & 0o777, 0o600);
    assert.equal(st.uid, 0);
    assert.equal(fs.statSync(path.dirname(sock)).mode & 0o777, 0o700);
    const r = await cli(['service', 'create', '-d', '--name', 'audited', '--replicas', '0', 'registry.local/web:1'], { CONVOY_HOST: `unix://${sock}` });
    assert.equal(r.code, 0, r.err);
    const ls = await cli(['service', 'ls'], { CONVOY_HOST: `unix://${sock}` });
    assert.match(ls.out, /audited/);
  });

  it('records the change in audit.log (0600) and as an audit event, naming local root', async () => {
    const file = path.join(dir, 'm', 'audit.log');
    assert.equal(fs.statSync(file).mode & 0o777, 0o600);
    const lines = () =>
      fs
        .readFileSync(file, 'utf8')
        .trim()
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as AuditEvent);
    const rec = lines().find((l) => l.action === 'CreateService');
    assert.ok(rec, 'a CreateService record');
    assert.deepEqual(rec.who, { id: 'local-root', role: 'admin', via: 'unix-socket' });
    assert.equal(rec.target.name, 'audited');
    assert.deepEqual(rec.result, { ok: true });
    assert.equal(rec.source, `manager/${m!.id}`);
    const ev = await eventually(() => seen.find((e) => e.action === 'CreateService'), 'the audit event on NATS');
    assert.deepEqual(ev, rec);
    assert.ok(!lines().some((l) => l.action === 'ListServices'), 'allowed reads are not recorded');
  });

  it('names the certificate behind a change on the TCP listener, and refuses a client with none at the TLS layer', async () => {
    const c = connectControl(m!.grpcAddr, { security: adminSecurity(m!) });
    try {
      await c.scaleService({ service: 'audited', replicas: 0 });
    } finally {
      c.close();
    }
    const ev = await eventually(() => seen.find((e) => e.action === 'ScaleService'), 'ScaleService audit event');
    assert.equal(ev.who.id, 'admin');
    assert.equal(ev.who.role, 'admin');
    const plain = connectControl(m!.grpcAddr, { security: PLAINTEXT_FOR_TESTS, deadlineMs: 3_000 });
    try {
      await assert.rejects(plain.scaleService({ service: 'audited', replicas: 1 }), (e: { code?: number }) => e.code === 14 || e.code === 4);
    } finally {
      plain.close();
    }
    assert.ok(!seen.some((e) => e.action === 'ScaleService' && e.who.id === 'anonymous'), 'no anonymous call reached the handlers');
  });

  it('refuses a non-root user on the socket (convoy run as nobody)', () => {
    const r = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, CLI, 'service', 'ls'], {
      encoding: 'utf8',
      env: { PATH: process.env.PATH, CONVOY_HOST: `unix://${m!.socketPath}` },
      timeout: 30_000,
    });
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /^convoy: (permission denied on the manager's socket|cannot reach a manager)/);
    assert.doesNotMatch(r.stdout, /audited/);
  });
});
