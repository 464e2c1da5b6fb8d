// A small private CA for one etcd (the embedded one in a manager's data dir,
// or the lab's shared one): it signs that etcd's server certificate and the
// client certificates of the managers that use it, and nothing else. It is
// not the cluster CA (docs/security.md, "etcd"): etcd's --client-cert-auth
// admits every certificate its trusted CA signed, and the cluster CA signs
// every worker's and operator's certificate too, so trusting it would hand
// the whole keyspace to any node that can reach etcd's port. A dedicated CA
// also exists before etcd does (the cluster CA's key lives in etcd), which
// is what the embedded etcd needs to start, at first and at every restart.
import 'reflect-metadata';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as x509 from '@peculiar/x509';
import type { TlsBundle } from '../../common/identity';

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
type KeyPair = crypto.webcrypto.CryptoKeyPair;

/** Lifetime of the etcd CA and of what it signs: renewed by re-creating the directory (docs/etcd.md). */
export const ETCD_PKI_VALIDITY_MS = 10 * 365 * 24 * 3600_000;

export interface LocalCa {
  certPem: string;
  keyPem: string;
}

function pemKey(der: ArrayBuffer): string {
  const b64 = Buffer.from(der).toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '');
  return `-----BEGIN PRIVATE KEY-----\n${b64}\n-----END PRIVATE KEY-----\n`;
}

function serial(): string {
  const b = crypto.randomBytes(16);
  b[0] &= 0x7f;
  return b.toString('hex');
}

async function importKey(pem: string): Promise<crypto.webcrypto.CryptoKey> {
  const der = crypto.createPrivateKey(pem).export({ format: 'der', type: 'pkcs8' });
  return crypto.webcrypto.subtle.importKey('pkcs8', der, ALG, false, ['sign']);
}

/** A self-signed CA named `O=<org>, CN=<name>`. */
export async function createLocalCa(name: string, org = 'convoy-etcd'): Promise<LocalCa> {
  const keys = (await crypto.webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as KeyPair;
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: `O=${org}, CN=${name}`,
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + ETCD_PKI_VALIDITY_MS),
    keys,
    signingAlgorithm: ALG,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { certPem: cert.toString('pem'), keyPem: pemKey(await crypto.webcrypto.subtle.exportKey('pkcs8', keys.privateKey)) };
}

/** A leaf signed by `ca`: `subject` as given, serverAuth and/or clientAuth, SANs for a server. */
export async function issueLeaf(ca: LocalCa, o: { subject: string; server?: boolean; client?: boolean; dns?: string[]; ips?: string[] }): Promise<TlsBundle> {
  const caCert = new x509.X509Certificate(ca.certPem);
  const k = (await crypto.webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as KeyPair;
  const alt = [...(o.dns ?? []).map((value) => ({ type: 'dns' as const, value })), ...(o.ips ?? []).map((value) => ({ type: 'ip' as const, value }))];
  const usages = [...(o.server ? [x509.ExtendedKeyUsage.serverAuth] : []), ...(o.client ? [x509.ExtendedKeyUsage.clientAuth] : [])];
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: o.subject,
    issuer: caCert.subject,
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + ETCD_PKI_VALIDITY_MS - 120_000),
    publicKey: k.publicKey,
    signingKey: await importKey(ca.keyPem),
    signingAlgorithm: ALG,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
      new x509.ExtendedKeyUsageExtension(usages),
      await x509.AuthorityKeyIdentifierExtension.create(caCert),
      ...(alt.length ? [new x509.SubjectAlternativeNameExtension(alt)] : []),
    ],
  });
  return { ca: ca.certPem, cert: cert.toString('pem'), key: pemKey(await crypto.webcrypto.subtle.exportKey('pkcs8', k.privateKey)) };
}

/** Where an etcd's TLS material lives: PEM files etcd reads, 0600 in a 0700 directory. */
export interface EtcdPkiFiles {
  dir: string;
  caFile: string;
  certFile: string;
  keyFile: string;
}

export interface EtcdPki {
  /** The files etcd itself is started with (server certificate, trusted CA). */
  server: EtcdPkiFiles;
  /** The manager's client bundle for this etcd. */
  client: TlsBundle;
  ca: LocalCa;
}

const FILES = {
  caCert: 'ca.pem',
  caKey: 'ca-key.pem',
  serverCert: 'server.pem',
  serverKey: 'server-key.pem',
  clientCert: 'client.pem',
  clientKey: 'client-key.pem',
} as const;

function writePrivate(p: string, data: string): void {
  const tmp = `${p}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, data, { mode: 0o600 });
  fs.renameSync(tmp, p);
}

/**
 * The TLS material of one etcd in `dir` (created on first use, read after):
 * its CA, a server certificate for `hosts` (IP addresses and names the
 * clients dial) and one client certificate (`clientName`, the manager's).
 * Every file 0600, the directory 0700. A server certificate whose names no
 * longer cover `hosts` is re-issued from the same CA.
 */
export async function ensureEtcdPki(dir: string, o: { hosts: string[]; clientName?: string }): Promise<EtcdPki> {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  fs.chmodSync(dir, 0o700);
  const p = (f: string) => path.join(dir, f);
  const read = (f: string) => (fs.existsSync(p(f)) ? fs.readFileSync(p(f), 'utf8') : undefined);
  let ca: LocalCa;
  const caCert = read(FILES.caCert);
  const caKey = read(FILES.caKey);
  let fresh = false;
  if (caCert && caKey) ca = { certPem: caCert, keyPem: caKey };
  else {
    ca = await createLocalCa(`convoy etcd CA ${path.basename(path.dirname(dir))}`);
    writePrivate(p(FILES.caKey), ca.keyPem);
    writePrivate(p(FILES.caCert), ca.certPem);
    fresh = true;
  }
  const ips = o.hosts.filter((h) => /^[\d.]+$/.test(h) || h.includes(':'));
  const dns = [...new Set(['localhost', ...o.hosts.filter((h) => !ips.includes(h))])];
  const serverCert = read(FILES.serverCert);
  if (fresh || !serverCert || !read(FILES.serverKey) || !covers(serverCert, ips, dns)) {
    const b = await issueLeaf(ca, { subject: 'O=convoy-etcd, OU=etcd, CN=etcd', server: true, client: true, ips: [...new Set(['127.0.0.1', ...ips])], dns });
    writePrivate(p(FILES.serverKey), b.key);
    writePrivate(p(FILES.serverCert), b.cert);
  }
  let clientCert = read(FILES.clientCert);
  let clientKey = read(FILES.clientKey);
  if (fresh || !clientCert || !clientKey) {
    const b = await issueLeaf(ca, { subject: `O=convoy-etcd, OU=manager, CN=${o.clientName ?? 'convoy-manager'}`, client: true });
    writePrivate(p(FILES.clientKey), b.key);
    writePrivate(p(FILES.clientCert), b.cert);
    clientCert = b.cert;
    clientKey = b.key;
  }
  return {
    server: { dir, caFile: p(FILES.caCert), certFile: p(FILES.serverCert), keyFile: p(FILES.serverKey) },
    client: { ca: ca.certPem, cert: clientCert, key: clientKey },
    ca,
  };
}

/** Whether a server certificate names every one of these addresses and names. */
function covers(certPem: string, ips: string[], dns: string[]): boolean {
  try {
    const x = new crypto.X509Certificate(certPem);
    const san = x.subjectAltName ?? '';
    if (Date.parse(x.validTo) < Date.now() + 24 * 3600_000) return false;
    return ips.every((ip) => san.includes(`IP Address:${ip}`)) && dns.every((d) => san.includes(`DNS:${d}`));
  } catch {
    return false;
  }
}

/** A further client certificate from an etcd's CA (the lab gives one to each manager). */
export function issueEtcdClient(pki: EtcdPki, name: string): Promise<TlsBundle> {
  return issueLeaf(pki.ca, { subject: `O=convoy-etcd, OU=manager, CN=${name}`, client: true });
}
