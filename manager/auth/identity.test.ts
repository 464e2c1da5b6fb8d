// identityOf: the identity of the verified peer certificate, parsed once per
// certificate; two certificates never share an entry.
import { strict as assert } from 'node:assert';
import * as crypto from 'node:crypto';
import type { AddressInfo } from 'node:net';
import * as tls from 'node:tls';
import { createTestCa } from '../../common/testing/test-ca';
import { createFakeIssuer } from './testing/fake-issuer';
import { cachePeerCertificates, identityCacheSize, identityOf, LOCAL_SOCKET, rememberCallIdentity } from './identity';

const callWith = (pem: string) => {
  const raw = new crypto.X509Certificate(pem).raw;
  return { getAuthContext: () => ({ sslPeerCertificate: { raw: Buffer.from(raw) } }) };
};

describe('identityOf', () => {
  it('names each certificate its own identity, the same on every call, without parsing it again', async () => {
    const ca = await createFakeIssuer('c1');
    const a = await ca.bundle({ id: 'node-a', role: 'worker' });
    const b = await ca.bundle({ id: 'node-b', role: 'manager' });
    const before = identityCacheSize();
    const first = identityOf(callWith(a.cert));
    assert.equal(first?.id, 'node-a');
    assert.equal(first?.role, 'worker');
    assert.equal(first?.cluster, 'c1');
    assert.ok(first?.notAfter && first.notAfter > Date.now(), 'notAfter kept (callers check expiry per call)');
    // A fresh Buffer of the same bytes (as each call's getPeerCertificate gives) hits the one entry.
    assert.equal(identityOf(callWith(a.cert)), first);
    assert.equal(identityCacheSize(), before + 1);
    const other = identityOf(callWith(b.cert));
    assert.equal(other?.id, 'node-b');
    assert.equal(other?.role, 'manager');
    assert.equal(identityOf(callWith(a.cert))?.id, 'node-a');
    assert.equal(identityCacheSize(), before + 2);
    assert.ok(Object.isFrozen(first), 'a shared identity cannot be changed by one caller');
  });

  it('has no identity without a certificate, or for one that names none', () => {
    assert.equal(identityOf({ getAuthContext: () => ({}) }), undefined);
    assert.equal(identityOf({ getAuthContext: () => ({ sslPeerCertificate: { raw: Buffer.from('not a certificate') } }) }), undefined);
    assert.equal(identityOf({ getAuthContext: () => ({ sslPeerCertificate: { raw: Buffer.from('not a certificate') } }) }), undefined);
    assert.equal(identityOf({ [LOCAL_SOCKET]: true })?.id, 'local-root');
  });
});

describe('identityOf after the identity gate', () => {
  it("reads the identity the gate found for the call's own metadata, and only for it", async () => {
    const ca = await createFakeIssuer('c2');
    const a = await ca.bundle({ id: 'node-a', role: 'worker' });
    const gated = identityOf(callWith(a.cert))!;
    const md = {};
    rememberCallIdentity(md, gated);
    // The handler's call: same metadata object, TLS not asked again.
    let asked = 0;
    const handlerCall = { metadata: md, getAuthContext: () => (asked++, {}) };
    assert.equal(identityOf(handlerCall), gated);
    assert.equal(asked, 0);
    // Another call (other metadata) gets nothing from it.
    assert.equal(identityOf({ metadata: {}, getAuthContext: () => ({}) }), undefined);
  });
});

describe('cachePeerCertificates (one peer certificate object per TLS 1.3 connection)', function () {
  this.timeout(20_000);

  /** A mutual-TLS server and one client connection at `version`; resolves to the server's side of it. */
  async function pair(version: 'TLSv1.2' | 'TLSv1.3'): Promise<{ server: tls.TLSSocket; close(): Promise<void> }> {
    const ca = await createTestCa('peer-cache');
    const srv = await ca.bundle({ id: 'm1', role: 'manager', ips: ['127.0.0.1'] });
    const cli = await ca.bundle({ id: 'alice', role: 'admin' });
    let accepted!: (s: tls.TLSSocket) => void;
    const got = new Promise<tls.TLSSocket>((r) => (accepted = r));
    const server = tls.createServer({ ca: srv.ca, cert: srv.cert, key: srv.key, requestCert: true, rejectUnauthorized: true, minVersion: version, maxVersion: version }, (s) => accepted(s));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const client = tls.connect({ host: '127.0.0.1', port: (server.address() as AddressInfo).port, ca: cli.ca, cert: cli.cert, key: cli.key, minVersion: version, maxVersion: version });
    client.on('error', () => undefined);
    const s = await got;
    return {
      server: s,
      close: async () => {
        client.destroy();
        s.destroy();
        await new Promise<void>((r) => server.close(() => r()));
      },
    };
  }

  before(() => cachePeerCertificates());

  it('answers the same certificate object on a TLS 1.3 connection, the peer it names', async () => {
    cachePeerCertificates(); // idempotent
    const p = await pair('TLSv1.3');
    try {
      assert.equal(p.server.getProtocol(), 'TLSv1.3');
      const a = p.server.getPeerCertificate();
      assert.equal(a.subject.CN, 'alice');
      assert.equal(p.server.getPeerCertificate(), a, 'kept for the connection');
      // A detailed query is node's own, every time.
      assert.notEqual(p.server.getPeerCertificate(true), a);
      assert.equal(p.server.getPeerCertificate(true).subject.CN, 'alice');
    } finally {
      await p.close();
    }
  });

  it('asks node every time on a TLS 1.2 connection (it could renegotiate)', async () => {
    const p = await pair('TLSv1.2');
    try {
      assert.equal(p.server.getProtocol(), 'TLSv1.2');
      const a = p.server.getPeerCertificate();
      assert.equal(a.subject.CN, 'alice');
      assert.notEqual(p.server.getPeerCertificate(), a);
    } finally {
      await p.close();
    }
  });

  it('a connection of its own is not answered with another connection\'s peer', async () => {
    const p1 = await pair('TLSv1.3');
    const p2 = await pair('TLSv1.3');
    try {
      const a = p1.server.getPeerCertificate();
      const b = p2.server.getPeerCertificate();
      assert.notEqual(a, b);
      assert.notEqual(a.fingerprint256, b.fingerprint256);
    } finally {
      await p1.close();
      await p2.close();
    }
  });
});
