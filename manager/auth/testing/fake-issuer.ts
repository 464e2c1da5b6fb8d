// A CertIssuer for tests: its own throwaway CA that signs CSRs as the real
// one does (the subject from the caller, the key from the CSR, its signature
// checked), records what it issued and revoked, and answers isRevoked from
// that. Also hands out whole bundles (server and client certificates) so a
// test can stand up a mutual-TLS server trusting it.
import 'reflect-metadata';
import * as crypto from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { createKeyAndCsr } from '../../../common/csr';
import type { Identity, Role, TlsBundle } from '../../../common/identity';
import type { CertIssuer, IssuedCert } from '../../ca/issuer';

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

export interface FakeIssuer extends CertIssuer {
  cluster: string;
  caPem: string;
  issued: { id: string; role: Role; serial: string }[];
  revoked: string[];
  /** A bundle for `who` (key made here), e.g. the server's or another caller's. */
  bundle(who: { id: string; role: Role; dns?: string[]; ips?: string[] }): Promise<TlsBundle>;
  /** Make the next issue() fail with this message. */
  failNext?: string;
}

export async function createFakeIssuer(cluster = 'test-cluster'): Promise<FakeIssuer> {
  const keys = (await crypto.webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as crypto.webcrypto.CryptoKeyPair;
  const serial = () => {
    const b = crypto.randomBytes(16);
    b[0] &= 0x7f;
    return b.toString('hex');
  };
  const ca = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: `O=${cluster}, OU=convoy-ca, CN=convoy fake issuer CA`,
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + 24 * 3600_000),
    keys,
    signingAlgorithm: ALG,
    extensions: [new x509.BasicConstraintsExtension(true, 1, true), new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true)],
  });
  const caPem = ca.toString('pem');
  const revokedIds = new Set<string>();

  const sign = async (csrPem: string, who: { id: string; role: Role; dns?: string[]; ips?: string[] }): Promise<IssuedCert> => {
    const csr = new x509.Pkcs10CertificateRequest(csrPem);
    if (!(await csr.verify())) throw new Error('the CSR signature does not verify');
    const alt = [...(who.dns ?? []).map((value) => ({ type: 'dns' as const, value })), ...(who.ips ?? []).map((value) => ({ type: 'ip' as const, value }))];
    const notAfter = new Date(Date.now() + 3600_000);
    const cert = await x509.X509CertificateGenerator.create({
      serialNumber: serial(),
      subject: `O=${cluster}, OU=${who.role}, CN=${who.id}`,
      issuer: ca.subject,
      notBefore: new Date(Date.now() - 60_000),
      notAfter,
      publicKey: csr.publicKey,
      signingKey: keys.privateKey,
      signingAlgorithm: ALG,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
        ...(alt.length ? [new x509.SubjectAlternativeNameExtension(alt)] : []),
      ],
    });
    const s = new crypto.X509Certificate(cert.toString('pem')).serialNumber.toUpperCase();
    return { cert: cert.toString('pem'), ca: caPem, serial: s, notAfter: notAfter.getTime() };
  };

  const issuer: FakeIssuer = {
    cluster,
    caPem,
    issued: [],
    revoked: [],
    async issue(csrPem, who) {
      if (issuer.failNext) {
        const m = issuer.failNext;
        issuer.failNext = undefined;
        throw new Error(m);
      }
      const c = await sign(csrPem, who);
      issuer.issued.push({ id: who.id, role: who.role, serial: c.serial });
      return c;
    },
    async revoke(id) {
      issuer.revoked.push(id);
      revokedIds.add(id);
    },
    isRevoked(who: Identity) {
      // Certificates naming a revoked id issued before the revocation (every one of this fake: it issues within the test).
      return revokedIds.has(who.id) && issuer.issued.some((i) => i.id === who.id && i.serial === who.serial);
    },
    async bundle(who) {
      const { keyPem: key, csrPem: csr } = await createKeyAndCsr(who.id);
      const c = await sign(csr, who);
      return { ca: caPem, cert: c.cert, key };
    },
  };
  return issuer;
}
