// The cluster root CA (docs/security.md). Created once, by the first manager
// that initialises the cluster: an ECDSA P-256 key and a self-signed
// certificate, kept in the store at /convoy/ca/root with the private key
// sealed under the key-encryption key (manager/crypto/kek.ts); etcd never
// holds it in the clear. Every manager that holds the KEK loads it and can
// issue.
//
// Issuing (CertIssuer, ./issuer.ts): the subject is O=<cluster id>,
// OU=<role>, CN=<id> from the caller, never from the CSR; the CSR's signature
// is checked (the requester holds the key). Revocation is by identity: a
// /convoy/revoked/<id> record, mirrored by every manager's state cache, so
// `isRevoked` is a set lookup on every call.
import 'reflect-metadata';
import * as crypto from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { certDigest, KEY_ALG, pemOf } from '../../common/csr';
import type { Identity, Role } from '../../common/identity';
import type { KeyRing } from '../crypto/kek';
import { ConflictError, key, type CaRecord, type RevokedRecord, type Store } from '../store/store';
import type { CertIssuer, IssuedCert } from './issuer';

/** The root CA lives 20 years (swarmkit's choice); rotating it is a re-initialisation, docs/security.md. */
export const CA_VALIDITY_MS = 20 * 365 * 24 * 3600_000;
/** Node and user certificates: 90 days unless `convoy cluster update --cert-expiry`. */
export { DEFAULT_CERT_EXPIRY_MS } from '../../proto/defaults';
/** Certificates are back-dated this much, for clocks a little behind. */
const BACKDATE_MS = 60_000;
/** AAD of the sealed CA key: its etcd key, so a sealed value moved elsewhere does not open. */
export const CA_KEY_AAD = key('ca', 'root');

export class CaError extends Error {}

export interface SubjectAltNames {
  dns?: string[];
  ips?: string[];
}

function serial(): string {
  const b = crypto.randomBytes(16);
  b[0] &= 0x7f;
  return b.toString('hex');
}

async function importKey(pkcs8Pem: string): Promise<crypto.webcrypto.CryptoKey> {
  const der = crypto.createPrivateKey(pkcs8Pem).export({ type: 'pkcs8', format: 'der' });
  return crypto.webcrypto.subtle.importKey('pkcs8', der, KEY_ALG, false, ['sign']);
}

export class ClusterCa implements CertIssuer {
  readonly fingerprint: string;
  readonly notAfter: number;
  /** This loadOrCreate wrote the CA (a concurrent creator that lost loads the winner's: false). */
  created = false;
  private constructor(
    private readonly store: Store,
    readonly cluster: string,
    readonly caPem: string,
    private readonly caCert: x509.X509Certificate,
    private readonly signingKey: crypto.webcrypto.CryptoKey,
    private readonly revoked: { has(id: string): boolean },
    private readonly defaultTtl: () => number,
  ) {
    this.fingerprint = certDigest(caPem);
    this.notAfter = caCert.notAfter.getTime();
  }

  /**
   * The cluster's CA: loaded from the store, or created there if there is
   * none yet (a concurrent creator wins; its CA is loaded). Throws when the
   * stored key does not open under this KEK.
   */
  static async loadOrCreate(o: { store: Store; kek: KeyRing; cluster: string; revoked: { has(id: string): boolean }; defaultTtl: () => number }): Promise<ClusterCa> {
    let rec = await o.store.get<CaRecord>('ca', 'root');
    let created = false;
    if (!rec) {
      const keys = (await crypto.webcrypto.subtle.generateKey(KEY_ALG, true, ['sign', 'verify'])) as crypto.webcrypto.CryptoKeyPair;
      const now = Date.now();
      const cert = await x509.X509CertificateGenerator.createSelfSigned({
        serialNumber: serial(),
        name: `O=${o.cluster}, OU=convoy-ca, CN=convoy root CA`,
        notBefore: new Date(now - BACKDATE_MS),
        notAfter: new Date(now + CA_VALIDITY_MS),
        keys,
        signingAlgorithm: KEY_ALG,
        extensions: [
          new x509.BasicConstraintsExtension(true, 0, true),
          new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
          await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
        ],
      });
      const keyPem = pemOf('PRIVATE KEY', await crypto.webcrypto.subtle.exportKey('pkcs8', keys.privateKey));
      try {
        await o.store.put('ca', { id: 'root', meta: null, cert: cert.toString('pem'), sealedKey: o.kek.seal(Buffer.from(keyPem), CA_KEY_AAD) }, true);
        created = true;
      } catch (e) {
        if (!(e instanceof ConflictError)) throw e;
      }
      rec = await o.store.get<CaRecord>('ca', 'root');
      if (!rec) throw new CaError('cluster CA: written but not readable');
    }
    const keyPem = o.kek.open(rec.sealedKey, CA_KEY_AAD).toString('utf8');
    const ca = new ClusterCa(o.store, o.cluster, rec.cert, new x509.X509Certificate(rec.cert), await importKey(keyPem), o.revoked, o.defaultTtl);
    ca.created = created;
    return ca;
  }

  async issue(csrPem: string, who: { id: string; role: Role }, ttlMs?: number, sans: SubjectAltNames = {}): Promise<IssuedCert> {
    if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/.test(who.id)) throw new CaError(`id: "${who.id}" is not a valid identity name`);
    if (this.revoked.has(who.id)) throw new CaError(`${who.id}: revoked; it gets no certificate`);
    let csr: x509.Pkcs10CertificateRequest;
    try {
      csr = new x509.Pkcs10CertificateRequest(csrPem);
    } catch {
      throw new CaError('csr: not a PKCS#10 certificate request');
    }
    if (!(await csr.verify().catch(() => false))) throw new CaError('csr: its signature does not verify');
    const alg = csr.publicKey.algorithm as { name?: string; namedCurve?: string };
    if (alg.name !== 'ECDSA' || alg.namedCurve !== 'P-256') throw new CaError('csr: want an ECDSA P-256 key');
    const now = Date.now();
    const ttl = ttlMs ?? this.defaultTtl();
    const notAfter = Math.min(now + ttl, this.notAfter);
    const alt = [...(sans.dns ?? []).map((value) => ({ type: 'dns' as const, value })), ...(sans.ips ?? []).map((value) => ({ type: 'ip' as const, value }))];
    const cert = await x509.X509CertificateGenerator.create({
      serialNumber: serial(),
      subject: `O=${this.cluster}, OU=${who.role}, CN=${who.id}`,
      issuer: this.caCert.subject,
      notBefore: new Date(now - BACKDATE_MS),
      notAfter: new Date(notAfter),
      publicKey: csr.publicKey,
      signingKey: this.signingKey,
      signingAlgorithm: KEY_ALG,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
        await x509.AuthorityKeyIdentifierExtension.create(this.caCert),
        ...(alt.length ? [new x509.SubjectAlternativeNameExtension(alt)] : []),
      ],
    });
    return { cert: cert.toString('pem'), ca: this.caPem, serial: cert.serialNumber.toUpperCase(), notAfter: cert.notAfter.getTime() };
  }

  async revoke(id: string): Promise<void> {
    const rec: RevokedRecord = { id, meta: null, revokedAt: Date.now() };
    try {
      await this.store.put('revoked', rec, true);
    } catch (e) {
      if (!(e instanceof ConflictError)) throw e; // revoked already
    }
  }

  isRevoked(who: Identity): boolean {
    return this.revoked.has(who.id);
  }
}
