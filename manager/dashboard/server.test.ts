// The dashboard's HTTPS handlers over real mutual TLS (test CA) in front of
// the authorized Control API on a MemoryStore: identities and roles as gRPC
// has them (a viewer sees no actions and is refused, audited), the CSRF
// rules on actions, the bounds of every input, and the live stream pushing
// a change.
import { strict as assert } from 'node:assert';
import * as https from 'node:https';
import { eventually } from '../../common/eventually';
import type { TlsBundle } from '../../common/identity';
import { createTestCa, type TestCa } from '../../common/testing/test-ca';
import { grpcPackages, type Node, type Service, type ServiceSpec } from '../../proto/mod';
import { startSecureControl, type SecureControl } from '../auth/testing/secure-control';
import { node as nodeFixture } from '../orchestrator/testing/fixtures';
import { CSRF_HEADER, MAX_BODY_BYTES, startDashboard, type DashboardServer } from './server';

export interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  json: Record<string, unknown>;
}

/** One HTTPS request presenting `bundle` (none: no client certificate). */
export function request(addr: string, bundle: TlsBundle | undefined, ca: string, path: string, o: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<Answer> {
  const [host, port] = [addr.slice(0, addr.lastIndexOf(':')), Number(addr.slice(addr.lastIndexOf(':') + 1))];
  return new Promise((resolve, reject) => {
    const req = https.request({ host, port, path, method: o.method ?? 'GET', headers: o.headers, ca, cert: bundle?.cert, key: bundle?.key, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => {
        let json: Record<string, unknown> = {};
        try {
          json = JSON.parse(body) as Record<string, unknown>;
        } catch {
          /* not JSON */
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body, json });
      });
    });
    req.on('error', reject);
    req.end(o.body);
  });
}

export const post = (body: unknown, extra: Record<string, string> = {}) => ({ method: 'POST', headers: { 'content-type': 'application/json', [CSRF_HEADER]: '1', ...extra }, body: JSON.stringify(body) });

const spec = (name: string): Partial<ServiceSpec> => ({ name, replicas: 1, container: { image: 'registry.local/web:1' } as ServiceSpec['container'] });

describe('dashboard HTTPS handlers', function () {
  this.timeout(30_000);
  let ca: TestCa;
  let h: SecureControl;
  let dash: DashboardServer;
  const b: Record<string, TlsBundle> = {};
  const logCalls: { tasks: string[]; tail: number }[] = [];
  const get = (who: string | undefined, path: string) => request(dash.addr, who ? b[who] : undefined, b.alice.ca, path);
  const send = (who: string, path: string, o: { method?: string; headers?: Record<string, string>; body?: string }) => request(dash.addr, b[who], b.alice.ca, path, o);
  const replicas = async () => Number((await h.store.list<Service>("services")).items.find((s) => s.spec?.name === 'web')?.spec?.replicas);

  before(async () => {
    ca = await createTestCa('c1');
    const server = await ca.bundle({ id: 'm1', role: 'manager', ips: ['127.0.0.1'], dns: ['localhost', 'convoy-manager'] });
    for (const [name, role] of [['alice', 'admin'], ['olga', 'operator'], ['victor', 'viewer'], ['w1', 'worker']] as const) b[name] = await ca.bundle({ id: name, role });
    b.stranger = await ca.bundle({ id: 'eve', role: 'admin', cluster: 'other' });
    h = await startSecureControl({ server });
    await h.store.put('nodes', { ...nodeFixture('n1'), meta: null }, true);
    const c = h.client(b.alice);
    await new Promise((resolve, reject) => c.createService({ spec: spec('web') } as never, c.md, (e, r) => (e ? reject(e) : resolve(r))));
    dash = await startDashboard({
      listen: '127.0.0.1:0',
      bundle: server,
      service: grpcPackages().control.convoy.Control.service,
      handlers: h.handlers,
      onChange: (fn) => h.cache.onChange(() => fn()),
      cluster: () => 'c1',
      isRevoked: (w) => w.id === 'revoked-user',
      logs: async (tasks, tail) => {
        logCalls.push({ tasks: tasks.map((t) => t.id), tail });
        return { lines: tasks.map((t, i) => ({ taskId: t.id, time: i, stream: 'stdout', line: `hello from ${t.id}` })), unanswered: [] };
      },
    });
  });
  after(async () => {
    await dash?.close();
    await h?.stop();
  });

  it('refuses a client without a certificate at the handshake, and one of another cluster with 401', async () => {
    await assert.rejects(get(undefined, '/api/session'));
    const r = await get('stranger', '/api/session');
    assert.equal(r.status, 401);
    assert.match(String(r.json.error), /another cluster/);
  });

  it('serves the page with a CSP that allows nothing inline or foreign', async () => {
    const r = await get('victor', '/');
    assert.equal(r.status, 200);
    assert.match(r.body, /<script src="\/app.js"/);
    assert.match(String(r.headers['content-security-policy']), /default-src 'none'; script-src 'self'/);
    assert.equal(r.headers['x-frame-options'], 'DENY');
    assert.equal((await get('victor', '/app.js')).status, 200);
    assert.equal((await get('victor', '/../../etc/passwd')).status, 404);
  });

  it('tells each role which actions it may take, by the Control API role table', async () => {
    assert.deepEqual((await get('victor', '/api/session')).json, { id: 'victor', role: 'viewer', may: { scale: false, rollback: false, forceUpdate: false, nodeAvailability: false } });
    assert.deepEqual((await get('olga', '/api/session')).json.may, { scale: true, rollback: true, forceUpdate: true, nodeAvailability: false });
    assert.deepEqual((await get('alice', '/api/session')).json.may, { scale: true, rollback: true, forceUpdate: true, nodeAvailability: true });
  });

  it('shows the state to every user role, and refuses a node certificate as gRPC does', async () => {
    const r = await get('victor', '/api/state');
    assert.equal(r.status, 200);
    const v = r.json as { nodes: { hostname: string; cpu: { total: number } }[]; services: { name: string; desired: number; image: string }[] };
    assert.deepEqual(v.nodes.map((n) => [n.hostname, n.cpu.total]), [['host-n1', 4]]);
    assert.deepEqual(v.services.map((s) => [s.name, s.desired, s.image]), [['web', 1, 'registry.local/web:1']]);
    const w = await get('w1', '/api/state');
    assert.equal(w.status, 403);
    assert.match(String(w.json.error), /role worker/);
  });

  it('refuses a viewer\'s scale with 403, changes nothing and audits the refusal', async () => {
    const r = await send('victor', '/api/services/web/scale', post({ replicas: 4 }));
    assert.equal(r.status, 403);
    assert.match(String(r.json.error), /role viewer \("victor"\) may not call ScaleService/);
    assert.equal(await replicas(), 1);
    const rec = h.audit.filter((a) => a.action === 'ScaleService').pop();
    assert.equal(rec?.who.id, 'victor');
    assert.equal(rec?.result.ok, false);
    for (const path of ['/api/services/web/rollback', '/api/services/web/force-update']) assert.equal((await send('victor', path, post({}))).status, 403, path);
    assert.equal((await send('victor', '/api/nodes/n1/availability', post({ availability: 'DRAIN' }))).status, 403);
  });

  it('refuses actions without the dashboard header, with another content type or from a foreign origin', async () => {
    const noHeader = await send('olga', '/api/services/web/scale', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"replicas":3}' });
    assert.equal(noHeader.status, 403);
    assert.match(String(noHeader.json.error), /x-convoy-dashboard/);
    const form = await send('olga', '/api/services/web/scale', { method: 'POST', headers: { 'content-type': 'text/plain', [CSRF_HEADER]: '1' }, body: '{"replicas":3}' });
    assert.equal(form.status, 415);
    const foreign = await send('olga', '/api/services/web/scale', post({ replicas: 3 }, { origin: 'https://evil.example' }));
    assert.equal(foreign.status, 403);
    assert.match(String(foreign.json.error), /origin/);
    assert.equal((await send('olga', '/api/services/web/scale', { method: 'PUT', headers: {}, body: '' })).status, 405);
    assert.equal(await replicas(), 1);
  });

  it('bounds every input: replicas, references, bodies, URLs', async () => {
    const cases: [string, unknown, number, RegExp][] = [
      ['/api/services/web/scale', { replicas: 'x' }, 400, /replicas/],
      ['/api/services/web/scale', { replicas: -1 }, 400, /replicas/],
      ['/api/services/web/scale', { replicas: 1.5 }, 400, /replicas/],
      ['/api/services/web/scale', { replicas: 10_001 }, 400, /replicas/],
      [`/api/services/${'a'.repeat(200)}/scale`, { replicas: 1 }, 400, /service/],
      ['/api/services/%2e%2e/scale', { replicas: 1 }, 400, /service/],
      ['/api/services/nope/scale', { replicas: 1 }, 404, /nope/],
      ['/api/services/web/explode', {}, 404, /explode/],
      ['/api/nodes/n1/availability', { availability: 'GONE' }, 400, /availability/],
    ];
    for (const [path, body, status, re] of cases) {
      const r = await send('alice', path, post(body));
      assert.equal(r.status, status, `${path} ${JSON.stringify(body)}: ${r.body}`);
      assert.match(String(r.json.error), re);
    }
    assert.equal((await send('alice', '/api/services/web/scale', { ...post({}), body: '[1]' })).status, 400);
    assert.equal((await send('alice', '/api/services/web/scale', { ...post({}), body: 'not json' })).status, 400);
    assert.equal((await send('alice', '/api/services/web/scale', { ...post({}), body: JSON.stringify({ replicas: 1, pad: 'x'.repeat(MAX_BODY_BYTES) }) })).status, 413);
    assert.equal((await get('alice', `/api/state?${'x'.repeat(3000)}`)).status, 414);
    assert.equal(await replicas(), 1);
  });

  it('scales for an operator, through the Control API (audited as the operator over TLS)', async () => {
    const r = await send('olga', '/api/services/web/scale', post({ replicas: 3 }));
    assert.equal(r.status, 200, r.body);
    assert.equal(await replicas(), 3);
    const rec = h.audit.filter((a) => a.action === 'ScaleService').pop();
    assert.deepEqual([rec?.who.id, rec?.who.role, rec?.who.via, rec?.result.ok, rec?.detail?.replicas], ['olga', 'operator', 'tls', true, '3']);
  });

  it('forces an update for an operator; drains and activates a node for an admin only', async () => {
    const before = (await h.store.list<Service>("services")).items.find((s) => s.spec?.name === 'web')!;
    assert.equal((await send('olga', '/api/services/web/force-update', post({}))).status, 200);
    const rec = h.audit.filter((a) => a.action === 'UpdateService').pop();
    assert.deepEqual([rec?.who.id, rec?.result.ok, rec?.detail?.force], ['olga', true, 'true']);
    const after = (await h.store.list<Service>("services")).items.find((s) => s.spec?.name === 'web')!;
    assert.ok(Number(after.meta?.version) > Number(before.meta?.version));
    assert.equal((await send('olga', '/api/nodes/host-n1/availability', post({ availability: 'DRAIN' }))).status, 403);
    assert.equal((await send('alice', '/api/nodes/host-n1/availability', post({ availability: 'DRAIN' }))).status, 200);
    assert.equal((await h.store.get<Node>('nodes', 'n1'))?.spec?.availability, 'DRAIN');
    assert.equal((await send('alice', '/api/nodes/n1/availability', post({ availability: 'ACTIVE' }))).status, 200);
    assert.equal((await h.store.get<Node>('nodes', 'n1'))?.spec?.availability, 'ACTIVE');
  });

  it('serves a service\'s merged logs to a viewer, with its tail bounded, and not to a node', async () => {
    const web = (await h.store.list<Service>('services')).items.find((x) => x.spec?.name === 'web')!;
    await h.store.put('tasks', { id: 't1', meta: null, serviceId: web.id, serviceName: 'web', slot: 1, nodeId: 'n1', desiredState: 'RUNNING', status: { state: 'RUNNING' } } as never, true);
    await eventually(async () => h.cache.tasks.has('t1'), 'the task in the cache');
    const r = await get('victor', '/api/services/web/logs?tail=20');
    assert.equal(r.status, 200, r.body);
    assert.deepEqual(r.json.lines, [{ taskId: 't1', time: 0, stream: 'stdout', line: 'hello from t1' }]);
    assert.deepEqual(r.json.tasks, { t1: 'web.1.t1' });
    assert.deepEqual(logCalls.pop(), { tasks: ['t1'], tail: 20 });
    for (const bad of ['?tail=1001', '?tail=-1', '?tail=x']) assert.equal((await get('victor', `/api/services/web/logs${bad}`)).status, 400, bad);
    assert.equal((await get('victor', '/api/services/nope/logs')).status, 404);
    assert.equal((await get('w1', '/api/services/web/logs')).status, 403);
    assert.equal(logCalls.length, 0);
  });

  it('streams the view and pushes a change to a viewer\'s live page', async () => {
    const [host, port] = [dash.addr.split(':')[0], Number(dash.addr.split(':')[1])];
    let text = '';
    const req = https.get({ host, port, path: '/api/watch', ca: b.alice.ca, cert: b.victor.cert, key: b.victor.key, agent: false });
    try {
      const res = await new Promise<import('node:http').IncomingMessage>((resolve, reject) => req.on('response', resolve).on('error', reject));
      assert.equal(res.statusCode, 200);
      assert.match(String(res.headers['content-type']), /text\/event-stream/);
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      const desired = () =>
        text
          .split('\n\n')
          .filter((m) => m.startsWith('event: state'))
          .map((m) => (JSON.parse(m.slice(m.indexOf('data: ') + 6)) as { services: { desired: number }[] }).services[0]?.desired);
      await eventually(async () => desired().length >= 1, 'the first state');
      assert.equal((await send('olga', '/api/services/web/scale', post({ replicas: 5 }))).status, 200);
      await eventually(async () => desired().includes(5), 'the scaled state pushed');
      assert.equal(dash.handler.watchers, 1);
    } finally {
      req.destroy();
    }
    await eventually(async () => dash.handler.watchers === 0, 'the stream closed');
  });
});
