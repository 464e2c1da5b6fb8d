// A key pair and a certificate signing request for it, made where the key
// will live (an agent's state dir, a manager's data dir, an operator's
// bundle): the private key never leaves the process that made it; the CA
// sees only the CSR. The CA ignores the CSR's subject (it names the identity
// itself, see manager/ca/issuer.ts), so the subject here is only a hint.
// Loads @peculiar/x509 when called, not when imported (CLI start-up).
import * as crypto from 'node:crypto';

export const KEY_ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

function x509(): typeof import('@peculiar/x509') {
  require('reflect-metadata');
  return require('@peculiar/x509') as typeof import('@peculiar/x509');
}

export function pemOf(label: string, der: ArrayBuffer | Buffer): string {
  const b64 = Buffer.from(der as ArrayBuffer).toString('base64');
  return `-----BEGIN ${label}-----\n${b64.replace(/(.{64})/g, '$1\n').replace(/\n$/, '')}\n-----END ${label}-----\n`;
}

/** A fresh ECDSA P-256 key (PKCS#8 PEM) and a CSR signed with it. */
export async function createKeyAndCsr(cn = 'convoy-node'): Promise<{ keyPem: string; csrPem: string }> {
  const keys = (await crypto.webcrypto.subtle.generateKey(KEY_ALG, true, ['sign', 'verify'])) as crypto.webcrypto.CryptoKeyPair;
  const csr = await x509().Pkcs10CertificateRequestGenerator.create({ name: `CN=${cn.replace(/[,=+<>#;"\\]/g, '_')}`, keys, signingAlgorithm: KEY_ALG });
  const keyPem = pemOf('PRIVATE KEY', await crypto.webcrypto.subtle.exportKey('pkcs8', keys.privateKey));
  return { keyPem, csrPem: csr.toString('pem') };
}

/** Why `csrPem` is not a well-formed CSR with a valid self-signature, or undefined when it is one. */
export async function checkCsr(csrPem: string): Promise<string | undefined> {
  const x = x509();
  let csr: InstanceType<typeof x.Pkcs10CertificateRequest>;
  try {
    csr = new x.Pkcs10CertificateRequest(csrPem);
  } catch (e) {
    return `not a PKCS#10 certificate signing request (${e instanceof Error ? e.message : String(e)})`;
  }
  try {
    if (!(await csr.verify())) return 'its signature does not verify (not signed by the key it carries)';
  } catch (e) {
    return `its signature cannot be checked (${e instanceof Error ? e.message : String(e)})`;
  }
  return undefined;
}

/** sha256 of a certificate's DER, lower-case hex (what join tokens pin and `convoy cluster ca` shows). */
export function certDigest(pem: string): string {
  return crypto.createHash('sha256').update(new crypto.X509Certificate(pem).raw).digest('hex');
}

/** Not before / not after of a certificate, ms since the epoch. */
export function certValidity(pem: string): { notBefore: number; notAfter: number } {
  const x = new crypto.X509Certificate(pem);
  return { notBefore: Date.parse(x.validFrom), notAfter: Date.parse(x.validTo) };
}
