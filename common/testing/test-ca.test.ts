import { strict as assert } from 'node:assert';
import * as crypto from 'node:crypto';
import * as tls from 'node:tls';
import { identityFromCert } from '../identity';
import { createTestCa } from './test-ca';

describe('test CA', () => {
  it('issues certificates that name a Convoy identity and that TLS verifies both ways', async () => {
    const ca = await createTestCa('c1');
    const server = await ca.bundle({ id: 'm1', role: 'manager', ips: ['127.0.0.1'] });
    const client = await ca.bundle({ id: 'alice', role: 'operator' });
    assert.deepEqual({ ...identityFromCert(client.cert), serial: undefined, notAfter: undefined }, { id: 'alice', role: 'operator', cluster: 'c1', serial: undefined, notAfter: undefined });
    assert.ok(new crypto.X509Certificate(client.cert).verify(new crypto.X509Certificate(ca.caPem).publicKey));
    const srv = tls.createServer({ ...server, requestCert: true, rejectUnauthorized: true }, (s) => {
      s.end(identityFromCert((s as tls.TLSSocket).getPeerX509Certificate()!)!.id);
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const port = (srv.address() as { port: number }).port;
    try {
      const got = await new Promise<string>((resolve, reject) => {
        const s = tls.connect({ host: '127.0.0.1', port, ...client }, () => undefined);
        let out = '';
        s.on('data', (d) => (out += d)).on('end', () => resolve(out)).on('error', reject);
      });
      assert.equal(got, 'alice');
      const other = await (await createTestCa('c2')).bundle({ id: 'mallory', role: 'admin' });
      await assert.rejects(
        new Promise((resolve, reject) => {
          const s = tls.connect({ host: '127.0.0.1', port, ca: server.ca, cert: other.cert, key: other.key }, () => s.on('data', resolve));
          s.on('error', reject).on('close', () => reject(new Error('closed')));
        }),
      );
    } finally {
      srv.close();
    }
  });
});
