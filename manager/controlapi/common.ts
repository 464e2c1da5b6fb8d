// What every Control API noun shares: its dependencies, reads served from
// the StateCache once it has caught up with the store (ReadBarrier),
// lookups by id, name or unique id prefix, and the retry of a
// read-modify-write that lost a race.
import * as grpc from '@grpc/grpc-js';
import type { Network, Node, Service, Task } from '../../proto/mod';
import type { ClientSecurity } from '../../proto/client';
import type { Logger } from '../../common/logger';
import { ApiError, unaryWith } from '../api';
import type { CertIssuer } from '../ca/issuer';
import type { ManagerObserver } from '../hooks';
import type { StateCache } from '../state/cache';
import { ConflictError, StoreUnavailableError, UPDATE_ATTEMPTS, type Store } from '../store/store';
import type { KeyRing } from '../crypto/kek';

export interface ControlDeps {
  store: Store;
  cache: StateCache;
  managerId: string;
  tokensFile: string;
  /** This manager's own state (data dir, key file): never a bind mount source. */
  bindDenied?: string[];
  natsUrl: () => string;
  log: Logger;
  observer: ManagerObserver;
  /** The cluster CA that signs user certificates (manager/ca/); none: CreateUser answers FAILED_PRECONDITION. */
  issuer?: CertIssuer;
  /** The key-encryption key: seals secret and config values (manager/crypto/values.ts). */
  kek: KeyRing;
  /** How this manager calls its peers (its own certificate: mtls). */
  peerSecurity: ClientSecurity;
  /** The cluster CA (absent in harnesses without one): shown by GetClusterInfo, pinned by new tokens, revokes removed nodes. */
  ca?: ControlCa;
  /** What a node's tasks use now (manager/observe/node-usage.ts); absent or undefined: unknown. */
  nodeUsage?: (nodeId: string) => { receivedAt: number; cpuCores: number; memoryBytes: number } | undefined;
}

/** What the Control API needs of the cluster CA (manager/ca/ca.ts). */
export interface ControlCa {
  caPem: string;
  fingerprint: string;
  notAfter: number;
  revoke(id: string): Promise<void>;
}

/**
 * How long a read waits for the cache to reach the store's revision before
 * answering UNAVAILABLE: under a burst of large writes on a loaded machine
 * the watch can trail etcd by seconds (a fresh-clone CI run of
 * pathological.int saw more than 5 s with 200 maximal tasks landing); a late
 * answer within the caller's deadline (the CLI's is 15 s) beats an error.
 */
export const CACHE_CATCH_UP_MS = 10_000;

/**
 * Reads from the cache, as fresh as a read of the store. Before a read the
 * cache must reach a revision taken after the read arrived: the store's
 * syncRevision (one small write), shared by every read that arrives while
 * it is in flight (so a burst of reads costs one round trip, not one range
 * of the whole prefix each), and at least the revision of this manager's
 * own last write (read-your-writes without a round trip).
 */
export class ReadBarrier {
  private lastWrite = 0;
  private inflight: Promise<number> | undefined;
  private queued: Promise<number> | undefined;

  constructor(
    private readonly store: Store,
    private readonly cache: StateCache,
    private readonly who: string,
  ) {}

  /** This manager wrote at `rev`: its next reads see it. */
  wrote(rev: number): void {
    if (rev > this.lastWrite) this.lastWrite = rev;
  }

  /** Waits for the cache to reflect `rev` (a write this manager just made). */
  async seen(rev: number): Promise<void> {
    this.wrote(rev);
    if (!(await this.cache.waitFor(rev, CACHE_CATCH_UP_MS))) throw new StoreUnavailableError('the state cache is behind the store');
  }

  /** Resolves once the cache holds every write completed before the call. */
  async fresh(): Promise<void> {
    const rev = Math.max(await this.syncRevision(), this.lastWrite);
    await this.seen(rev);
  }

  private syncRevision(): Promise<number> {
    if (!this.inflight) {
      const p = this.store.syncRevision(this.who).finally(() => {
        if (this.inflight === p) this.inflight = undefined;
      });
      this.inflight = p;
      return p;
    }
    // The sync in flight started before this read: the next one, shared by all who wait for it.
    this.queued ??= this.inflight
      .catch(() => 0)
      .then(() => {
        this.queued = undefined;
        return this.syncRevision();
      });
    return this.queued;
  }
}

export interface Ctx extends ControlDeps {
  reads: ReadBarrier;
  unary: ReturnType<typeof unaryWith>;
  source: string;
}

export function context(d: ControlDeps): Ctx {
  return {
    ...d,
    reads: new ReadBarrier(d.store, d.cache, d.managerId),
    unary: unaryWith((m, code, s) => d.observer.controlCall(m, code, s), d.log),
    source: `manager/${d.managerId}`,
  };
}

/**
 * Runs a read-modify-write again when another writer (the leader: update
 * status, autoscaler; the dispatcher: node status) got in between, unless
 * the caller pinned the version it read: then the conflict is theirs to see.
 */
export async function retryConflicts<T>(pinned: boolean, fn: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (e) {
      if (!(e instanceof ConflictError) || pinned || attempt >= UPDATE_ATTEMPTS) throw e;
    }
  }
}

/** One object by exact id, else by name, else by a unique id prefix. */
function lookup<T extends { id: string }>(all: Iterable<T>, ref: string, byId: (id: string) => T | undefined, name: (x: T) => string | undefined): T | undefined {
  const exact = byId(ref);
  if (exact) return exact;
  const prefixed: T[] = [];
  for (const x of all) {
    if (name(x) === ref) return x;
    if (x.id.startsWith(ref)) prefixed.push(x);
  }
  return ref && prefixed.length === 1 ? prefixed[0] : undefined;
}

export function findService(cache: StateCache, ref: string): Service {
  const s = lookup(cache.services.values(), ref, (id) => cache.services.get(id), (x) => x.spec?.name);
  if (!s) throw new ApiError(grpc.status.NOT_FOUND, `service "${ref}" not found`);
  return s;
}

export function findNode(cache: StateCache, ref: string): Node {
  const n = lookup(cache.nodes.values(), ref, (id) => cache.nodes.get(id), (x) => x.description?.hostname);
  if (!n) throw new ApiError(grpc.status.NOT_FOUND, `node "${ref}" not found`);
  return n;
}

export function findNetwork(cache: StateCache, ref: string): Network {
  const n = lookup(cache.networks.values(), ref, (id) => cache.networks.get(id), (x) => x.spec?.name);
  if (!n) throw new ApiError(grpc.status.NOT_FOUND, `network "${ref}" not found`);
  return n;
}

export function findTask(cache: StateCache, ref: string): Task {
  // By exact id, else the first task whose id starts so (task ids are random: a short prefix is nearly always unique).
  let t = cache.tasks.get(ref);
  if (!t && ref) for (const x of cache.tasks.values()) if (x.id.startsWith(ref)) { t = x; break; }
  if (!t) throw new ApiError(grpc.status.NOT_FOUND, `task "${ref}" not found`);
  return t;
}

/** A node as the Control API shows it: never its session id or lease (they are the node's credentials with the dispatcher). */
export function publicNode(n: Node): Node {
  return { ...n, sessionId: '', leaseId: 0 };
}

// ---- pages (control.proto: page_size, page_token, next_page_token) ----------------
/** Items per page when the caller gives no page_size. */
export const DEFAULT_PAGE_SIZE = 1_000;
/** The largest page_size honoured. */
export const MAX_PAGE_SIZE = 10_000;
/** A page is cut once its items pass about this many bytes as JSON (a client reads 4 MiB by default). */
export const PAGE_MAX_BYTES = 2 * 1024 * 1024;
const TOKEN_MAX_CHARS = 2048;

/** A sort key: the list's order, ending with the object's id so that it is total. */
export type PageKey = (string | number)[];

function compareKeys(a: PageKey, b: PageKey): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    const x = a[i];
    const y = b[i];
    if (x === y) continue;
    if (typeof x === 'number' && typeof y === 'number') return x - y;
    return String(x) < String(y) ? -1 : 1;
  }
  return a.length - b.length;
}

function decodeToken(token: string, width: number | undefined): PageKey {
  const bad = () => new ApiError(grpc.status.INVALID_ARGUMENT, 'pageToken: not a token this API returned (ask again without it)');
  if (token.length > TOKEN_MAX_CHARS) throw bad();
  let key: unknown;
  try {
    key = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
  } catch {
    throw bad();
  }
  if (!Array.isArray(key) || key.length > 8 || (width !== undefined && key.length !== width) || !key.every((k) => typeof k === 'string' || typeof k === 'number')) throw bad();
  return key as PageKey;
}

/**
 * One page of `items` in the order of `keyOf`: those after the token's key,
 * at most page_size (default DEFAULT_PAGE_SIZE, at most MAX_PAGE_SIZE) and
 * about PAGE_MAX_BYTES (at least one item), with the token of the next page
 * when more follow. Keyed, not offset: a write between pages shifts nothing.
 */
export function paged<T>(items: Iterable<T>, req: { pageSize?: number; pageToken?: string }, keyOf: (x: T) => PageKey): { items: T[]; nextPageToken: string } {
  const size = Math.min(MAX_PAGE_SIZE, Number(req.pageSize) > 0 ? Math.floor(Number(req.pageSize)) : DEFAULT_PAGE_SIZE);
  let keyed = [...items].map((x) => ({ x, k: keyOf(x) }));
  if (req.pageToken) {
    const after = decodeToken(req.pageToken, keyed[0]?.k.length);
    keyed = keyed.filter((e) => compareKeys(e.k, after) > 0);
  }
  keyed.sort((a, b) => compareKeys(a.k, b.k));
  const out: T[] = [];
  let bytes = 0;
  for (const e of keyed) {
    if (out.length >= size || (out.length && bytes >= PAGE_MAX_BYTES)) break;
    out.push(e.x);
    bytes += JSON.stringify(e.x).length;
  }
  const more = out.length < keyed.length;
  return { items: out, nextPageToken: more ? Buffer.from(JSON.stringify(keyed[out.length - 1].k)).toString('base64url') : '' };
}
