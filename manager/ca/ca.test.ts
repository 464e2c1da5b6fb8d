import { strict as assert } from 'node:assert';
import * as crypto from 'node:crypto';
import { createKeyAndCsr, certDigest } from '../../common/csr';
import { identityFromCert } from '../../common/identity';
import { makeJoinToken, parseJoinToken, tokenSecretHash } from '../../common/join-token';
import { renewalTime } from '../../proto/join';
import { MemoryStore } from '../store/memory-store';
import type { CaRecord } from '../store/store';
import { ClusterCa, CaError } from './ca';
import { KeyRing } from '../crypto/kek';

describe('cluster CA', () => {
  const kek = new KeyRing([crypto.randomBytes(32)]);
  const open = (store: MemoryStore, revoked = new Set<string>(), k = kek) => ClusterCa.loadOrCreate({ store, kek: k, cluster: 'c1', revoked, defaultTtl: () => 3600_000 });

  it('is created once; etcd holds its key only sealed; another KEK cannot load it', async () => {
    const store = new MemoryStore();
    const a = await open(store);
    const b = await open(store);
    assert.deepEqual([a.created, b.created], [true, false], 'only the first created it');
    assert.equal(a.fingerprint, b.fingerprint, 'the second manager loads the same CA');
    assert.equal(a.fingerprint, certDigest(a.caPem));
    const rec = (await store.get<CaRecord>('ca', 'root'))!;
    assert.doesNotMatch(JSON.stringify(rec), /PRIVATE KEY/);
    assert.match(rec.sealedKey, /^v1:/);
    await assert.rejects(open(store, new Set(), new KeyRing([crypto.randomBytes(32)])), /does not open/);
    const x = new crypto.X509Certificate(a.caPem);
    assert.ok(x.ca);
    assert.ok(a.notAfter > Date.now() + 19 * 365 * 24 * 3600_000);
  });

  it('issues the subject the caller names, not the CSR’s, signed by the CA, with SANs and lifetime', async () => {
    const ca = await open(new MemoryStore());
    const { csrPem, keyPem } = await createKeyAndCsr('admin-pretender');
    const r = await ca.issue(csrPem, { id: 'n1', role: 'worker' }, 120_000, { ips: ['10.0.0.1'], dns: ['localhost'] });
    const x = new crypto.X509Certificate(r.cert);
    assert.ok(x.verify(new crypto.X509Certificate(ca.caPem).publicKey), 'signed by the CA');
    assert.ok(x.checkIssued(new crypto.X509Certificate(ca.caPem)));
    assert.deepEqual({ ...identityFromCert(r.cert), serial: undefined, notAfter: undefined }, { id: 'n1', role: 'worker', cluster: 'c1', serial: undefined, notAfter: undefined });
    assert.match(x.subjectAltName ?? '', /IP Address:10.0.0.1/);
    assert.ok(Math.abs(r.notAfter - (Date.now() + 120_000)) < 5_000);
    assert.equal(r.serial, x.serialNumber.toUpperCase());
    assert.ok(x.checkPrivateKey(crypto.createPrivateKey(keyPem)), 'the certificate is for the CSR’s key');
    const d = await ca.issue((await createKeyAndCsr()).csrPem, { id: 'n2', role: 'manager' });
    assert.ok(Math.abs(d.notAfter - (Date.now() + 3600_000)) < 5_000, 'default lifetime from the cluster');
  });

  it('refuses a CSR whose signature does not verify, garbage, bad ids and revoked identities', async () => {
    const revoked = new Set<string>();
    const store = new MemoryStore();
    const ca = await open(store, revoked);
    const { csrPem } = await createKeyAndCsr();
    // Flip a byte inside the signature (the end of the DER).
    const der = Buffer.from(csrPem.replace(/-----[^-]+-----/g, '').replace(/\s/g, ''), 'base64');
    der[der.length - 3] ^= 0xff;
    const bad = `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString('base64')}\n-----END CERTIFICATE REQUEST-----\n`;
    await assert.rejects(ca.issue(bad, { id: 'n1', role: 'worker' }), CaError);
    await assert.rejects(ca.issue('nonsense', { id: 'n1', role: 'worker' }), /csr: not a PKCS#10/);
    await assert.rejects(ca.issue(csrPem, { id: 'a,OU=admin', role: 'worker' }), /id: .* is not a valid identity/);
    await ca.revoke('n9');
    assert.ok(await store.get('revoked', 'n9'), 'the revocation is in the store');
    revoked.add('n9'); // what the state cache does on the watch event
    await assert.rejects(ca.issue(csrPem, { id: 'n9', role: 'worker' }), /revoked/);
    assert.equal(ca.isRevoked({ id: 'n9', role: 'worker', cluster: 'c1' }), true);
    assert.equal(ca.isRevoked({ id: 'n1', role: 'worker', cluster: 'c1' }), false);
    await ca.revoke('n9'); // idempotent
  });
});

describe('join tokens', () => {
  it('pin the CA digest and carry a secret; etcd keeps a hash of the secret', () => {
    const digest = 'ab'.repeat(32);
    const t = makeJoinToken(digest);
    assert.match(t, /^CVYTKN-1-[0-9a-f]{64}-[0-9a-f]{32}$/);
    assert.equal(parseJoinToken(t).caDigest, digest);
    assert.notEqual(makeJoinToken(digest), t, 'a new secret each time');
    assert.equal(tokenSecretHash(t), crypto.createHash('sha256').update(parseJoinToken(t).secret).digest('hex'));
    for (const bad of ['', 'SWMTKN-1-x-y', `CVYTKN-1-${digest}`, `CVYTKN-1-${digest.slice(2)}-${'0'.repeat(32)}`, `CVYTKN-2-${digest}-${'0'.repeat(32)}`])
      assert.throws(() => parseJoinToken(bad), /^Error: join token: not a Convoy join token/);
  });

  it('renewal falls between 50% and 80% of the lifetime', () => {
    assert.equal(renewalTime(0, 1000, () => 0), 500);
    assert.equal(renewalTime(0, 1000, () => 1), 800);
    for (let i = 0; i < 100; i++) {
      const t = renewalTime(1000, 2000);
      assert.ok(t >= 1500 && t <= 1800);
    }
  });
});
