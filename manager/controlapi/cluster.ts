// Control API: the cluster (its info, and the join tokens). etcd keeps only
// the tokens' hashes; the plain tokens live in the data dir of the manager
// that made them, and a manager without them asks its peers.
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { connectControl } from '../../proto/client';
import type { Cluster, ControlHandlers } from '../../proto/mod';
import { ApiError, grpcError } from '../api';
import { newId } from '../ids';
import type { Ctx } from './common';

export const sha256 = (s: string) => crypto.createHash('sha256').update(s).digest('hex');

export function makeToken(clusterId: string): string {
  return `SWMTKN-1-${clusterId}-${crypto.randomBytes(16).toString('hex')}`;
}

/** How long a manager waits for a peer's tokens before trying the next one. */
const PEER_TOKENS_DEADLINE_MS = 2000;
/** How long a manager without the tokens keeps asking its peers (one that has just started registers within it). */
const PEER_TOKENS_WAIT_MS = 5_000;
const PEER_TOKENS_RETRY_MS = 250;

/** Marks a GetJoinTokens asked on behalf of another manager (it is not forwarded again). */
const FORWARDED = 'convoy-forwarded';

type Tokens = { worker: string; manager: string };
type Handlers = Pick<ControlHandlers, 'GetClusterInfo' | 'GetJoinTokens' | 'RotateJoinToken'>;

export function clusterHandlers(c: Ctx): Handlers {
  const { store, cache, reads, unary, log } = c;
  const readTokens = (): Tokens | undefined => (fs.existsSync(c.tokensFile) ? (JSON.parse(fs.readFileSync(c.tokensFile, 'utf8')) as Tokens) : undefined);

  const askPeers = async (): Promise<Tokens | undefined> => {
    // The cache must know every manager registered before this call.
    await reads.fresh();
    for (const [id, addr] of cache.managers) {
      if (id === c.managerId) continue;
      const peer = connectControl(addr, { deadlineMs: PEER_TOKENS_DEADLINE_MS, metadata: { [FORWARDED]: '1' } });
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
  const fromPeers = async (): Promise<Tokens> => {
    // Managers that start together: the one that initialised the cluster (and holds the tokens)
    // may answer calls a moment before its registration lands. Ask again for a bounded time.
    const until = Date.now() + PEER_TOKENS_WAIT_MS;
    for (;;) {
      const t = await askPeers();
      if (t) return t;
      if (Date.now() >= until) break;
      await new Promise((r) => setTimeout(r, PEER_TOKENS_RETRY_MS));
    }
    throw new ApiError(grpc.status.FAILED_PRECONDITION, 'no reachable manager holds the join tokens (etcd keeps only their hashes): rotate them to get new ones');
  };

  return {
    GetClusterInfo: unary('GetClusterInfo', async () => {
      const [, leader] = await Promise.all([reads.fresh(), store.leader()]);
      return {
        cluster: cache.cluster ?? null,
        managers: [...cache.managers].map(([id, addr]) => ({ id, addr, leader: leader === id })),
        nodes: cache.nodes.size,
        services: cache.services.size,
        tasks: cache.tasks.size,
        natsUrl: c.natsUrl(),
      };
    }),
    GetJoinTokens(call, cb) {
      const own = readTokens();
      if (own) return cb(null, own);
      if (call.metadata.get(FORWARDED).length) return cb(grpcError(new ApiError(grpc.status.NOT_FOUND, 'no join tokens here')));
      fromPeers().then(
        (r) => cb(null, r),
        (e) => cb(grpcError(e, log)),
      );
    },
    RotateJoinToken: unary('RotateJoinToken', async (req: { worker: boolean; manager: boolean }) => {
      const old = readTokens() ?? { worker: '', manager: '' };
      const both = !req.worker && !req.manager;
      const tokens = { worker: req.worker || both ? makeToken(newId()) : old.worker, manager: req.manager || both ? makeToken(newId()) : old.manager };
      const written = await store.update<Cluster>('cluster', 'default', (cur) => {
        if (!cur) throw new ApiError(grpc.status.UNAVAILABLE, 'cluster not initialised');
        return {
          ...cur,
          workerTokenHash: req.worker || both ? sha256(tokens.worker) : cur.workerTokenHash,
          managerTokenHash: req.manager || both ? sha256(tokens.manager) : cur.managerTokenHash,
        };
      });
      reads.wrote(written?.meta?.version ?? 0);
      fs.writeFileSync(c.tokensFile, JSON.stringify(tokens), { mode: 0o600 });
      return tokens;
    }),
  };
}
