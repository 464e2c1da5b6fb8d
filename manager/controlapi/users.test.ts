// Users through the Control API over mutual TLS, signed by a fake issuer:
// an admin creates one from a CSR (the key never leaves the client), the new
// certificate works with its role at once, ls shows it, rm revokes it (its
// next call is refused), and bad input names the field and stores nothing.
import { strict as assert } from 'node:assert';
import * as crypto from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { createKeyAndCsr } from '../../common/csr';
import { identityFromCert, type TlsBundle } from '../../common/identity';
import type { ControlClient, ServiceSpec, User } from '../../proto/mod';
import { createFakeIssuer, type FakeIssuer } from '../auth/testing/fake-issuer';
import { startSecureControl, type SecureControl } from '../auth/testing/secure-control';

type C = ControlClient & { md: grpc.Metadata };
function call<Res = unknown>(c: C, method: string, req: object): Promise<Res> {
  return new Promise((resolve, reject) => {
    const fn = (c as unknown as Record<string, (r: object, md: grpc.Metadata, cb: (e: grpc.ServiceError | null, r?: unknown) => void) => void>)[method];
    fn.call(c, req, c.md, (e, r) => (e ? reject(e) : resolve(r as Res)));
  });
}
async function refused(p: Promise<unknown>, code: grpc.status, re?: RegExp): Promise<void> {
  const e = await p.then(
    () => undefined,
    (err: grpc.ServiceError) => err,
  );
  assert.ok(e, 'accepted');
  assert.equal(e.code, code, `${grpc.status[e.code]} instead of ${grpc.status[code]}: ${e.details}`);
  if (re) assert.match(e.details, re);
}
const spec = (name: string): Partial<ServiceSpec> => ({ name, replicas: 1, container: { image: 'registry.local/web:1' } as ServiceSpec['container'] });

describe('users (CreateUser, ListUsers, RemoveUser)', function () {
  this.timeout(30_000);
  let issuer: FakeIssuer;
  let h: SecureControl;
  let admin: C;
  let adminBundle: TlsBundle;

  before(async () => {
    issuer = await createFakeIssuer('c1');
    h = await startSecureControl({ server: await issuer.bundle({ id: 'm1', role: 'manager', ips: ['127.0.0.1'], dns: ['localhost'] }), issuer });
    adminBundle = await issuer.bundle({ id: 'root-admin', role: 'admin' });
    admin = h.client(adminBundle);
  });
  after(async () => h?.stop());

  const users = async () => (await call<{ users: User[] }>(admin, 'ListUsers', {})).users;

  it('signs the CSR as the named user and role; the certificate works at once with that role', async () => {
    const { keyPem: key, csrPem: csr } = await createKeyAndCsr('bob');
    const r = await call<{ user: User; cert: string; ca: string }>(admin, 'CreateUser', { name: 'bob', role: 'operator', csr });
    assert.equal(r.ca, issuer.caPem);
    const who = identityFromCert(r.cert);
    assert.deepEqual({ id: who?.id, role: who?.role, cluster: who?.cluster }, { id: 'bob', role: 'operator', cluster: 'c1' });
    assert.equal(r.user.serial, who?.serial);
    assert.equal(r.user.createdBy, 'root-admin (admin)');
    // The certificate is for the CSR's key: the one that never left this test.
    assert.ok(new crypto.X509Certificate(r.cert).checkPrivateKey(crypto.createPrivateKey(key)));
    const bob = h.client({ ca: r.ca, cert: r.cert, key });
    await call(bob, 'CreateService', { spec: spec('bobs') });
    await refused(call(bob, 'ListUsers', {}), grpc.status.PERMISSION_DENIED, /role operator \("bob"\) may not call ListUsers/);
    const rec = h.audit.filter((a) => a.action === 'CreateUser').pop();
    assert.equal(rec?.who.id, 'root-admin');
    assert.deepEqual(rec?.target, { kind: 'user', id: 'bob', name: 'bob' });
    assert.equal(rec?.detail?.role, 'operator');
    assert.ok(!JSON.stringify(h.audit).includes('CERTIFICATE REQUEST'), 'no CSR in the audit trail');

    const ls = await users();
    assert.deepEqual(ls.map((u) => [u.name, u.role, u.serial]), [['bob', 'operator', who?.serial]]);

    // rm revokes (the issuer is told) and the next call with that certificate is refused.
    await call(admin, 'RemoveUser', { name: 'bob' });
    assert.deepEqual(issuer.revoked, ['bob']);
    await refused(call(bob, 'ListServices', {}), grpc.status.UNAUTHENTICATED, /certificate of operator "bob" is revoked/);
    assert.deepEqual(await users(), []);
    const rm = h.audit.filter((a) => a.action === 'RemoveUser').pop();
    assert.equal(rm?.who.id, 'root-admin');
    assert.equal(rm?.target.name, 'bob');
  });

  it('refuses bad input naming the field, signing and storing nothing', async () => {
    const { csrPem: csr } = await createKeyAndCsr('x');
    const before = issuer.issued.length;
    await refused(call(admin, 'CreateUser', { name: 'carol', role: 'root', csr }), grpc.status.INVALID_ARGUMENT, /^role: "root" is not one of admin, operator, viewer$/);
    await refused(call(admin, 'CreateUser', { name: 'Carol/..', role: 'viewer', csr }), grpc.status.INVALID_ARGUMENT, /^name: /);
    await refused(call(admin, 'CreateUser', { name: 'local-root', role: 'viewer', csr }), grpc.status.INVALID_ARGUMENT, /name: "local-root" is reserved/);
    await refused(call(admin, 'CreateUser', { name: 'carol', role: 'viewer', csr: 'hello' }), grpc.status.INVALID_ARGUMENT, /^csr: not a PEM/);
    await refused(call(admin, 'RemoveUser', { name: 'nobody-here' }), grpc.status.NOT_FOUND, /user "nobody-here" not found/);
    // A CSR whose signature does not verify (its signature bytes flipped).
    const der = Buffer.from(csr.replace(/-----[^-]+-----/g, '').replace(/\s/g, ''), 'base64');
    der[der.length - 5] ^= 0xff;
    const broken = `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString('base64')}\n-----END CERTIFICATE REQUEST-----\n`;
    await refused(call(admin, 'CreateUser', { name: 'carol', role: 'viewer', csr: broken }), grpc.status.INVALID_ARGUMENT, /^csr: its signature does not verify/);
    await refused(call(admin, 'CreateUser', { name: 'carol', role: 'viewer', csr: '-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n' }), grpc.status.INVALID_ARGUMENT, /^csr: not a PKCS#10/);
    assert.equal(issuer.issued.length, before, 'nothing signed');
    assert.deepEqual(await users(), [], 'nothing stored');
  });

  it('refuses a taken name, and keeps the first user', async () => {
    const a = await createKeyAndCsr('dave');
    await call(admin, 'CreateUser', { name: 'dave', role: 'viewer', csr: a.csrPem });
    const b = await createKeyAndCsr('dave');
    await refused(call(admin, 'CreateUser', { name: 'dave', role: 'admin', csr: b.csrPem }), grpc.status.ALREADY_EXISTS, /name: user "dave" already exists/);
    assert.deepEqual((await users()).map((u) => [u.name, u.role]), [['dave', 'viewer']]);
    assert.equal(issuer.issued.filter((i) => i.id === 'dave').length, 1);
  });

  it('lets no one but an admin create a user', async () => {
    const v = await issuer.bundle({ id: 'vic', role: 'viewer' });
    const { csrPem: csr } = await createKeyAndCsr('admin-please');
    await refused(call(h.client(v), 'CreateUser', { name: 'eve', role: 'admin', csr }), grpc.status.PERMISSION_DENIED, /viewer/);
    assert.ok(!(await users()).some((u) => u.name === 'eve'));
  });

  it('forgets the name again when the CA refuses to sign', async () => {
    const { csrPem: csr } = await createKeyAndCsr('frank');
    issuer.failNext = 'the CA is sealed';
    await refused(call(admin, 'CreateUser', { name: 'frank', role: 'viewer', csr }), grpc.status.FAILED_PRECONDITION, /the cluster CA did not sign: the CA is sealed/);
    assert.ok(!(await users()).some((u) => u.name === 'frank'));
    // and the name can be taken afterwards
    await call(admin, 'CreateUser', { name: 'frank', role: 'viewer', csr });
    assert.ok((await users()).some((u) => u.name === 'frank' && u.serial));
  });
});
