// /metrics: plaintext where told, or mutual TLS admitting reader roles only.
import { strict as assert } from 'node:assert';
import * as https from 'node:https';
import { Registry, Counter } from 'prom-client';
import { serveMetrics } from './metrics';
import { createTestCa } from './testing/test-ca';
import type { TlsBundle } from './identity';

function get(addr: string, o: https.RequestOptions): Promise<string> {
  return new Promise((resolve) => {
    const req = https.get(`https://${addr}/metrics`, { ...o, timeout: 5_000 }, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve(`${res.statusCode} ${body.split('\n')[0]}`));
    });
    req.on('error', (e) => resolve(`error ${e.message}`));
  });
}

describe('metrics endpoint', () => {
  const registry = new Registry();
  new Counter({ name: 'convoy_test_total', help: 'test', registers: [registry] }).inc();

  it('refuses an address with no host (it would mean every address)', async () => {
    await assert.rejects(serveMetrics(registry, ':0'), /name the address to listen on/);
  });

  it('plaintext on the address given', async () => {
    const s = await serveMetrics(registry, '127.0.0.1:0');
    try {
      assert.match(s.addr, /^127\.0\.0\.1:\d+$/);
      assert.match(await (await fetch(`http://${s.addr}/metrics`)).text(), /convoy_test_total 1/);
    } finally {
      await s.close();
    }
  });

  it('with mutual TLS: no certificate, another CA or a worker is refused; a viewer or a manager reads', async () => {
    const ca = await createTestCa('c1');
    const server = await ca.bundle({ id: 'n1', role: 'worker', ips: ['127.0.0.1'] });
    const s = await serveMetrics(registry, '127.0.0.1:0', undefined, { tls: server });
    const as = (b: TlsBundle) => get(s.addr, { ca: server.ca, cert: b.cert, key: b.key });
    try {
      assert.match(await get(s.addr, { ca: server.ca }), /^error/, 'no client certificate');
      const other = await (await createTestCa('c1')).bundle({ id: 'prom', role: 'viewer' });
      assert.match(await as(other), /^error/, 'another CA');
      assert.match(await as(await ca.bundle({ id: 'n2', role: 'worker' })), /^403 forbidden: role worker/);
      assert.match(await as(await ca.bundle({ id: 'prom', role: 'viewer' })), /^200 # HELP/);
      assert.match(await as(await ca.bundle({ id: 'm1', role: 'manager' })), /^200 # HELP/);
      const plain = await fetch(`http://${s.addr}/metrics`).then((r) => `${r.status}`, (e: Error) => `error ${e.message}`);
      assert.match(plain, /^error/, 'plaintext to the TLS port');
    } finally {
      await s.close();
    }
  });
});
