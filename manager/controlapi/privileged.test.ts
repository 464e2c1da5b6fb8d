// --privileged and --device through the Control API over mutual TLS: only an
// admin identity may ask for them, and only once the cluster allows them
// (UpdateCluster allowPrivileged, off by default); an operator is refused
// whatever the policy, on create, update and rollback; nothing is written.
import { strict as assert } from 'node:assert';
import * as grpc from '@grpc/grpc-js';
import type { ControlClient, Service, ServiceSpec } from '../../proto/mod';
import { createFakeIssuer } from '../auth/testing/fake-issuer';
import { startSecureControl, type SecureControl } from '../auth/testing/secure-control';

type C = ControlClient & { md: grpc.Metadata };
function call<Res = unknown>(c: C, method: string, req: object): Promise<Res> {
  return new Promise((resolve, reject) => {
    const fn = (c as unknown as Record<string, (r: object, md: grpc.Metadata, cb: (e: grpc.ServiceError | null, r?: unknown) => void) => void>)[method];
    fn.call(c, req, c.md, (e, r) => (e ? reject(e) : resolve(r as Res)));
  });
}
async function refused(p: Promise<unknown>, code: grpc.status, re: RegExp): Promise<void> {
  const e = await p.then(
    () => undefined,
    (err: grpc.ServiceError) => err,
  );
  assert.ok(e, 'accepted');
  assert.equal(e.code, code, `${grpc.status[e.code]} instead of ${grpc.status[code]}: ${e.details}`);
  assert.match(e.details, re);
}
const spec = (name: string, c: Partial<NonNullable<ServiceSpec['container']>> = {}): Partial<ServiceSpec> => ({ name, replicas: 1, container: { image: 'registry.local/web:1', ...c } as ServiceSpec['container'] });
const PRIV = { privileged: true };
const DEV = { devices: [{ pathOnHost: '/dev/fuse', pathInContainer: '', permissions: 'rwm' }] };

describe('privileged containers and devices: admin role and cluster policy', function () {
  this.timeout(30_000);
  let h: SecureControl;
  let admin: C;
  let operator: C;
  const services = () => [...h.cache.services.values()].map((s) => s.spec?.name).sort();
  const allow = (on: boolean) => call(admin, 'UpdateCluster', { allowPrivileged: on, setAllowPrivileged: true });

  before(async () => {
    const issuer = await createFakeIssuer('c1');
    h = await startSecureControl({ server: await issuer.bundle({ id: 'm1', role: 'manager', ips: ['127.0.0.1'], dns: ['localhost'] }), issuer });
    admin = h.client(await issuer.bundle({ id: 'root-admin', role: 'admin' }));
    operator = h.client(await issuer.bundle({ id: 'bob', role: 'operator' }));
  });
  after(async () => h?.stop());

  it('the policy is off by default: an admin is refused --privileged and --device, naming the setting', async () => {
    const info = await call<{ cluster: { allowPrivileged: boolean } }>(admin, 'GetClusterInfo', {});
    assert.equal(info.cluster.allowPrivileged, false);
    await refused(call(admin, 'CreateService', { spec: spec('p1', PRIV) }), grpc.status.FAILED_PRECONDITION, /^spec\.container\.privileged: the cluster does not allow privileged containers or devices \(an admin turns it on: convoy cluster update --allow-privileged\)$/);
    await refused(call(admin, 'CreateService', { spec: spec('d1', DEV) }), grpc.status.FAILED_PRECONDITION, /^spec\.container\.devices: the cluster does not allow/);
    assert.deepEqual(services(), [], 'nothing written');
  });

  it('an operator may not change the policy, nor ask for either while it is on', async () => {
    await refused(call(operator, 'UpdateCluster', { allowPrivileged: true, setAllowPrivileged: true }), grpc.status.PERMISSION_DENIED, /role operator \("bob"\) may not call UpdateCluster/);
    await allow(true);
    await refused(call(operator, 'CreateService', { spec: spec('p2', PRIV) }), grpc.status.PERMISSION_DENIED, /^spec\.container\.privileged: a privileged container may only be asked for by an admin identity \(the caller is operator "bob"\)$/);
    await refused(call(operator, 'CreateService', { spec: spec('d2', DEV) }), grpc.status.PERMISSION_DENIED, /^spec\.container\.devices: host devices may only be asked for by an admin identity/);
    assert.deepEqual(services(), []);
  });

  it('an admin may once the cluster allows it; an operator cannot update such a service, nor roll one back to such a spec', async () => {
    const made = await call<{ service: Service }>(admin, 'CreateService', { spec: spec('priv', PRIV) });
    assert.equal(made.service.spec?.container?.privileged, true);
    await call(admin, 'CreateService', { spec: spec('dev', DEV) });
    assert.deepEqual(services(), ['dev', 'priv']);
    const cur = h.cache.services.get(made.service.id)!;
    await refused(call(operator, 'UpdateService', { service: 'priv', version: 0, spec: { ...cur.spec, container: { ...cur.spec!.container, image: 'registry.local/web:2' } } }), grpc.status.PERMISSION_DENIED, /spec\.container\.privileged/);
    // The admin drops the flag; the operator may not roll back to the privileged spec.
    await call(admin, 'UpdateService', { service: 'priv', version: 0, spec: { ...cur.spec, container: { ...cur.spec!.container, privileged: false } } });
    await refused(call(operator, 'RollbackService', { service: 'priv' }), grpc.status.PERMISSION_DENIED, /spec\.container\.privileged/);
    // An operator may still manage an unprivileged service.
    await call(operator, 'CreateService', { spec: spec('plain') });
  });

  it('turned off again, the admin is refused again', async () => {
    await allow(false);
    await refused(call(admin, 'CreateService', { spec: spec('p3', PRIV) }), grpc.status.FAILED_PRECONDITION, /the cluster does not allow/);
  });
});
