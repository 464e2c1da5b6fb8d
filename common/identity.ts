// Who is at the other end of a link. Every Convoy certificate is issued by
// the cluster root CA and names one identity in its subject, swarmkit style:
//
//   O=<cluster id>, OU=<role>, CN=<id>
//
// where <id> is a node id (roles `manager`, `worker`) or a user name (roles
// `admin`, `operator`, `viewer`). Links take the caller's identity from its
// verified certificate, never from what a request says. The PEM bundle on
// disk uses Docker's file names: ca.pem, cert.pem, key.pem.
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';

export const NODE_ROLES = ['manager', 'worker'] as const;
export const USER_ROLES = ['admin', 'operator', 'viewer'] as const;
export type NodeRole = (typeof NODE_ROLES)[number];
export type UserRole = (typeof USER_ROLES)[number];
export type Role = NodeRole | UserRole;
export const ROLES: readonly Role[] = [...NODE_ROLES, ...USER_ROLES];

export interface Identity {
  /** Node id or user name (the certificate's CN). */
  id: string;
  role: Role;
  /** Cluster id (the certificate's O). */
  cluster: string;
  /** Serial number of the certificate (hex, upper case), for revocation and audit. */
  serial?: string;
  /** Not after, ms since the epoch. */
  notAfter?: number;
}

/** Local root on the manager's unix socket: admin, with no certificate. */
export const LOCAL_ROOT: Identity = Object.freeze({ id: 'local-root', role: 'admin', cluster: '' }) as Identity;

export function isRole(s: string): s is Role {
  return (ROLES as readonly string[]).includes(s);
}
export function isUserRole(s: string): s is UserRole {
  return (USER_ROLES as readonly string[]).includes(s);
}

/** PEM strings of one identity's TLS material. */
export interface TlsBundle {
  ca: string;
  cert: string;
  key: string;
}

export const BUNDLE_FILES = { ca: 'ca.pem', cert: 'cert.pem', key: 'key.pem' } as const;

/**
 * The identity a certificate names, or undefined if its subject is not a
 * Convoy subject. Does not verify the chain: callers pass certificates the
 * TLS layer has already verified against the cluster CA.
 */
export function identityFromCert(cert: crypto.X509Certificate | Buffer | string): Identity | undefined {
  let x: crypto.X509Certificate;
  try {
    x = cert instanceof crypto.X509Certificate ? cert : new crypto.X509Certificate(cert);
  } catch {
    return undefined;
  }
  const fields = parseSubject(x.subject);
  const id = fields.get('CN');
  const role = fields.get('OU');
  const cluster = fields.get('O');
  if (!id || !role || cluster === undefined || !isRole(role)) return undefined;
  return { id, role, cluster, serial: x.serialNumber.toUpperCase(), notAfter: Date.parse(x.validTo) };
}

/** Node prints a subject one `KEY=value` per line; values may not hold newlines in ours. */
function parseSubject(subject: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const line of subject.split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0 && !m.has(line.slice(0, eq))) m.set(line.slice(0, eq), line.slice(eq + 1));
  }
  return m;
}

/** Reads a bundle directory (ca.pem, cert.pem, key.pem). Throws naming the missing file. */
export function readBundle(dir: string): TlsBundle {
  const read = (f: string) => {
    const p = path.join(dir, f);
    try {
      return fs.readFileSync(p, 'utf8');
    } catch (e) {
      throw new Error(`${p}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'missing' : (e as Error).message}`);
    }
  };
  return { ca: read(BUNDLE_FILES.ca), cert: read(BUNDLE_FILES.cert), key: read(BUNDLE_FILES.key) };
}

/** Writes a bundle: the directory 0700, the key 0600, each file replaced atomically. */
export function writeBundle(dir: string, b: TlsBundle): void {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  fs.chmodSync(dir, 0o700);
  for (const [k, f] of Object.entries(BUNDLE_FILES) as [keyof TlsBundle, string][]) {
    const p = path.join(dir, f);
    const tmp = `${p}.tmp-${process.pid}`;
    fs.writeFileSync(tmp, b[k], { mode: 0o600 });
    fs.renameSync(tmp, p);
  }
}
