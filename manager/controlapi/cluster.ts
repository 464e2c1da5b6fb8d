// Control API: the cluster (its info, and the join tokens). etcd keeps only
// the tokens' hashes; the plain tokens live in the data dir of the manager
// that made them, and a manager without them asks its peers.
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import { makeJoinToken, tokenSecretHash } from '../../common/join-token';
import * as grpc from '@grpc/grpc-js';
import { connectControl } from '../../proto/client';
import type { Cluster, ControlHandlers } from '../../proto/mod';
import type { Identity } from '../../common/identity';
import { ApiError, grpcError } from '../api';
import { callerOf, forwardedMetadata } from '../auth/authorize';
import { checkAllowEntry } from '../../common/bind-policy';
import { PATH_MAX_BYTES } from '../spec/limits';
import { CONTROL_API_VERSION, MAX_CERT_EXPIRY_MS, MIN_CERT_EXPIRY_MS } from '../../proto/defaults';
import { convoyVersion } from '../../common/version';
import type { Ctx } from './common';
import { countSealed, retiredKeks, type SealedCount } from '../crypto/rewrap';
import type { CaRecord } from '../store/store';

export const sha256 = (s: string) => crypto.createHash('sha256').update(s).digest('hex');

/** A digest for harnesses with no CA (their tokens pin nothing real). */
const NO_CA_DIGEST = '0'.repeat(64);

/** A new join token pinning `caDigest` (common/join-token.ts); etcd keeps `tokenSecretHash` of it. */
export function makeToken(caDigest: string): string {
  return makeJoinToken(caDigest);
}
export { tokenSecretHash };

/** How long a manager waits for a peer's tokens before trying the next one. */
const PEER_TOKENS_DEADLINE_MS = 2000;
/** How long a manager without the tokens keeps asking its peers (one that has just started registers within it). */
const PEER_TOKENS_WAIT_MS = 5_000;
const PEER_TOKENS_RETRY_MS = 250;

/** Marks a GetJoinTokens asked on behalf of another manager (it is not forwarded again). */
const FORWARDED = 'convoy-forwarded';

type Tokens = { worker: string; manager: string };
type Handlers = Pick<ControlHandlers, 'GetClusterInfo' | 'GetVersion' | 'UpdateCluster' | 'GetJoinTokens' | 'RotateJoinToken'>;

/** At most this many bind allow prefixes (each is compared with every bind mount source of every spec). */
export const BIND_ALLOW_MAX = 64;

/** The allow list an UpdateCluster asks for, normalised; every error names its entry. */
export function checkBindAllow(list: readonly string[]): string[] {
  if (list.length > BIND_ALLOW_MAX) throw new ApiError(grpc.status.INVALID_ARGUMENT, `bindAllow: at most ${BIND_ALLOW_MAX} entries (got ${list.length})`);
  const out: string[] = [];
  const errs: string[] = [];
  list.forEach((e, i) => {
    if (typeof e !== 'string' || e.length > PATH_MAX_BYTES) return errs.push(`bindAllow[${i}]: must be a path of at most ${PATH_MAX_BYTES} bytes`);
    const v = checkAllowEntry(e);
    if (!v.ok) return errs.push(`bindAllow[${i}]: ${v.reason}`);
    if (!out.includes(v.path)) out.push(v.path);
    return undefined;
  });
  if (errs.length) throw new ApiError(grpc.status.INVALID_ARGUMENT, errs.join('; '));
  return out;
}

export function clusterHandlers(c: Ctx): Handlers {
  const { store, cache, reads, unary, log } = c;

  const readTokens = (): Tokens | undefined => (fs.existsSync(c.tokensFile) ? (JSON.parse(fs.readFileSync(c.tokensFile, 'utf8')) as Tokens) : undefined);

  // The peer authorizes the user this call is for, not this manager (manager/auth/authorize.ts).
  const askPeers = async (who: Identity | undefined): Promise<Tokens | undefined> => {
    // The cache must know every manager registered before this call.
    await reads.fresh();
    for (const [id, addr] of cache.managers) {
      if (id === c.managerId) continue;
      const peer = connectControl(addr, { security: c.peerSecurity, deadlineMs: PEER_TOKENS_DEADLINE_MS, metadata: { [FORWARDED]: '1', ...(who ? forwardedMetadata(who) : {}) } });
      try {
        const { worker, manager } = await peer.getJoinTokens({});
        return { worker, manager };
      } catch {
        /* next peer */
      } finally {
        peer.close();
      }
    }
    return undefined;
  };
  const fromPeers = async (who: Identity | undefined): Promise<Tokens> => {
    // Managers that start together: the one that initialised the cluster (and holds the tokens)
    // may answer calls a moment before its registration lands. Ask again for a bounded time.
    const until = Date.now() + PEER_TOKENS_WAIT_MS;
    for (;;) {
      const t = await askPeers(who);
      if (t) return t;
      if (Date.now() >= until) break;
      await new Promise((r) => setTimeout(r, PEER_TOKENS_RETRY_MS));
    }
    throw new ApiError(grpc.status.FAILED_PRECONDITION, 'no reachable manager holds the join tokens (etcd keeps only their hashes): rotate them to get new ones');
  };

  // The sealed-key count trial-decrypts one small key per secret and config: done again only when
  // they (the cache's revision) or the CA record changed, not on every GetClusterInfo (`convoy
  // events` and `logs` call it for the NATS address). This manager's key ring is fixed for its life.
  let sealedMemo: { revision: number; caKey: string; count: SealedCount } | undefined;
  const sealedCount = (caRecord: CaRecord | undefined): SealedCount => {
    const caKey = caRecord?.sealedKey ?? '';
    if (sealedMemo?.revision !== cache.revision || sealedMemo.caKey !== caKey) {
      const files = [...[...cache.secrets.values()].map((obj) => ({ kind: 'secrets' as const, obj })), ...[...cache.configs.values()].map((obj) => ({ kind: 'configs' as const, obj }))];
      sealedMemo = { revision: cache.revision, caKey, count: countSealed(c.kek, caRecord, files) };
    }
    return sealedMemo.count;
  };

  const info = async () => {
    const [, leader, caRecord, retired] = await Promise.all([reads.fresh(), store.leader(), store.get<CaRecord>('ca', 'root'), retiredKeks(store)]);
    const sealed = sealedCount(caRecord);
    return {
      cluster: cache.cluster ?? null,
      managers: [...cache.managers].map(([id, addr]) => ({ id, addr, leader: leader === id })),
      nodes: cache.nodes.size,
      services: cache.services.size,
      tasks: cache.tasks.size,
      natsUrl: c.natsUrl(),
      caCert: c.ca?.caPem ?? '',
      caFingerprint: c.ca?.fingerprint ?? '',
      caNotAfter: c.ca?.notAfter ?? 0,
      kekId: c.kek.id,
      sealedKeys: sealed.total,
      sealedKeysCurrent: sealed.current,
      sealedKeysUnopenable: sealed.unopenable,
      kekIds: c.kek.ids,
      kekRetired: retired,
    };
  };

  return {
    GetClusterInfo: unary('GetClusterInfo', info),
    GetVersion: unary('GetVersion', async () => ({ version: convoyVersion(), apiVersion: CONTROL_API_VERSION, managerId: c.managerId, leader: (await store.leader()) === c.managerId, kekId: c.kek.id })),
    UpdateCluster: unary('UpdateCluster', async (req: { bindAllow: string[]; setBindAllow: boolean; certExpiryMs: number; allowPrivileged?: boolean; setAllowPrivileged?: boolean }) => {
      const ms = Number(req.certExpiryMs ?? 0);
      const priv = req.setAllowPrivileged ? { allowPrivileged: !!req.allowPrivileged } : {};
      if (!req.setBindAllow && !ms && !req.setAllowPrivileged) throw new ApiError(grpc.status.INVALID_ARGUMENT, 'nothing to update (give --bind-allow, --no-bind-allow, --allow-privileged, --no-allow-privileged or --cert-expiry)');
      if (ms && (ms < MIN_CERT_EXPIRY_MS || ms > MAX_CERT_EXPIRY_MS)) throw new ApiError(grpc.status.INVALID_ARGUMENT, `cert_expiry: ${ms} ms is outside ${MIN_CERT_EXPIRY_MS / 1000} s .. 10 years`);
      const bindAllow = req.setBindAllow ? checkBindAllow(req.bindAllow ?? []) : undefined;
      const written = await store.update<Cluster>('cluster', 'default', (cur) => {
        if (!cur) throw new ApiError(grpc.status.UNAVAILABLE, 'cluster not initialised');
        return { ...cur, ...(bindAllow ? { bindAllow } : {}), ...(ms ? { certExpiryMs: ms } : {}), ...priv };
      });
      reads.wrote(written?.meta?.version ?? 0);
      log.info('cluster updated', { ...(bindAllow ? { 'cluster.bind_allow': bindAllow.join(',') } : {}), ...(ms ? { 'cluster.cert_expiry_ms': ms } : {}), ...(req.setAllowPrivileged ? { 'cluster.allow_privileged': !!req.allowPrivileged } : {}) });
      return info();
    }),
    GetJoinTokens(call, cb) {
      const own = readTokens();
      if (own) return cb(null, own);
      if (call.metadata.get(FORWARDED).length) return cb(grpcError(new ApiError(grpc.status.NOT_FOUND, 'no join tokens here')));
      fromPeers(callerOf(call)?.identity).then(
        (r) => cb(null, r),
        (e) => cb(grpcError(e, log)),
      );
    },
    RotateJoinToken: unary('RotateJoinToken', async (req: { worker: boolean; manager: boolean }) => {
      const old = readTokens() ?? { worker: '', manager: '' };
      const both = !req.worker && !req.manager;
      const digest = c.ca?.fingerprint ?? NO_CA_DIGEST;
      const tokens = { worker: req.worker || both ? makeToken(digest) : old.worker, manager: req.manager || both ? makeToken(digest) : old.manager };
      const written = await store.update<Cluster>('cluster', 'default', (cur) => {
        if (!cur) throw new ApiError(grpc.status.UNAVAILABLE, 'cluster not initialised');
        return {
          ...cur,
          workerTokenHash: req.worker || both ? tokenSecretHash(tokens.worker) : cur.workerTokenHash,
          managerTokenHash: req.manager || both ? tokenSecretHash(tokens.manager) : cur.managerTokenHash,
        };
      });
      reads.wrote(written?.meta?.version ?? 0);
      fs.writeFileSync(c.tokensFile, JSON.stringify(tokens), { mode: 0o600 });
      return tokens;
    }),
  };
}
