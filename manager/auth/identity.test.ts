// identityOf: the identity of the verified peer certificate, parsed once per
// certificate; two certificates never share an entry.
import { strict as assert } from 'node:assert';
import * as crypto from 'node:crypto';
import { createFakeIssuer } from './testing/fake-issuer';
import { identityCacheSize, identityOf, LOCAL_SOCKET, rememberCallIdentity } from './identity';

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
