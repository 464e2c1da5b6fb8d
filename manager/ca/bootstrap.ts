// A manager's own identity at start-up (docs/security.md): the KEK, the
// cluster CA, its own certificate (with SANs for the addresses it is reached
// at) and, if it has none yet, an admin client bundle in its data dir.
//
// The KEK: the manager that initialises the cluster creates it (<dataDir>/kek,
// or --kek-file). A manager joining an existing cluster needs the same key:
// --kek-file (a copy the operator placed), or a manager join token, with which
// it joins over the CA-pinned TLS exchange (proto/join.ts) and is handed the
// KEK there; it keeps it in <dataDir>/kek from then on.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { isIP } from 'node:net';
import { certValidity, createKeyAndCsr } from '../../common/csr';
import { DEFAULT_CERT_EXPIRY_MS } from '../../proto/defaults';
import { writeBundle, type TlsBundle } from '../../common/identity';
import type { Logger } from '../../common/logger';
import { joinCluster } from '../../proto/join';
import { MANAGER_SERVER_NAME } from '../../proto/client';
import { loadKek, loadOrCreateKek, parseKeyRing, KekError, type KeyRing } from '../crypto/kek';
import type { StateCache } from '../state/cache';
import type { Store } from '../store/store';
import { ClusterCa, type SubjectAltNames } from './ca';

export const TLS_SUBDIR = 'tls';
export const ADMIN_SUBDIR = 'admin';
/** CN of the admin bundle a manager writes into its data dir. */
export const ADMIN_ID = 'admin';

export interface BootstrapOptions {
  store: Store;
  cache: StateCache;
  dataDir: string;
  kekFile?: string;
  /** This manager created the cluster just now. */
  initialising: boolean;
  clusterId: string;
  managerId: string;
  /** A manager join token and where to join, for a manager without the KEK. */
  joinToken?: string;
  joinAddr?: string;
  defaultTtl: () => number;
  sans: SubjectAltNames;
  log: Logger;
}

export interface ManagerIdentity {
  ca: ClusterCa;
  kek: KeyRing;
  /** This manager's own bundle (also in <dataDir>/tls). */
  bundle: TlsBundle;
  notBefore: number;
  notAfter: number;
  /** This manager wrote the CA just now (a new cluster, or one from before the CA): the join tokens must be made anew. */
  createdCa: boolean;
  /** Issues this manager a new certificate (renewal); writes it to <dataDir>/tls. */
  reissue(): Promise<{ bundle: TlsBundle; notBefore: number; notAfter: number }>;
}

function writeKek(file: string, kek: KeyRing): void {
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  fs.writeFileSync(file, kek.text(), { mode: 0o600, flag: 'wx' });
}

async function obtainKek(o: BootstrapOptions, caExists: boolean): Promise<KeyRing> {
  const file = o.kekFile ?? path.join(o.dataDir, 'kek');
  // A new cluster, or one from before the CA (nothing is sealed yet): this manager makes the key.
  if (o.initialising || !caExists) return loadOrCreateKek(file);
  if (fs.existsSync(file)) return loadKek(file);
  if (!o.joinToken)
    throw new KekError(`this cluster's CA key is sealed under a key-encryption key this manager does not have (${file}): start it with --kek-file, or with --token <manager join token> to be handed it`);
  if (!o.joinAddr) throw new KekError('--join: the join address of a running manager (host:7423) is needed with --token');
  const r = await joinCluster({ joinAddr: o.joinAddr, token: o.joinToken, wantKek: true });
  if (r.role !== 'manager' || !r.kek) throw new KekError('join: a manager join token is needed for a manager (this is a worker token)');
  // Every key the answering manager holds: during a rotation this one opens what either key sealed.
  const kek = parseKeyRing(r.kek, 'join: the key-encryption keys received');
  writeKek(file, kek);
  o.log.info('joined the cluster as a manager; key-encryption key received', { file, kek: kek.id, keys: kek.keys.length });
  return kek;
}

/** Addresses this host answers on, for the manager certificate's SANs when it listens on a wildcard. */
export function localAddresses(): string[] {
  const out = new Set<string>(['127.0.0.1', '::1']);
  for (const list of Object.values(os.networkInterfaces())) for (const i of list ?? []) out.add(i.address.replace(/%.*$/, ''));
  return [...out];
}

/** SANs for a manager listening on `listen` and advertised at `advertise` (host:port each). */
export function managerSans(listen: string, advertise: string | undefined): SubjectAltNames {
  const hostOf = (hp: string) => hp.slice(0, hp.lastIndexOf(':')).replace(/^\[|\]$/g, '');
  const hosts = [hostOf(listen), ...(advertise ? [hostOf(advertise)] : [])];
  const ips = new Set<string>(['127.0.0.1']);
  const dns = new Set<string>([MANAGER_SERVER_NAME, 'localhost', os.hostname()]);
  for (const h of hosts) {
    if (h === '0.0.0.0' || h === '::' || h === '') for (const a of localAddresses()) ips.add(a);
    else if (isIP(h)) ips.add(h);
    else dns.add(h);
  }
  return { ips: [...ips], dns: [...dns] };
}

/** The admin bundle is (re)written when absent or past half its life (each manager start checks). */
function adminBundleDue(certFile: string): boolean {
  try {
    const { notBefore, notAfter } = certValidity(fs.readFileSync(certFile, 'utf8'));
    return Date.now() > notBefore + (notAfter - notBefore) / 2;
  } catch {
    return true;
  }
}

export async function bootstrapManagerIdentity(o: BootstrapOptions): Promise<ManagerIdentity> {
  const caExists = !!(await o.store.get('ca', 'root'));
  const kek = await obtainKek(o, caExists);
  const ca = await ClusterCa.loadOrCreate({ store: o.store, kek, cluster: o.clusterId, revoked: o.cache.revoked, defaultTtl: o.defaultTtl });
  const tlsDir = path.join(o.dataDir, TLS_SUBDIR);
  const reissue = async () => {
    const { keyPem, csrPem } = await createKeyAndCsr(o.managerId);
    const issued = await ca.issue(csrPem, { id: o.managerId, role: 'manager' }, undefined, o.sans);
    const bundle = { ca: issued.ca, cert: issued.cert, key: keyPem };
    writeBundle(tlsDir, bundle);
    return { bundle, notBefore: Date.now(), notAfter: issued.notAfter };
  };
  const own = await reissue();
  const adminDir = path.join(o.dataDir, ADMIN_SUBDIR);
  if (adminBundleDue(path.join(adminDir, 'cert.pem'))) {
    const { keyPem, csrPem } = await createKeyAndCsr(ADMIN_ID);
    // A user certificate: the default lifetime, not the (possibly short) node lifetime of the cluster.
    const issued = await ca.issue(csrPem, { id: ADMIN_ID, role: 'admin' }, DEFAULT_CERT_EXPIRY_MS);
    writeBundle(adminDir, { ca: issued.ca, cert: issued.cert, key: keyPem });
    o.log.info('admin client bundle written', { dir: adminDir });
  }
  return { ca, kek, ...own, reissue, createdCa: ca.created };
}
