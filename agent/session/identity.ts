// The agent's identity (docs/security.md): its TLS bundle in
// <stateDir>/tls (ca.pem, cert.pem, key.pem; 0700/0600). A node joins once,
// with a token, over the CA-pinned exchange of proto/join.ts; from then on it
// authenticates only with its certificate (a restarted agent reuses it, and
// needs no token), and renews it at 50-80% of its lifetime.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { certValidity } from '../../common/csr';
import { identityFromCert, readBundle, writeBundle, type TlsBundle } from '../../common/identity';
import type { Logger } from '../../common/logger';
import { JoinError, joinCluster } from '../../proto/join';
import { JoinRefusedError } from './errors';

export const TLS_SUBDIR = 'tls';
/** How long a join keeps trying a manager whose join listener does not answer yet. */
export const JOIN_RETRY_FOR_MS = 60_000;
const JOIN_RETRY_MS = 1_000;

export interface NodeIdentity {
  nodeId: string;
  role: string;
  bundle: TlsBundle;
  notBefore: number;
  notAfter: number;
}

export function tlsDirOf(stateDir: string): string {
  return path.join(stateDir, TLS_SUBDIR);
}

/**
 * The identity a bundle names. `receivedAt`: when the certificate arrived
 * (its life for renewal counts from then: the CA back-dates notBefore a
 * minute for skewed clocks, which on a short lifetime would put the 50-80%
 * point in the past).
 */
export function identityOfBundle(bundle: TlsBundle, receivedAt = Date.now()): NodeIdentity {
  const who = identityFromCert(bundle.cert);
  if (!who) throw new JoinRefusedError('the node certificate names no Convoy identity');
  const v = certValidity(bundle.cert);
  return { nodeId: who.id, role: who.role, bundle, notBefore: Math.max(v.notBefore, Math.min(receivedAt, v.notAfter)), notAfter: v.notAfter };
}

/** The bundle in the state dir if there is a valid one, else a join with the token. */
export async function loadOrJoin(o: { stateDir: string; joinToken?: string; joinAddr: string; log: Logger; signal?: AbortSignal }): Promise<NodeIdentity> {
  const dir = tlsDirOf(o.stateDir);
  if (fs.existsSync(path.join(dir, 'cert.pem'))) {
    const id = identityOfBundle(readBundle(dir), fs.statSync(path.join(dir, 'cert.pem')).mtimeMs);
    if (id.notAfter > Date.now()) return id;
    o.log.warn('node certificate expired; joining again', { dir });
    if (!o.joinToken) throw new JoinRefusedError(`the node certificate in ${dir} expired: join again with a token (--token)`);
  } else if (!o.joinToken) {
    throw new JoinRefusedError(`no node certificate in ${dir} and no join token: give --token (convoy cluster join-token worker)`);
  }
  const until = Date.now() + JOIN_RETRY_FOR_MS;
  for (;;) {
    try {
      const r = await joinCluster({ joinAddr: o.joinAddr, token: o.joinToken });
      writeBundle(dir, r.bundle);
      o.log.info('joined the cluster', { 'node.id': r.nodeId, role: r.role });
      return identityOfBundle(r.bundle);
    } catch (e) {
      if (e instanceof JoinError && e.fatal) throw new JoinRefusedError(e.message, e);
      if (Date.now() >= until || o.signal?.aborted) throw new JoinRefusedError(e instanceof Error ? e.message : String(e), e);
      o.log.warn('join failed, retrying', { err: e instanceof Error ? e.message : String(e) });
      await new Promise((r) => setTimeout(r, JOIN_RETRY_MS));
    }
  }
}

export function saveBundle(stateDir: string, bundle: TlsBundle): void {
  writeBundle(tlsDirOf(stateDir), bundle);
}
