// A throwaway CA for tests: certificates with Convoy subjects (see
// common/identity.ts), valid, expired, or from another CA, with no etcd and
// no manager. Tests of TLS links, roles and NATS permissions use it; the real
// cluster CA is manager/ca/.
//
//   const ca = await createTestCa('cluster-1');
//   const admin = await ca.bundle({ id: 'alice', role: 'admin' });       // TlsBundle
//   const server = await ca.bundle({ id: 'm1', role: 'manager', dns: ['localhost'], ips: ['127.0.0.1'] });
//   const old = await ca.bundle({ id: 'bob', role: 'viewer', notAfter: new Date(Date.now() - 1000) });
import 'reflect-metadata';
import * as crypto from 'node:crypto';
import * as x509 from '@peculiar/x509';
import type { Role, TlsBundle } from '../identity';

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
type KeyPair = crypto.webcrypto.CryptoKeyPair;

export interface TestCertRequest {
  id: string;
  role: Role;
  /** Default: the CA's cluster. */
  cluster?: string;
  dns?: string[];
  ips?: string[];
  notBefore?: Date;
  notAfter?: Date;
}

export interface TestCa {
  cluster: string;
  caPem: string;
  bundle(req: TestCertRequest): Promise<TlsBundle>;
}

function pemKey(der: ArrayBuffer): string {
  return `-----BEGIN PRIVATE KEY-----\n${Buffer.from(der).toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '')}\n-----END PRIVATE KEY-----\n`;
}

function serial(): string {
  const b = crypto.randomBytes(16);
  b[0] &= 0x7f;
  return b.toString('hex');
}

export async function createTestCa(cluster = 'test-cluster'): Promise<TestCa> {
  const keys = (await crypto.webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as KeyPair;
  const caCert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: `O=${cluster}, OU=convoy-ca, CN=convoy test root CA`,
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + 24 * 3600_000),
    keys,
    signingAlgorithm: ALG,
    extensions: [
      new x509.BasicConstraintsExtension(true, 1, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  const caPem = caCert.toString('pem');
  return {
    cluster,
    caPem,
    async bundle(req) {
      const k = (await crypto.webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as KeyPair;
      const alt: { type: 'dns' | 'ip'; value: string }[] = [
        ...(req.dns ?? []).map((value) => ({ type: 'dns' as const, value })),
        ...(req.ips ?? []).map((value) => ({ type: 'ip' as const, value })),
      ];
      const cert = await x509.X509CertificateGenerator.create({
        serialNumber: serial(),
        subject: `O=${req.cluster ?? cluster}, OU=${req.role}, CN=${req.id}`,
        issuer: caCert.subject,
        notBefore: req.notBefore ?? new Date(Date.now() - 60_000),
        notAfter: req.notAfter ?? new Date(Date.now() + 3600_000),
        publicKey: k.publicKey,
        signingKey: keys.privateKey,
        signingAlgorithm: ALG,
        extensions: [
          new x509.BasicConstraintsExtension(false, undefined, true),
          new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
          new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
          await x509.AuthorityKeyIdentifierExtension.create(caCert),
          ...(alt.length ? [new x509.SubjectAlternativeNameExtension(alt)] : []),
        ],
      });
      const key = pemKey(await crypto.webcrypto.subtle.exportKey('pkcs8', k.privateKey));
      return { ca: caPem, cert: cert.toString('pem'), key };
    },
  };
}
