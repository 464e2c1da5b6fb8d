// Secrets and configs through the Control API (MemoryStore): values sealed
// in the store and never returned for secrets, limits refused with nothing
// written, references resolved or refused by name, rm in use refused naming
// the services, rotation bumping the version and rolling the services.
import { strict as assert } from 'node:assert';
import * as crypto from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import type { Config, Secret, Service, ServiceSpec } from '../../proto/mod';
import { openValue } from '../crypto/values';
import { key } from '../store/store';
import { rpc, startControlHarness, type ControlHarness } from './testing/harness';
import { KeyRing } from '../crypto/kek';

type SecretRes = { secret: Secret; services: string[] };
type ConfigRes = { config: Config; services: string[]; data: Buffer };
type ServiceRes = { service: Service };

async function refused(p: Promise<unknown>, code: grpc.status, re?: RegExp): Promise<grpc.ServiceError> {
  const e = await p.then(
    () => undefined,
    (err: grpc.ServiceError) => err,
  );
  assert.ok(e, 'accepted');
  assert.equal(e.code, code, `${grpc.status[e.code]} instead of ${grpc.status[code]}: ${e.details}`);
  if (re) assert.match(e.details, re);
  assert.ok(!e.details.includes('\n'), 'one line');
  return e;
}

const VALUE = 'hunter2-the-secret-value-' + crypto.randomBytes(8).toString('hex');

describe('control API: secrets and configs', function () {
  this.timeout(20_000);
  let h: ControlHarness;
  const kek = new KeyRing([crypto.randomBytes(32)]);
  beforeEach(async () => {
    h = await startControlHarness({ kek });
  });
  afterEach(async () => {
    await h?.stop();
  });

  const createSecret = (name: string, data: Buffer | string = VALUE, labels: Record<string, string> = {}) => rpc<SecretRes>((cb) => h.client.CreateSecret({ spec: { name, labels }, data: Buffer.from(data) }, cb));
  const getSecret = (secret: string) => rpc<SecretRes>((cb) => h.client.GetSecret({ secret }, cb));
  const listSecrets = () => rpc<{ secrets: SecretRes[] }>((cb) => h.client.ListSecrets({}, cb));
  const createService = (name: string, container: Partial<NonNullable<ServiceSpec['container']>>) =>
    rpc<ServiceRes>((cb) => h.client.CreateService({ spec: { name, replicas: 1, container: { image: 'registry.local/web:1', ...container } as ServiceSpec['container'] } }, cb));
  /** Every key and value under /convoy/, as etcd would hold them. */
  const dump = async () => {
    let all = '';
    await h.store.load((kv) => (all += `${kv.key}=${kv.value}\n`));
    return all;
  };

  it('creates a secret sealed under its own data key: the store never holds the value, inspect and ls never return it', async () => {
    const r = await createSecret('db-password', VALUE, { team: 'a' });
    assert.equal(r.secret.spec?.name, 'db-password');
    assert.equal(Number(r.secret.version), 1);
    assert.equal(Number(r.secret.size), VALUE.length);
    assert.equal(r.secret.data, '');
    assert.equal(r.secret.dataKey, '');
    const all = await dump();
    assert.ok(!all.includes(VALUE), 'plaintext in the store');
    assert.ok(!all.includes(Buffer.from(VALUE).toString('base64')), 'base64 plaintext in the store');
    // Opens with the KEK, bound to its key: the sealed value moved to another id does not open.
    const stored = (await h.store.get<Secret>('secrets', r.secret.id))!;
    assert.equal(openValue(kek, stored, key('secrets', stored.id)).toString(), VALUE);
    assert.throws(() => openValue(kek, stored, key('secrets', 'other')));
    assert.throws(() => openValue(new KeyRing([crypto.randomBytes(32)]), stored, key('secrets', stored.id)));
    for (const s of [(await getSecret('db-password')).secret, (await listSecrets()).secrets[0].secret]) {
      assert.equal(s.data, '');
      assert.equal(s.dataKey, '');
      assert.ok(!JSON.stringify(s).includes(VALUE));
    }
  });

  it('refuses bad names, labels, empty and oversized values and duplicates, in one line naming the field, writing nothing', async () => {
    const before = await dump();
    await refused(createSecret('', VALUE), grpc.status.INVALID_ARGUMENT, /spec\.name/);
    await refused(createSecret('../etc', VALUE), grpc.status.INVALID_ARGUMENT, /spec\.name: "\.\.\/etc" is not a valid secret name/);
    await refused(createSecret('x'.repeat(65), VALUE), grpc.status.INVALID_ARGUMENT, /spec\.name/);
    await refused(createSecret('ok', VALUE, { ['k'.repeat(200)]: 'v' }), grpc.status.INVALID_ARGUMENT, /spec\.labels/);
    await refused(createSecret('ok', ''), grpc.status.INVALID_ARGUMENT, /data: the secret value is empty/);
    await refused(createSecret('ok', Buffer.alloc(500 * 1024 + 1, 1)), grpc.status.INVALID_ARGUMENT, /data: .*at most 500 KiB/);
    assert.equal(await dump(), before, 'something was written');
    await createSecret('ok', Buffer.alloc(500 * 1024, 1));
    await refused(createSecret('ok', VALUE), grpc.status.ALREADY_EXISTS, /secret "ok" already exists/);
  });

  it('resolves service references by name (default target /run/secrets/NAME, mode 0444), refuses unknown ones naming them, and bad targets', async () => {
    const s = await createSecret('api-key');
    const svc = await createService('web', { secrets: [{ id: '', name: 'api-key', target: '', uid: 0, gid: 0, mode: 0 }] });
    assert.deepEqual(svc.service.spec?.container?.secrets, [{ id: s.secret.id, name: 'api-key', target: '/run/secrets/api-key', uid: 0, gid: 0, mode: 0o444 }]);
    assert.ok(!JSON.stringify(svc.service).includes(VALUE));
    await refused(createService('w2', { secrets: [{ id: '', name: 'nope', target: '', uid: 0, gid: 0, mode: 0 }] }), grpc.status.NOT_FOUND, /spec\.container\.secrets\[0\]\.name: secret "nope" not found/);
    const bad = async (target: string, re: RegExp) =>
      refused(createService('w3', { secrets: [{ id: '', name: 'api-key', target, uid: 0, gid: 0, mode: 0 }] }), grpc.status.INVALID_ARGUMENT, re);
    await bad('/run/../etc/shadow', /secrets\[0\]\.target: .* is not a clean absolute path/);
    await bad('/proc/self/x', /secrets\[0\]\.target: .*runtime mounts itself/);
    await bad('/', /secrets\[0\]\.target/);
    await bad('x'.repeat(2000), /secrets\[0\]\.target: longer than 1024 bytes/);
    await refused(createService('w4', { secrets: [{ id: '', name: 'api-key', target: '/a', uid: 0, gid: 0, mode: 0o4755 }] }), grpc.status.INVALID_ARGUMENT, /secrets\[0\]\.mode/);
    await refused(
      createService('w5', { secrets: [{ id: '', name: 'api-key', target: '/a', uid: 0, gid: 0, mode: 0 }], mounts: [{ type: 'TMPFS', source: '', target: '/a', readOnly: false, tmpfsSizeBytes: 0 }] }),
      grpc.status.INVALID_ARGUMENT,
      /secrets\[0\]\.target: "\/a" is mounted twice/,
    );
    // A relative target goes under /run/secrets.
    const rel = await createService('w6', { secrets: [{ id: '', name: 'api-key', target: 'app/key', uid: 1000, gid: 1000, mode: 0o400 }] });
    assert.equal(rel.service.spec?.container?.secrets[0].target, '/run/secrets/app/key');
  });

  it('refuses to remove a secret in use, naming the services; removes it once unused', async () => {
    await createSecret('tls');
    await createService('web', { secrets: [{ id: '', name: 'tls', target: '', uid: 0, gid: 0, mode: 0 }] });
    await createService('api', { secrets: [{ id: '', name: 'tls', target: '', uid: 0, gid: 0, mode: 0 }] });
    assert.deepEqual((await getSecret('tls')).services, ['api', 'web']);
    await refused(rpc((cb) => h.client.RemoveSecret({ secret: 'tls' }, cb)), grpc.status.FAILED_PRECONDITION, /secret "tls" is in use by service\(s\) api, web/);
    await rpc((cb) => h.client.RemoveService({ service: 'web' }, cb));
    await rpc((cb) => h.client.RemoveService({ service: 'api' }, cb));
    await rpc((cb) => h.client.RemoveSecret({ secret: 'tls' }, cb));
    await refused(getSecret('tls'), grpc.status.NOT_FOUND, /secret "tls" not found/);
    assert.ok(!(await dump()).includes('/convoy/secrets/'));
  });

  it('refuses to seal under a key-encryption key a rotation retired (a manager not restarted with the new key first), writing nothing', async () => {
    await createSecret('before');
    await h.store.put('ca', { id: 'kek', meta: null, retired: [kek.id] }, true);
    // The read barrier (/convoy/sync/) moves with every read; the objects must not.
    const objects = async () => (await dump()).split('\n').filter((l) => !l.startsWith('/convoy/sync/')).join('\n');
    const before = await objects();
    await refused(createSecret('after'), grpc.status.FAILED_PRECONDITION, new RegExp(`key-encryption key ${kek.id} .* was retired by a rotation`));
    await refused(rpc<SecretRes>((cb) => h.client.RotateSecret({ secret: 'before', data: Buffer.from('v2') }, cb)), grpc.status.FAILED_PRECONDITION, /retired/);
    assert.equal(await objects(), before, 'nothing written');
  });

  it('rotates: a new version sealed afresh, and every service using it gets a new spec version and an update', async () => {
    const s = await createSecret('token', 'v1-value');
    const web = await createService('web', { secrets: [{ id: '', name: 'token', target: '', uid: 0, gid: 0, mode: 0 }] });
    const other = await createService('other', {});
    const r = await rpc<SecretRes>((cb) => h.client.RotateSecret({ secret: 'token', data: Buffer.from('v2-value') }, cb));
    assert.equal(Number(r.secret.version), 2);
    assert.deepEqual(r.services, ['web']);
    const stored = (await h.store.get<Secret>('secrets', s.secret.id))!;
    assert.equal(openValue(kek, stored, key('secrets', s.secret.id)).toString(), 'v2-value');
    const after = (await rpc<ServiceRes>((cb) => h.client.GetService({ service: 'web' }, cb))).service;
    assert.equal(after.specVersion, web.service.specVersion + 1);
    assert.equal(after.updateStatus?.state, 'UPDATING');
    assert.match(after.updateStatus?.message ?? '', /secret "token" rotated to version 2/);
    assert.equal((await rpc<ServiceRes>((cb) => h.client.GetService({ service: 'other' }, cb))).service.specVersion, other.service.specVersion);
    await refused(rpc((cb) => h.client.RotateSecret({ secret: 'token', data: Buffer.alloc(0) }, cb)), grpc.status.INVALID_ARGUMENT, /data/);
    await refused(rpc((cb) => h.client.RotateSecret({ secret: 'nope', data: Buffer.from('x') }, cb)), grpc.status.NOT_FOUND, /secret "nope" not found/);
  });

  it('configs: sealed in the store too, but GetConfig returns the value (as docker config inspect); default target /NAME', async () => {
    const c = await rpc<ConfigRes>((cb) => h.client.CreateConfig({ spec: { name: 'nginx.conf', labels: {} }, data: Buffer.from(VALUE) }, cb));
    assert.equal(c.data.length, 0, 'create returns no value');
    assert.ok(!(await dump()).includes(VALUE));
    const g = await rpc<ConfigRes>((cb) => h.client.GetConfig({ config: 'nginx.conf' }, cb));
    assert.equal(g.data.toString(), VALUE);
    assert.equal(g.config.data, '');
    const l = await rpc<{ configs: ConfigRes[] }>((cb) => h.client.ListConfigs({}, cb));
    assert.equal(l.configs[0].data.length, 0, 'ls returns no value');
    const svc = await createService('web', { configs: [{ id: '', name: 'nginx.conf', target: '', uid: 0, gid: 0, mode: 0 }] });
    assert.equal(svc.service.spec?.container?.configs[0].target, '/nginx.conf');
    await refused(rpc((cb) => h.client.RemoveConfig({ config: 'nginx.conf' }, cb)), grpc.status.FAILED_PRECONDITION, /config "nginx.conf" is in use by service\(s\) web/);
  });

  it('registry login keeps credentials as a secret per registry; --with-registry-auth refers to the one of the image registry; re-login rolls nothing', async () => {
    const login = (registry: string, username = 'alice', password = 'pw-' + VALUE) => rpc<SecretRes>((cb) => h.client.RegistryLogin({ registry, username, password }, cb));
    const l = await login('registry.example.com:5000');
    assert.equal(l.secret.spec?.name, 'registry-auth-registry.example.com_5000');
    assert.equal(l.secret.spec?.labels['convoy.registry'], 'registry.example.com:5000');
    assert.ok(!(await dump()).includes(VALUE), 'the password is in the store');
    const svc = await createService('web', { image: 'registry.example.com:5000/team/web:1', withRegistryAuth: true });
    assert.equal(svc.service.spec?.container?.registryAuth?.id, l.secret.id);
    assert.ok(!JSON.stringify(svc.service).includes(VALUE));
    // A client cannot point registryAuth at another secret of its choosing.
    const other = await createSecret('unrelated');
    const forged = await createService('forged', { image: 'registry.local/web:1', registryAuth: { id: other.secret.id, name: 'unrelated', target: '', uid: 0, gid: 0, mode: 0 } });
    assert.equal(forged.service.spec?.container?.registryAuth, null);
    await refused(createService('hub', { image: 'library/nginx:1', withRegistryAuth: true }), grpc.status.FAILED_PRECONDITION, /spec\.container\.withRegistryAuth: no credentials for registry "docker\.io" \(run convoy registry login docker\.io\)/);
    // Again: a new version, no service rolled (the credentials serve pulls only).
    const again = await login('registry.example.com:5000', 'bob');
    assert.equal(again.secret.id, l.secret.id);
    assert.equal(Number(again.secret.version), 2);
    assert.equal((await rpc<ServiceRes>((cb) => h.client.GetService({ service: 'web' }, cb))).service.specVersion, svc.service.specVersion);
    await refused(rpc((cb) => h.client.RemoveSecret({ secret: l.secret.spec!.name }, cb)), grpc.status.FAILED_PRECONDITION, /in use by service\(s\) web/);
    await refused(login('not a host'), grpc.status.INVALID_ARGUMENT, /registry: "not a host" is not a registry host/);
    await refused(login('r.example.com', 'a:b'), grpc.status.INVALID_ARGUMENT, /username/);
    await refused(login('r.example.com', 'a', ''), grpc.status.INVALID_ARGUMENT, /password/);
  });
});
