// `convoy dashboard`'s local proxy in front of a real dashboard listener
// (mutual TLS, the authorized Control API on a MemoryStore): the token is
// traded for an HttpOnly SameSite=Strict cookie; nothing passes without it;
// a foreign Host (DNS rebinding) and cross-site actions are refused; what
// passes is done as the bundle's identity.
import { strict as assert } from 'node:assert';
import * as http from 'node:http';
import type { TlsBundle } from '../../common/identity';
import { createTestCa } from '../../common/testing/test-ca';
import { grpcPackages, type Service, type ServiceSpec } from '../../proto/mod';
import { startSecureControl, type SecureControl } from '../../manager/auth/testing/secure-control';
import { startDashboard, type DashboardServer } from '../../manager/dashboard/mod';
import { startDashboardProxy, type DashboardProxy } from './proxy';
import { parsePort, upstreamOf } from './mod';

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

function req(port: number, path: string, o: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const r = http.request({ host: '127.0.0.1', port, path, method: o.method ?? 'GET', headers: { host: `127.0.0.1:${port}`, ...o.headers }, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    r.on('error', reject);
    r.end(o.body);
  });
}

describe('convoy dashboard proxy', function () {
  this.timeout(30_000);
  let h: SecureControl;
  let dash: DashboardServer;
  const proxies: DashboardProxy[] = [];
  const b: Record<string, TlsBundle> = {};
  let cookie = '';

  const proxyAs = async (who: string) => {
    const p = await startDashboardProxy({ upstream: dash.addr, ...b[who] });
    proxies.push(p);
    return p;
  };
  const signIn = async (p: DashboardProxy) => {
    const r = await req(p.port, `/?token=${p.token}`);
    assert.equal(r.status, 302);
    return String(r.headers['set-cookie']).split(';')[0];
  };
  const replicas = async () => Number((await h.store.list<Service>('services')).items.find((s) => s.spec?.name === 'web')?.spec?.replicas);

  before(async () => {
    const ca = await createTestCa('c1');
    const server = await ca.bundle({ id: 'm1', role: 'manager', ips: ['127.0.0.1'], dns: ['localhost', 'convoy-manager'] });
    b.olga = await ca.bundle({ id: 'olga', role: 'operator' });
    b.victor = await ca.bundle({ id: 'victor', role: 'viewer' });
    h = await startSecureControl({ server });
    const c = h.client(await ca.bundle({ id: 'alice', role: 'admin' }));
    const spec: Partial<ServiceSpec> = { name: 'web', replicas: 1, container: { image: 'registry.local/web:1' } as ServiceSpec['container'] };
    await new Promise((resolve, reject) => c.createService({ spec } as never, c.md, (e, r) => (e ? reject(e) : resolve(r))));
    dash = await startDashboard({ listen: '127.0.0.1:0', bundle: server, service: grpcPackages().control.convoy.Control.service, handlers: h.handlers, onChange: () => undefined, cluster: () => 'c1', isRevoked: () => false });
  });
  after(async () => {
    for (const p of proxies) await p.close();
    await dash?.close();
    await h?.stop();
  });

  it('trades the printed token for an HttpOnly SameSite=Strict cookie, and refuses everything without it', async () => {
    const p = await proxyAs('olga');
    assert.match(p.url, new RegExp(`^http://127\\.0\\.0\\.1:${p.port}/\\?token=[A-Za-z0-9_-]{40,}$`));
    assert.equal((await req(p.port, '/?token=wrong')).status, 401);
    assert.equal((await req(p.port, '/api/session')).status, 401);
    assert.equal((await req(p.port, '/api/session', { headers: { cookie: `convoy_dashboard_${p.port}=nope` } })).status, 401);
    const r = await req(p.port, `/?token=${p.token}`);
    assert.equal(r.headers.location, '/');
    assert.match(String(r.headers['set-cookie']), new RegExp(`^convoy_dashboard_${p.port}=${p.token}; HttpOnly; SameSite=Strict; Path=/$`));
    cookie = await signIn(p);
    const s = await req(p.port, '/api/session', { headers: { cookie } });
    assert.equal(s.status, 200);
    assert.deepEqual(JSON.parse(s.body).may.scale, true);
    const page = await req(p.port, '/', { headers: { cookie } });
    assert.equal(page.status, 200);
    assert.match(page.body, /Convoy/);
  });

  it('refuses a foreign Host header (DNS rebinding) and paths that are not the dashboard\'s', async () => {
    const p = proxies[0];
    const r = await req(p.port, '/api/session', { headers: { cookie, host: `evil.example:${p.port}` } });
    assert.equal(r.status, 403);
    assert.match(r.body, /host/);
    assert.equal((await req(p.port, '/api/session', { headers: { cookie, host: 'localhost:1' } })).status, 403);
    assert.equal((await req(p.port, '/api/session', { headers: { cookie, host: `localhost:${p.port}` } })).status, 200);
    assert.equal((await req(p.port, '/metrics', { headers: { cookie } })).status, 404);
  });

  it('refuses cross-site actions, and forwards the page\'s own as the bundle\'s identity', async () => {
    const p = proxies[0];
    const body = JSON.stringify({ replicas: 2 });
    const path = '/api/services/web/scale';
    const json = { cookie, 'content-type': 'application/json' };
    assert.equal((await req(p.port, path, { method: 'POST', headers: json, body })).status, 403, 'no dashboard header');
    assert.equal((await req(p.port, path, { method: 'POST', headers: { ...json, 'x-convoy-dashboard': '1', origin: 'http://evil.example' }, body })).status, 403, 'foreign origin');
    assert.equal((await req(p.port, path, { method: 'POST', headers: { ...json, 'x-convoy-dashboard': '1', 'sec-fetch-site': 'cross-site' }, body })).status, 403, 'cross-site fetch');
    assert.equal((await req(p.port, path, { method: 'POST', headers: { ...json, 'x-convoy-dashboard': '1', 'content-length': '100000' }, body: 'x'.repeat(100_000) })).status, 413);
    assert.equal(await replicas(), 1);
    const ok = await req(p.port, path, { method: 'POST', headers: { ...json, 'x-convoy-dashboard': '1', origin: `http://127.0.0.1:${p.port}`, 'sec-fetch-site': 'same-origin' }, body });
    assert.equal(ok.status, 200, ok.body);
    assert.equal(await replicas(), 2);
    assert.equal(h.audit.filter((a) => a.action === 'ScaleService').pop()?.who.id, 'olga');
  });

  it('a viewer\'s proxy passes the manager\'s refusal through: 403', async () => {
    const p = await proxyAs('victor');
    const c = await signIn(p);
    const r = await req(p.port, '/api/services/web/scale', { method: 'POST', headers: { cookie: c, 'content-type': 'application/json', 'x-convoy-dashboard': '1' }, body: '{"replicas":9}' });
    assert.equal(r.status, 403);
    assert.match(r.body, /role viewer/);
    assert.equal(await replicas(), 2);
  });

  it('finds the manager\'s dashboard at its port + 4 unless told, and checks the flags', () => {
    assert.equal(upstreamOf('10.41.0.11:7420', undefined), '10.41.0.11:7424');
    assert.equal(upstreamOf('10.41.0.11:7420', 'm2.example:9000'), 'm2.example:9000');
    assert.throws(() => upstreamOf('10.41.0.11:7420', 'nope'), /--upstream: "nope" is not host:port/);
    assert.throws(() => upstreamOf('unix:///run/convoy.sock', undefined), /unix socket/);
    assert.equal(parsePort('8001'), 8001);
    assert.throws(() => parsePort('70000'), /--port: "70000"/);
  });
});
