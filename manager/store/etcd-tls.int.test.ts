// The embedded etcd admits only the client certificate its own CA signed:
// no certificate, a certificate of another CA (a cluster worker's, say) and
// plaintext are refused; the store, its election worker and the manager
// registration work over TLS; the key material is 0600 on disk.
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as https from 'node:https';
import * as os from 'node:os';
import * as path from 'node:path';
import { createTestCa } from '../../common/testing/test-ca';
import { eventually } from '../../common/eventually';
import { startEtcd, type EmbeddedEtcd } from '../embedded/etcd';
import { EtcdStore } from './etcd-store';
import type { TlsBundle } from '../../common/identity';

/** A short deadline: a refused client must fail, not hang the test for etcd3's retries. */
async function tryGet(endpoint: string, tls: TlsBundle | undefined): Promise<string> {
  const store = EtcdStore.connect([endpoint], undefined, undefined, { tls });
  try {
    await Promise.race([store.client.get('probe').string(), new Promise((_, rej) => setTimeout(() => rej(new Error('no answer in 10 s')), 10_000))]);
    return 'ok';
  } catch (e) {
    return `refused: ${(e as Error).message}`;
  } finally {
    await store.close().catch(() => undefined);
  }
}

/** A bare HTTPS request to /health: the TLS handshake itself, with or without a client certificate. */
function health(url: string, o: https.RequestOptions): Promise<string> {
  return new Promise((resolve) => {
    const req = https.get(`${url}/health`, { ...o, timeout: 5_000 }, (res) => {
      res.resume();
      resolve(`status ${res.statusCode}`);
    });
    req.on('error', (e) => resolve(`error: ${e.message}`));
    req.on('timeout', () => req.destroy(new Error('timeout')));
  });
}

describe('embedded etcd TLS (integration, real etcd)', function () {
  this.timeout(90_000);
  let etcd: EmbeddedEtcd | undefined;
  let dir = '';
  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'convoy-etcd-tls-'));
    etcd = await startEtcd({ dataDir: path.join(dir, 'etcd') });
  });
  after(async () => {
    await etcd?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('serves https on loopback and keeps its keys 0600 in a 0700 directory', () => {
    assert.match(etcd!.endpoint, /^https:\/\/127\.0\.0\.1:\d+$/);
    const tlsDir = path.join(dir, 'etcd', 'tls');
    assert.equal(fs.statSync(tlsDir).mode & 0o777, 0o700);
    for (const f of fs.readdirSync(tlsDir)) assert.equal(fs.statSync(path.join(tlsDir, f)).mode & 0o777, 0o600, f);
    assert.ok(fs.readdirSync(tlsDir).includes('ca-key.pem'));
  });

  it('refuses to listen anywhere but loopback', async () => {
    await assert.rejects(startEtcd({ dataDir: path.join(dir, 'other'), host: '0.0.0.0' }), /embedded etcd: host "0.0.0.0" is not a loopback address/);
  });

  it('the store works over TLS: writes, reads, election on the worker thread, manager registration', async () => {
    const store = EtcdStore.connect([etcd!.endpoint], undefined, undefined, { tls: etcd!.clientTls });
    try {
      await store.client.put('tls-probe').value('v');
      assert.equal(await store.client.get('tls-probe').string(), 'v');
      const reg = await store.registerManager('m-tls', '127.0.0.1:1', 5);
      const c = store.campaign('m-tls', 5);
      let elected = false;
      c.on((e) => (elected = e.type === 'elected' || elected));
      await eventually(() => elected, 'the TLS store wins the election');
      await c.resign();
      await reg.close();
    } finally {
      await store.close();
    }
  });

  it('refuses a client with no certificate, with another CA’s certificate, or in plaintext', async () => {
    const ours = etcd!.clientTls;
    const other = await createTestCa('other');
    // A cluster worker's certificate from another CA, presented with the right CA to verify the server.
    const worker = await other.bundle({ id: 'node-1', role: 'worker' });
    assert.match(await tryGet(etcd!.endpoint, { ca: ours.ca, cert: worker.cert, key: worker.key }), /^refused/);
    // The TLS layer itself: no client certificate, another CA's, versus ours.
    assert.match(await health(etcd!.endpoint, { ca: ours.ca }), /^error/);
    assert.match(await health(etcd!.endpoint, { ca: ours.ca, cert: worker.cert, key: worker.key }), /^error/);
    assert.equal(await health(etcd!.endpoint, { ca: ours.ca, cert: ours.cert, key: ours.key }), 'status 200');
    // Plaintext to the TLS port.
    const plain = await fetch(`${etcd!.endpoint.replace('https:', 'http:')}/health`).then(
      (r) => `status ${r.status}`,
      (e: Error) => `error: ${e.message}`,
    );
    assert.notEqual(plain, 'status 200');
    // And ours works through the same helper.
    assert.equal(await tryGet(etcd!.endpoint, ours), 'ok');
  });

  it('a restart reuses the same CA and certificates', async () => {
    const before = etcd!.clientTls;
    await etcd!.stop();
    etcd = await startEtcd({ dataDir: path.join(dir, 'etcd') });
    assert.deepEqual(etcd.clientTls, before);
    assert.equal(await tryGet(etcd.endpoint, before), 'ok');
  });
});
