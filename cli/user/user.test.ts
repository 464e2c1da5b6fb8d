// convoy user create|ls|rm against an object-literal manager: the key is
// made here and never sent (only a CSR for it), the bundle lands 0700/0600
// with Docker's names, bad input is one line naming the flag with nothing
// sent or written, and an existing bundle is never overwritten.
import { strict as assert } from 'node:assert';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { controlApiOf } from '../../proto/client';
import type { User } from '../../proto/mod';
import { createFakeIssuer, type FakeIssuer } from '../../manager/auth/testing/fake-issuer';
import type { CliIO, ControlApi, ControlMethod } from '../client';
import { run } from '../main';

function fake(api: Partial<ControlApi>) {
  let out = '';
  let err = '';
  const calls: { method: ControlMethod; req: unknown }[] = [];
  const full = controlApiOf(async (m, req) => {
    calls.push({ method: m, req });
    const fn = api[m];
    if (!fn) throw new Error(`unexpected call ${m}`);
    return fn(req as never);
  });
  const io: CliIO = { out: (s) => void (out += s), err: (s) => void (err += s), now: () => Date.parse('2026-01-01T12:00:00Z'), env: {}, connect: () => ({ api: full, close: () => undefined }), setExitCode: () => undefined };
  return { io, out: () => out, err: () => err, calls };
}

describe('convoy user', function () {
  this.timeout(20_000);
  let dir: string;
  let issuer: FakeIssuer;
  before(async () => (issuer = await createFakeIssuer('c1')));
  beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'convoy-user-'))));
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  const signing = (): Partial<ControlApi> => ({
    createUser: async (req) => {
      const c = await issuer.issue(req.csr ?? '', { id: req.name ?? '', role: 'operator' });
      return { user: { id: req.name, name: req.name, role: req.role, serial: c.serial } as User, cert: c.cert, ca: c.ca };
    },
  });

  it('create: makes the key here, sends only a CSR, writes ca.pem, cert.pem, key.pem (0700 / 0600)', async () => {
    const f = fake(signing());
    const out = path.join(dir, 'bob');
    const code = await run(['user', 'create', 'bob', '--role', 'operator', '--out', out], f.io);
    assert.equal(code, 0, f.err());
    assert.match(f.out(), /^user bob \(operator\) created; bundle in .*bob \(ca.pem, cert.pem, key.pem\)\n$/);
    assert.equal(f.calls.length, 1);
    const req = f.calls[0].req as Record<string, unknown>;
    assert.deepEqual(Object.keys(req).sort(), ['csr', 'name', 'role']);
    assert.match(String(req.csr), /BEGIN CERTIFICATE REQUEST/);
    assert.ok(!JSON.stringify(req).includes('PRIVATE KEY'), 'the key is not sent');
    assert.equal(fs.statSync(out).mode & 0o777, 0o700);
    for (const file of ['ca.pem', 'cert.pem', 'key.pem']) assert.equal(fs.statSync(path.join(out, file)).mode & 0o777, 0o600, file);
    const cert = new crypto.X509Certificate(fs.readFileSync(path.join(out, 'cert.pem')));
    assert.ok(cert.checkPrivateKey(crypto.createPrivateKey(fs.readFileSync(path.join(out, 'key.pem')))), 'cert.pem is for key.pem');
    assert.equal(fs.readFileSync(path.join(out, 'ca.pem'), 'utf8'), issuer.caPem);
  });

  it('csr + create --csr: the operator makes key and CSR; the admin signs the CSR and gets only cert.pem and ca.pem; the key never moves', async () => {
    const mine = path.join(dir, 'alice-laptop');
    const op = fake({});
    assert.equal(await run(['user', 'csr', 'alice', '--out', mine], op.io), 0, op.err());
    assert.deepEqual(op.calls, [], 'user csr talks to no manager');
    assert.deepEqual(fs.readdirSync(mine).sort(), ['alice.csr', 'key.pem']);
    assert.equal(fs.statSync(mine).mode & 0o777, 0o700);
    assert.equal(fs.statSync(path.join(mine, 'key.pem')).mode & 0o777, 0o600);
    const key = fs.readFileSync(path.join(mine, 'key.pem'), 'utf8');
    assert.equal((await run(['user', 'csr', 'alice', '--out', mine], fake({}).io)), 1, 'never over an existing key');
    assert.equal(fs.readFileSync(path.join(mine, 'key.pem'), 'utf8'), key);

    // The admin, elsewhere, with only the CSR.
    const adminOut = path.join(dir, 'for-alice');
    const f = fake(signing());
    assert.equal(await run(['user', 'create', 'alice', '--role', 'operator', '--csr', path.join(mine, 'alice.csr'), '--out', adminOut], f.io), 0, f.err());
    assert.match(f.out(), /^user alice \(operator\) created; cert.pem and ca.pem in .*for-alice/);
    const req = f.calls[0].req as Record<string, unknown>;
    assert.equal(req.csr, fs.readFileSync(path.join(mine, 'alice.csr'), 'utf8'), 'the CSR as the operator made it');
    assert.ok(!JSON.stringify(req).includes('PRIVATE KEY'));
    assert.deepEqual(fs.readdirSync(adminOut).sort(), ['ca.pem', 'cert.pem'], 'no key on the admin side');
    for (const file of ['ca.pem', 'cert.pem']) assert.equal(fs.statSync(path.join(adminOut, file)).mode & 0o777, 0o600, file);
    const cert = new crypto.X509Certificate(fs.readFileSync(path.join(adminOut, 'cert.pem')));
    assert.ok(cert.checkPrivateKey(crypto.createPrivateKey(key)), "the certificate is for the operator's key");

    // Signing straight into the operator's directory: key.pem stays as it was.
    const f2 = fake(signing());
    assert.equal(await run(['user', 'create', 'alice', '--role', 'operator', '--csr', path.join(mine, 'alice.csr'), '--out', mine], f2.io), 0, f2.err());
    assert.equal(fs.readFileSync(path.join(mine, 'key.pem'), 'utf8'), key);
    assert.deepEqual(fs.readdirSync(mine).sort(), ['alice.csr', 'ca.pem', 'cert.pem', 'key.pem']);
    // ... but never over a certificate already there.
    const f3 = fake(signing());
    assert.equal(await run(['user', 'create', 'alice', '--role', 'operator', '--csr', path.join(mine, 'alice.csr'), '--out', mine], f3.io), 1);
    assert.match(f3.err(), /^convoy: --out: .* already holds ca.pem, cert.pem \(not overwritten/);
    assert.deepEqual(f3.calls, []);
  });

  it('create --csr: a missing, oversized, non-CSR, key-holding or forged file is one line naming it; nothing sent or written', async () => {
    const out = path.join(dir, 'out');
    const file = (name: string, text: string | Buffer) => {
      const p = path.join(dir, name);
      fs.writeFileSync(p, text);
      return p;
    };
    const { createKeyAndCsr } = await import('../../common/csr');
    const { keyPem, csrPem } = await createKeyAndCsr('x');
    // A CSR whose signature does not verify: one byte of the signature changed.
    const b64 = csrPem.split('\n').filter((l) => l && !l.startsWith('-----')).join('');
    const der = Buffer.from(b64, 'base64');
    der[der.length - 3] ^= 0xff;
    const forged = `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString('base64').replace(/(.{64})/g, '$1\n')}\n-----END CERTIFICATE REQUEST-----\n`;
    for (const [p, re] of [
      [path.join(dir, 'none.csr'), /^convoy: --csr: cannot read .*none\.csr \(ENOENT\)\n$/],
      [file('big.csr', Buffer.alloc(20_000, 65)), /^convoy: --csr: .*big\.csr is 20000 bytes \(a CSR is at most 16384\)\n$/],
      [file('cert.csr', 'hello'), /^convoy: --csr: .*cert\.csr is not a PEM certificate signing request\n$/],
      [file('both.csr', keyPem + csrPem), /^convoy: --csr: .*both\.csr holds a private key: send the CSR alone\n$/],
      [file('forged.csr', forged), /^convoy: --csr: .*forged\.csr: /],
    ] as const) {
      const f = fake(signing());
      assert.equal(await run(['user', 'create', 'bob', '--role', 'viewer', '--csr', p, '--out', out], f.io), 1, p);
      assert.match(f.err(), re);
      assert.deepEqual(f.calls, []);
      assert.ok(!fs.existsSync(out), 'nothing written');
    }
  });

  it('create: refuses a bad role or name in one line naming it, sending and writing nothing', async () => {
    const out = path.join(dir, 'x');
    for (const [args, re] of [
      [['user', 'create', 'carol', '--role', 'root', '--out', out], /^convoy: --role: "root" is not one of admin, operator, viewer\n$/],
      [['user', 'create', 'Carol!', '--role', 'viewer', '--out', out], /^convoy: NAME: "Carol!" is not a user name/],
      [['user', 'create', 'local-root', '--role', 'admin', '--out', out], /^convoy: NAME: "local-root" is reserved\n$/],
    ] as const) {
      const f = fake(signing());
      assert.equal(await run([...args], f.io), 1);
      assert.match(f.err(), re);
      assert.deepEqual(f.calls, []);
      assert.ok(!fs.existsSync(out), 'nothing written');
    }
    const f = fake(signing());
    assert.notEqual(await run(['user', 'create', 'carol', '--out', out], f.io), 0);
    assert.match(f.err(), /--role/);
  });

  it('create: never overwrites a bundle, and writes nothing when the manager refuses', async () => {
    const out = path.join(dir, 'held');
    fs.mkdirSync(out);
    fs.writeFileSync(path.join(out, 'key.pem'), 'precious');
    const f = fake(signing());
    assert.equal(await run(['user', 'create', 'dave', '--role', 'viewer', '--out', out], f.io), 1);
    assert.match(f.err(), /^convoy: --out: .*held already holds key.pem \(not overwritten; choose another directory\)\n$/);
    assert.equal(fs.readFileSync(path.join(out, 'key.pem'), 'utf8'), 'precious');
    assert.deepEqual(f.calls, []);

    const denied = fake({
      createUser: async () => {
        throw Object.assign(new Error('7 PERMISSION_DENIED'), { code: grpc.status.PERMISSION_DENIED, details: 'role operator ("olga") may not call CreateUser (allowed: admin)', metadata: new grpc.Metadata() });
      },
    });
    const out2 = path.join(dir, 'new');
    assert.equal(await run(['user', 'create', 'erin', '--role', 'viewer', '--out', out2], denied.io), 1);
    assert.equal(denied.err(), 'convoy: role operator ("olga") may not call CreateUser (allowed: admin)\n');
    assert.ok(!fs.existsSync(out2));
  });

  it('ls lists users; rm removes each, reporting failures', async () => {
    const users = [
      { id: 'bob', name: 'bob', role: 'operator', serial: 'ABCDEF0123456789ABCD', notAfter: Date.parse('2026-04-01T00:00:00Z'), createdAt: Date.parse('2026-01-01T11:00:00Z'), createdBy: 'alice (admin)' },
      { id: 'amy', name: 'amy', role: 'viewer', serial: '', notAfter: 0, createdAt: 0, createdBy: '' },
    ] as User[];
    const f = fake({ listUsers: async () => ({ users }) });
    assert.equal(await run(['user', 'ls'], f.io), 0);
    const lines = f.out().trim().split('\n');
    assert.match(lines[0], /^NAME\s+ROLE\s+CERTIFICATE\s+EXPIRES\s+CREATED\s+BY$/);
    assert.match(lines[1], /^amy\s+viewer\s+\(not issued\)/);
    assert.match(lines[2], /^bob\s+operator\s+ABCDEF0123456789\s+2026-04-01\s+.*alice \(admin\)$/);
    const removed: string[] = [];
    const r = fake({
      removeUser: async (req) => {
        if (req.name === 'ghost') throw Object.assign(new Error('5'), { code: grpc.status.NOT_FOUND, details: 'user "ghost" not found', metadata: new grpc.Metadata() });
        removed.push(req.name ?? '');
        return {};
      },
    });
    assert.equal(await run(['user', 'rm', 'bob', 'ghost', 'amy'], r.io), 1);
    assert.deepEqual(removed, ['bob', 'amy']);
    assert.equal(r.err(), 'convoy: user "ghost" not found\n');
  });

  it('task exec asks the manager first: a refused exec goes no further', async () => {
    const running = { id: 't1', nodeId: 'n1', slot: 1, serviceName: 'web', status: { state: 'RUNNING' } };
    const f = fake({
      getTask: async () => ({ task: running as never }),
      startExec: async () => {
        throw Object.assign(new Error('7'), { code: grpc.status.PERMISSION_DENIED, details: 'role viewer ("victor") may not call StartExec (allowed: admin, operator)', metadata: new grpc.Metadata() });
      },
    });
    assert.equal(await run(['task', 'exec', 't1', '--', 'cat', '/etc/shadow'], f.io), 1);
    assert.equal(f.err(), 'convoy: role viewer ("victor") may not call StartExec (allowed: admin, operator)\n');
    assert.deepEqual(f.calls.map((c) => c.method), ['getTask', 'startExec']);
    assert.deepEqual(f.calls[1].req, { task: 't1', args: ['cat', '/etc/shadow'], user: '', tty: false });
  });
});
