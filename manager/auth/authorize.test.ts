// Roles on every Control call, over real mutual TLS (certificates from the
// test CA reach the wrapper through getAuthContext): each role against
// representative RPCs, node certificates refused, forged forwarding refused,
// revoked certificates refused, and an audit record naming the identity
// behind every change (events and the JSON-lines log).
import { strict as assert } from 'node:assert';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { createTestCa, type TestCa } from '../../common/testing/test-ca';
import { LOCAL_ROOT, type TlsBundle } from '../../common/identity';
import type { AuditEvent } from '../../proto/events';
import type { ControlClient, Service, ServiceSpec, Task } from '../../proto/mod';
import { node as nodeFixture } from '../orchestrator/testing/fixtures';
import { authorize, callerOf, FORWARDED_FOR, forwardedMetadata } from './authorize';
import { LOCAL_SOCKET } from './identity';
import { startSecureControl, type SecureControl } from './testing/secure-control';

type C = ControlClient & { md: grpc.Metadata };

function call<Res = unknown>(c: C, method: string, req: object): Promise<Res> {
  return new Promise((resolve, reject) => {
    const fn = (c as unknown as Record<string, (r: object, md: grpc.Metadata, cb: (e: grpc.ServiceError | null, r?: unknown) => void) => void>)[method];
    fn.call(c, req, c.md, (e, r) => (e ? reject(e) : resolve(r as Res)));
  });
}

async function refused(p: Promise<unknown>, code: grpc.status, re?: RegExp): Promise<grpc.ServiceError> {
  const e = await p.then(
    () => undefined,
    (err: grpc.ServiceError) => err,
  );
  assert.ok(e, 'accepted');
  assert.equal(e.code, code, `${grpc.status[e.code]} instead of ${grpc.status[code]}: ${e.details}`);
  if (re) assert.match(e.details, re);
  return e;
}

const spec = (name: string): Partial<ServiceSpec> => ({ name, replicas: 1, container: { image: 'registry.local/web:1' } as ServiceSpec['container'] });
const serialOf = (b: TlsBundle) => new crypto.X509Certificate(b.cert).serialNumber.toUpperCase();

describe('authorization of the Control API (mutual TLS)', function () {
  this.timeout(30_000);
  let ca: TestCa;
  let h: SecureControl;
  const b: Record<string, TlsBundle> = {};
  const clients: Record<string, C> = {};

  before(async () => {
    ca = await createTestCa('c1');
    const server = await ca.bundle({ id: 'm1', role: 'manager', ips: ['127.0.0.1'], dns: ['localhost'] });
    for (const [name, role] of [['alice', 'admin'], ['olga', 'operator'], ['victor', 'viewer'], ['w1', 'worker'], ['m2', 'manager']] as const) b[name] = await ca.bundle({ id: name, role });
    h = await startSecureControl({ server });
    for (const k of Object.keys(b)) clients[k] = h.client(b[k]);
    // A running task on a node, for exec.
    await h.store.put('nodes', { ...nodeFixture('n1'), meta: null }, true);
    await h.store.put('tasks', { id: 't1', meta: null, serviceId: 's1', serviceName: 'web', slot: 1, nodeId: 'n1', desiredState: 'RUNNING', status: { state: 'RUNNING' } } as unknown as Task, true);
  });
  after(async () => h?.stop());

  const auditOf = (rpc: string) => h.audit.filter((r) => r.action === rpc);
  const last = (rpc: string): AuditEvent => {
    const l = auditOf(rpc);
    assert.ok(l.length, `no audit record of ${rpc}`);
    return l[l.length - 1];
  };

  it('lets admin and operator create, scale and remove services, and records who did', async () => {
    await call(clients.alice, 'CreateService', { spec: spec('web') });
    let r = last('CreateService');
    assert.deepEqual(r.who, { id: 'alice', role: 'admin', serial: serialOf(b.alice), via: 'tls' });
    assert.equal(r.target.kind, 'service');
    assert.equal(r.target.name, 'web');
    assert.ok(r.target.id && h.cache.services.has(r.target.id), 'the service id');
    assert.deepEqual(r.result, { ok: true });
    assert.equal(r.detail?.image, 'registry.local/web:1');
    assert.ok(Math.abs(r.time - Date.now()) < 10_000);

    await call(clients.olga, 'ScaleService', { service: 'web', replicas: 3 });
    r = last('ScaleService');
    assert.equal(r.who.id, 'olga');
    assert.equal(r.who.role, 'operator');
    assert.equal(r.detail?.replicas, '3');
    await call(clients.olga, 'CreateService', { spec: spec('api') });
    await call(clients.olga, 'RemoveService', { service: 'api' });
    assert.equal(last('RemoveService').target.name, 'api');
    assert.equal(last('RemoveService').who.id, 'olga');
  });

  it('records a failed change with its code and message', async () => {
    await refused(call(clients.alice, 'CreateService', { spec: spec('web') }), grpc.status.ALREADY_EXISTS);
    const r = last('CreateService');
    assert.equal(r.who.id, 'alice');
    assert.equal(r.result.ok, false);
    assert.ok(!r.result.ok && r.result.code === 'ALREADY_EXISTS' && /already/.test(r.result.message));
  });

  it('lets a viewer read but not create, scale, exec or touch nodes, naming the role and the RPC', async () => {
    const { services } = await call<{ services: { service: Service }[] }>(clients.victor, 'ListServices', {});
    assert.ok(services.some((s) => s.service.spec?.name === 'web'));
    await call(clients.victor, 'GetTask', { task: 't1' });
    await refused(call(clients.victor, 'CreateService', { spec: spec('evil') }), grpc.status.PERMISSION_DENIED, /role viewer \("victor"\) may not call CreateService/);
    await refused(call(clients.victor, 'ScaleService', { service: 'web', replicas: 0 }), grpc.status.PERMISSION_DENIED, /viewer.*ScaleService/);
    await refused(call(clients.victor, 'StartExec', { task: 't1', args: ['cat', '/etc/shadow'] }), grpc.status.PERMISSION_DENIED, /viewer.*StartExec/);
    await refused(call(clients.victor, 'GetJoinTokens', {}), grpc.status.PERMISSION_DENIED, /viewer.*GetJoinTokens/);
    await refused(call(clients.victor, 'UpdateNode', { node: 'n1', spec: { availability: 'DRAIN' } }), grpc.status.PERMISSION_DENIED);
    assert.ok(![...h.cache.services.values()].some((s) => s.spec?.name === 'evil'), 'nothing created');
    assert.equal(h.cache.services.get([...h.cache.services.values()].find((s) => s.spec?.name === 'web')!.id)!.spec!.replicas, 3, 'not scaled');
    // Refusals are audited too: the exec attempt names the viewer and the command.
    const r = last('StartExec');
    assert.equal(r.who.id, 'victor');
    assert.ok(!r.result.ok && r.result.code === 'PERMISSION_DENIED');
    assert.equal(r.detail?.args, 'cat /etc/shadow');
  });

  it('lets an operator exec (recorded with the task and the command) but not touch nodes, tokens or users', async () => {
    const res = await call<{ task: Task }>(clients.olga, 'StartExec', { task: 't1', args: ['sh', '-c', 'id'], tty: true });
    assert.equal(res.task.nodeId, 'n1');
    const r = last('StartExec');
    assert.deepEqual({ who: r.who.id, result: r.result, target: r.target }, { who: 'olga', result: { ok: true }, target: { kind: 'task', id: 't1', name: 'web.1' } });
    assert.equal(r.detail?.args, 'sh -c id');
    assert.equal(r.detail?.tty, 'true');
    for (const [rpc, req] of [
      ['UpdateNode', { node: 'n1', spec: { availability: 'DRAIN' } }],
      ['RemoveNode', { node: 'n1', force: true }],
      ['GetJoinTokens', {}],
      ['RotateJoinToken', { worker: true }],
      ['CreateUser', { name: 'mallory', role: 'admin', csr: 'x' }],
      ['ListUsers', {}],
      ['RemoveUser', { name: 'alice' }],
    ] as const)
      await refused(call(clients.olga, rpc, req), grpc.status.PERMISSION_DENIED, new RegExp(`role operator \\("olga"\\) may not call ${rpc} \\(allowed: admin\\)`));
    assert.equal(h.cache.nodes.get('n1')?.spec?.availability ?? 'ACTIVE', 'ACTIVE');
  });

  it('refuses node certificates: a worker and a manager that does not forward', async () => {
    await refused(call(clients.w1, 'ListServices', {}), grpc.status.PERMISSION_DENIED, /role worker \("w1"\) may not call ListServices: nodes call the Dispatcher/);
    await refused(call(clients.w1, 'CreateService', { spec: spec('from-worker') }), grpc.status.PERMISSION_DENIED);
    await refused(call(clients.m2, 'GetClusterInfo', {}), grpc.status.PERMISSION_DENIED, /role manager/);
    const r = last('CreateService');
    assert.equal(r.who.id, 'w1');
    assert.equal(r.who.role, 'worker');
  });

  it('honours forwarded identities from managers only: a worker or a user forging one is refused', async () => {
    const asAdmin = forwardedMetadata({ id: 'alice', role: 'admin', cluster: 'c1' });
    const forgedByViewer = h.client(b.victor, { metadata: asAdmin });
    await refused(call(forgedByViewer, 'CreateService', { spec: spec('forged') }), grpc.status.PERMISSION_DENIED, /viewer "victor" may not forward calls/);
    // Even on a read the viewer could make: the forgery itself is refused.
    await refused(call(forgedByViewer, 'ListServices', {}), grpc.status.PERMISSION_DENIED, /may not forward/);
    const forgedByWorker = h.client(b.w1, { metadata: asAdmin });
    await refused(call(forgedByWorker, 'GetJoinTokens', {}), grpc.status.PERMISSION_DENIED, /worker "w1" may not forward/);
    const forgedByOperator = h.client(b.olga, { metadata: asAdmin });
    await refused(call(forgedByOperator, 'RemoveNode', { node: 'n1', force: true }), grpc.status.PERMISSION_DENIED, /operator "olga" may not forward/);
    assert.ok(h.cache.nodes.has('n1'));
    assert.ok(![...h.cache.services.values()].some((s) => s.spec?.name === 'forged'));
    const r = last('CreateService');
    assert.equal(r.who.id, 'victor', 'the record names the real caller, not the claimed one');

    // A manager forwarding for a user: the user's rights, the record naming both.
    const fwdAdmin = h.client(b.m2, { metadata: asAdmin });
    await call(fwdAdmin, 'CreateService', { spec: spec('forwarded') });
    const ok = last('CreateService');
    assert.deepEqual(ok.who, { id: 'alice', role: 'admin', via: 'forwarded', forwardedBy: 'm2' });
    const fwdViewer = h.client(b.m2, { metadata: forwardedMetadata({ id: 'victor', role: 'viewer', cluster: 'c1' }) });
    await refused(call(fwdViewer, 'CreateService', { spec: spec('forwarded-viewer') }), grpc.status.PERMISSION_DENIED, /role viewer \("victor"\)/);
    // A manager cannot forward a node identity, nor garbage.
    await refused(call(h.client(b.m2, { metadata: { [FORWARDED_FOR]: JSON.stringify({ id: 'w1', role: 'worker' }) } }), 'ListServices', {}), grpc.status.PERMISSION_DENIED, /not a user identity/);
    await refused(call(h.client(b.m2, { metadata: { [FORWARDED_FOR]: '{nope' } }), 'ListServices', {}), grpc.status.PERMISSION_DENIED, /not a user identity/);
  });

  it('refuses at the TLS layer a client with no certificate or one from another CA', async () => {
    const other = await (await createTestCa('c1')).bundle({ id: 'alice', role: 'admin' });
    await refused(call(h.client(undefined), 'ListServices', {}), grpc.status.UNAVAILABLE);
    await refused(call(h.client(other), 'ListServices', {}), grpc.status.UNAVAILABLE);
  });

  it('writes every record as a JSON line of a 0600 audit log, and as an event of type audit', () => {
    const st = fs.statSync(h.auditFile);
    assert.equal(st.mode & 0o777, 0o600);
    const lines = fs.readFileSync(h.auditFile, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as AuditEvent);
    assert.deepEqual(lines, h.audit);
    assert.ok(lines.every((l) => l.type === 'audit' && l.source === 'manager/m1' && typeof l.who.id === 'string' && l.target.kind));
    assert.deepEqual(
      h.events.filter((e) => e.type === 'audit'),
      h.audit,
    );
    // Reads that were allowed leave no record; no record carries a request body.
    assert.ok(!h.audit.some((r) => r.action === 'ListServices' && r.result.ok));
    assert.ok(!fs.readFileSync(h.auditFile, 'utf8').includes('BEGIN'), 'no certificate or CSR in the log');
  });
});

describe('authorize wrapper (fake calls)', () => {
  const service = {
    Get: { path: '/t/Get', requestStream: false, responseStream: false, originalName: 'Get' },
    Put: { path: '/t/Put', requestStream: false, responseStream: false, originalName: 'Put' },
    Watch: { path: '/t/Watch', requestStream: false, responseStream: true, originalName: 'Watch' },
    New: { path: '/t/New', requestStream: false, responseStream: false, originalName: 'New' },
  } as unknown as grpc.ServiceDefinition;
  const rules: Record<string, { access: 'read' | 'operate' | 'admin'; audit: boolean; kind: 'service' }> = {
    Get: { access: 'read', audit: false, kind: 'service' },
    Put: { access: 'operate', audit: true, kind: 'service' },
    Watch: { access: 'read', audit: false, kind: 'service' },
  };
  const records: AuditEvent[] = [];
  const ran: string[] = [];
  const seen: unknown[] = [];
  const handlers = {
    Get: (c: object, cb: (e: null, r: object) => void) => {
      ran.push('Get');
      seen.push(callerOf(c));
      cb(null, {});
    },
    Put: (_c: object, cb: (e: null, r: object) => void) => {
      ran.push('Put');
      cb(null, { service: { id: 's1', spec: { name: 'web' } } });
    },
    Watch: () => void ran.push('Watch'),
    New: (_c: object, cb: (e: null, r: object) => void) => {
      ran.push('New');
      cb(null, {});
    },
  };
  const h = authorize(service, handlers, { audit: { record: (r) => void records.push(r) }, source: 'manager/m1', rule: (r) => rules[r] }) as unknown as Record<string, (c: object, cb?: (e: grpc.ServiceError | null, r?: unknown) => void) => void>;
  const fakeCall = (extra: object = {}) => ({ request: { service: 'web' }, metadata: new grpc.Metadata(), getAuthContext: () => ({}), ...extra });
  const unary = (m: string, c: object) => new Promise<grpc.ServiceError | null>((resolve) => h[m](c, (e) => resolve(e)));

  beforeEach(() => {
    records.length = 0;
    ran.length = 0;
    seen.length = 0;
  });

  it('answers UNAUTHENTICATED to a call with no identity, without running the handler', async () => {
    const e = await unary('Put', fakeCall());
    assert.equal(e?.code, grpc.status.UNAUTHENTICATED);
    assert.deepEqual(ran, []);
    assert.equal(records.length, 1);
    assert.ok(!records[0].result.ok && records[0].result.code === 'UNAUTHENTICATED');
  });

  it('gives calls of the unix-socket server LOCAL_ROOT (admin), and says so in the record', async () => {
    assert.equal(await unary('Get', fakeCall({ [LOCAL_SOCKET]: true })), null);
    assert.deepEqual(seen, [{ identity: LOCAL_ROOT, via: 'unix-socket' }]);
    assert.equal(await unary('Put', fakeCall({ [LOCAL_SOCKET]: true })), null);
    assert.deepEqual(records[0].who, { id: 'local-root', role: 'admin', via: 'unix-socket' });
    assert.deepEqual(records[0].target, { kind: 'service', id: 's1', name: 'web' });
  });

  it('does not let a unix-socket call forward for someone else', async () => {
    const md = new grpc.Metadata();
    md.set(FORWARDED_FOR, JSON.stringify({ id: 'bob', role: 'viewer' }));
    const e = await unary('Get', fakeCall({ [LOCAL_SOCKET]: true, metadata: md }));
    assert.equal(e?.code, grpc.status.PERMISSION_DENIED);
  });

  it('refuses an RPC with no rule to everyone, admin included', async () => {
    const e = await unary('New', fakeCall({ [LOCAL_SOCKET]: true }));
    assert.equal(e?.code, grpc.status.PERMISSION_DENIED);
    assert.match(e?.details ?? '', /New is not in the role table/);
    assert.deepEqual(ran, []);
  });

  it('uses the plaintext fallback identity only for calls with no certificate, ignoring forwarded claims', async () => {
    const anon = authorize(service, handlers, { audit: { record: (r) => void records.push(r) }, source: 'm', rule: (r) => rules[r], anonymous: { id: 'anonymous', role: 'admin', cluster: '' } }) as unknown as typeof h;
    const md = new grpc.Metadata();
    md.set(FORWARDED_FOR, JSON.stringify({ id: 'bob', role: 'viewer' }));
    const e = await new Promise<grpc.ServiceError | null>((resolve) => anon.Get(fakeCall({ metadata: md }), (x) => resolve(x)));
    assert.equal(e, null);
    assert.deepEqual(seen, [{ identity: { id: 'anonymous', role: 'admin', cluster: '' }, via: 'plaintext' }]);
  });

  it('refuses a stream with an error event before its handler runs', () => {
    const errors: unknown[] = [];
    h.Watch({ ...fakeCall(), emit: (_ev: string, e: unknown) => void errors.push(e) } as object);
    assert.equal((errors[0] as grpc.ServiceError).code, grpc.status.UNAUTHENTICATED);
    assert.deepEqual(ran, []);
    h.Watch({ ...fakeCall({ [LOCAL_SOCKET]: true }), emit: () => undefined } as object);
    assert.deepEqual(ran, ['Watch']);
  });
});
