// The Store on etcd: the only code of the manager that imports etcd3 (with
// the embedded etcd launcher and the election worker, ./election-worker.ts,
// which runs the campaigns and the manager registration on a thread of
// their own). Every etcd failure leaves here as one of the typed errors of
// ./errors.ts.
import { ClientClosedError, Etcd3, EtcdLeaseInvalidError, isRecoverableError, type IKeyValue, type IOptions, type Lease as EtcdLease, type Watcher } from 'etcd3';
import { handleWhen, isBrokenCircuitError, noop, retry } from 'cockatiel';
import type { TlsBundle } from '../../common/identity';
import type { Service } from '../../proto/mod';
import { ElectionWorker } from './election';
import { ConflictError, LeaseNotFoundError, STORE_FULL_MESSAGE, StoreFullError, StoreUnavailableError } from './errors';
import {
  DEFAULT_MAX_TXN_OPS,
  ELECTION,
  MAX_TXN_BYTES,
  PREFIX,
  decodeObject,
  encodeObject,
  guardOf,
  key,
  nameKey,
  updateWithRetry,
  type BatchOptions,
  type BatchResult,
  type Campaign,
  type CampaignEvent,
  type EtcdObserver,
  type KeyValue,
  type Kind,
  type Lease,
  type Store,
  type StoreMaintenance,
  type StoreStatus,
  type StoreWatch,
  type Stored,
  type Versioned,
  type Write,
} from './store';

/** Transactions of one batch in flight at once. */
const BATCH_CONCURRENCY = 8;
/**
 * Rounds of one chunk: each failed round names at least one conflicting
 * write (its else branch reads the chunk's keys in the same transaction) and
 * commits the rest again; a chunk still failing after this many rounds
 * returns what is left as conflicts.
 */
const CHUNK_ROUNDS = 4;
/** BatchResult.error of writes a batch did not send because its caller called them off. */
export const STOPPED = 'stopped before it was sent';
/** Keys per page of `load` (a page stays well under gRPC's message limit). */
const LOAD_PAGE = 2000;

/** A turn of the event loop (timers and I/O run; a microtask chain would not yield). */
const immediate = () => new Promise<void>((r) => setImmediate(r));

export interface EtcdStoreOptions {
  /** Main-thread silence (ms) after which the election worker resigns the lead (./election.ts). */
  watchdogMs?: number;
  /**
   * TLS to etcd: the CA that signed etcd's server certificate and this
   * manager's client certificate and key (the embedded etcd's `clientTls`,
   * or --etcd-cacert/--etcd-cert/--etcd-key). Required for https://
   * endpoints; without it only http:// endpoints are dialled, which
   * startManager refuses (docs/etcd.md).
   */
  tls?: TlsBundle;
}

/** etcd3's client options for `endpoints`, with TLS when given. */
export function etcdClientOptions(endpoints: string[], tls?: TlsBundle): IOptions {
  const o: IOptions = { hosts: endpoints, faultHandling: faultHandling() };
  if (tls) o.credentials = { rootCertificate: Buffer.from(tls.ca), certChain: Buffer.from(tls.cert), privateKey: Buffer.from(tls.key) };
  return o;
}

const toKv = (kv: IKeyValue): KeyValue => ({ key: kv.key.toString(), value: kv.value.toString(), modRevision: Number(kv.mod_revision) });

/** What etcd says when its NOSPACE alarm is raised ("etcdserver: mvcc: database space exceeded"). */
const NOSPACE_RE = /database space exceeded|NOSPACE/i;

/** etcd3's errors as the store's: a lapsed lease, a full store, or etcd out of reach / refusing for now. */
export function storeError(e: unknown): unknown {
  if (e instanceof ConflictError || e instanceof StoreUnavailableError || e instanceof LeaseNotFoundError || e instanceof StoreFullError) return e;
  // Before the recoverable check: etcd answers NOSPACE with RESOURCE_EXHAUSTED, which etcd3 may call
  // recoverable, but retrying does not help until space is reclaimed.
  if (e instanceof Error && NOSPACE_RE.test(e.message)) return new StoreFullError(`${STORE_FULL_MESSAGE} (etcd: ${e.message})`, e);
  if (isBrokenCircuitError(e)) return new StoreUnavailableError(`etcd out of reach for now (${e.message})`, e);
  if (e instanceof EtcdLeaseInvalidError) return new LeaseNotFoundError(/\d+/.exec(e.message)?.[0] ?? '', e);
  // Out of reach, deadline, too many requests, leader change, closed client: "try again later"
  // (etcd3 marks these recoverable). Anything else (a request etcd refuses as malformed or too
  // large) is left as is: a bug, INTERNAL.
  if ((e instanceof Error && isRecoverableError(e)) || e instanceof ClientClosedError) {
    return new StoreUnavailableError(`etcd: ${e.message}`, e);
  }
  return e;
}

/**
 * etcd3's fault handling, changed twice. NOSPACE is neither retried nor
 * counted: etcd3 calls RESOURCE_EXHAUSTED recoverable, and retrying does not
 * help until space is reclaimed. And no per-host circuit breaker: etcd3's
 * default opens one for 5 s after 3 recoverable failures in a row, which on
 * one endpoint turns a burst of "too many requests" (a 100,000-task commit)
 * into 5 s in which every request fails at once: heartbeats, status reports
 * and reads. Sessions then lapsed and 1,000 agents re-registered (bench:schedule
 * stuck at 82,029 of 100,000). Retries with etcd3's backoff remain.
 */
export function faultHandling() {
  const transient = handleWhen((e) => isRecoverableError(e) && !NOSPACE_RE.test(e.message));
  return {
    global: retry(transient, { maxAttempts: 3 }),
    host: () => noop,
  };
}

/** etcd cancels a watch from a compacted revision with an empty reason: say what it means. */
function watchLost(e: unknown, fromRevision: number): unknown {
  if (e instanceof Error && /Watcher canceled/.test(e.message)) {
    return new StoreUnavailableError(`etcd canceled the watch from revision ${fromRevision + 1} (compacted past it, or etcd lost it): reload`, e);
  }
  return storeError(e);
}

export class EtcdStore implements Store {
  readonly maintenance: StoreMaintenance;
  /** The campaigns and the manager registration, on a thread of their own (started on first use). */
  private election: ElectionWorker | undefined;

  /**
   * `endpoints`: where the election worker connects its own client. A store
   * made on a bare client (none given) campaigns on that client, on the
   * main thread.
   */
  constructor(
    readonly client: Etcd3,
    private readonly maxTxnOps = DEFAULT_MAX_TXN_OPS,
    private readonly observe: EtcdObserver = () => undefined,
    private readonly endpoints?: string[],
    private readonly opts: EtcdStoreOptions = {},
  ) {
    this.maintenance = new EtcdMaintenance(client, (op, p) => this.timed(op, p));
  }

  /** A store on its own client (closed with the store); its election runs on a worker thread. */
  static connect(endpoints: string[], maxTxnOps = DEFAULT_MAX_TXN_OPS, observe?: EtcdObserver, opts?: EtcdStoreOptions): EtcdStore {
    return new EtcdStore(new Etcd3(etcdClientOptions(endpoints, opts?.tls)), maxTxnOps, observe, endpoints, opts);
  }

  private electionWorker(): ElectionWorker | undefined {
    if (!this.endpoints) return undefined;
    this.election ??= new ElectionWorker(this.endpoints, this.opts.watchdogMs, this.opts.tls);
    return this.election;
  }

  private async timed<T>(op: string, p: Promise<T>): Promise<T> {
    const t0 = process.hrtime.bigint();
    try {
      return await p;
    } catch (e) {
      throw storeError(e);
    } finally {
      this.observe(op, Number(process.hrtime.bigint() - t0) / 1e9);
    }
  }

  async list<T extends Versioned>(kind: Kind): Promise<{ items: T[]; revision: number }> {
    const res = await this.timed('range', this.client.getAll().prefix(`${PREFIX}${kind}/`).exec());
    return { items: res.kvs.map((kv) => decodeObject<T>(toKv(kv))), revision: Number(res.header.revision) };
  }

  async get<T extends Versioned>(kind: Kind, id: string): Promise<T | undefined> {
    const res = await this.timed('get', this.client.get(key(kind, id)).exec());
    return res.kvs.length ? decodeObject<T>(toKv(res.kvs[0])) : undefined;
  }

  async serviceIdByName(name: string): Promise<string | undefined> {
    return (await this.timed('get', this.client.get(nameKey(name)).string())) ?? undefined;
  }

  async aliveNodeIds(): Promise<Set<string>> {
    const keys = await this.timed('range', this.client.getAll().prefix(`${PREFIX}alive/`).keys());
    return new Set(keys.map((k) => k.slice(`${PREFIX}alive/`.length)));
  }

  async createService(svc: Service): Promise<number> {
    const name = svc.spec?.name ?? '';
    const res = await this.timed(
      'txn',
      this.client
        .if(nameKey(name), 'Create', '==', 0)
        .then(this.client.put(nameKey(name)).value(svc.id), this.client.put(key('services', svc.id)).value(encodeObject(svc)))
        .commit(),
    );
    if (!res.succeeded) throw new ConflictError(`service name "${name}" is already in use`);
    return Number(res.header.revision);
  }

  async removeService(svc: Service): Promise<number> {
    const res = await this.timed(
      'txn',
      this.client
        .if(key('services', svc.id), 'Mod', '==', svc.meta?.version ?? 0)
        .then(this.client.delete().key(key('services', svc.id)), this.client.delete().key(nameKey(svc.spec?.name ?? '')))
        .commit(),
    );
    if (!res.succeeded) throw new ConflictError(`service ${svc.id} changed meanwhile; retry`);
    return Number(res.header.revision);
  }

  async put(kind: Kind, obj: Stored, create = false): Promise<number> {
    const res = await this.timed(
      'txn',
      this.client
        .if(key(kind, obj.id), create ? 'Create' : 'Mod', '==', create ? 0 : (obj.meta?.version ?? 0))
        .then(this.client.put(key(kind, obj.id)).value(encodeObject(obj, undefined, kind)))
        .commit(),
    );
    if (!res.succeeded) throw new ConflictError(`${kind} ${obj.id} changed meanwhile; retry`);
    return Number(res.header.revision);
  }

  update<T extends Stored>(kind: Kind, id: string, mutate: (cur: T | undefined) => T | undefined, attempts?: number): Promise<T | undefined> {
    return updateWithRetry<T>(this, kind, id, mutate, attempts);
  }

  /**
   * Chunks under etcd's limits (operations and bytes per request), in
   * flight concurrently. A chunk is one transaction: if every guard holds,
   * its writes; else it reads the chunk's keys, which tells which writes
   * conflicted; those are set aside and the rest go again.
   */
  async batch(writes: Write[], opts: BatchOptions = {}): Promise<BatchResult> {
    // A compare and an op per write: stay under the limit on both.
    const maxOps = Math.max(1, Math.floor(this.maxTxnOps / 2));
    let committed = 0;
    let dropped = 0;
    let revision = 0;
    const conflicts: Write[] = [];
    // Chunks are encoded as the transactions go out, not all up front: 100,000 tasks encode in
    // most of a second, and one synchronous stretch that long starves the election lease's
    // keepalive (2 s TTL) and costs the leadership.
    let pos = 0;
    type Chunk = { ws: Write[]; values: (string | undefined)[] };
    const nextChunk = (): Chunk | undefined => {
      if (pos >= writes.length) return undefined;
      const cur: Chunk = { ws: [], values: [] };
      let bytes = 0;
      while (pos < writes.length) {
        const w = writes[pos];
        const v = w.op === 'delete' ? undefined : encodeObject(w.obj, undefined, w.kind);
        const size = (v?.length ?? 0) + 64;
        if (cur.ws.length && (cur.ws.length >= maxOps || bytes + size > MAX_TXN_BYTES)) break; // w starts the next chunk
        cur.ws.push(w);
        cur.values.push(v);
        bytes += size;
        pos++;
      }
      return cur;
    };
    let firstError: string | undefined;
    let full: StoreFullError | undefined;
    /** The caller called the rest off (not an error of etcd's: reported, never thrown). */
    let stopped = false;
    const one = async (chunk: Chunk) => {
      let { ws, values } = chunk;
      for (let round = 1; ws.length; round++) {
        if (round > CHUNK_ROUNDS) {
          conflicts.push(...ws);
          dropped += ws.length;
          return;
        }
        const guards = ws.map(guardOf);
        let txn = this.client.if(guards[0].key, ws[0].op === 'create' ? 'Create' : 'Mod', '==', guards[0].version);
        for (let i = 1; i < ws.length; i++) txn = txn.and(guards[i].key, ws[i].op === 'create' ? 'Create' : 'Mod', '==', guards[i].version);
        const ops = ws.map((w, i) => (w.op === 'delete' ? this.client.delete().key(guards[i].key) : this.client.put(guards[i].key).value(values[i]!)));
        let res;
        try {
          // Keys only: the revisions tell which guards failed, the values are not needed.
          const reads = guards.map((g) => ({ request_range: { key: Buffer.from(g.key), keys_only: true } }));
          res = await this.timed('txn', txn.then(...ops).else(...reads).commit());
        } catch (e) {
          // etcd refused or lost this chunk (overload, leader change): the others may have landed.
          dropped += ws.length;
          firstError ??= e instanceof Error ? e.message : String(e);
          if (e instanceof StoreFullError) full ??= e;
          return;
        }
        if (res.succeeded) {
          committed += ws.length;
          revision = Math.max(revision, Number(res.header.revision));
          return;
        }
        // Which guards failed, as of the same revision the compare saw.
        const keep: number[] = [];
        ws.forEach((w, i) => {
          const kv = res.responses[i]?.response_range?.kvs?.[0];
          const ok = w.op === 'create' ? !kv : !!kv && Number(kv.mod_revision) === guards[i].version;
          if (ok) keep.push(i);
          else {
            conflicts.push(w);
            dropped++;
          }
        });
        if (keep.length === ws.length) {
          // No guard visibly failed (cannot happen with mod revisions): give the chunk back whole.
          conflicts.push(...ws);
          dropped += ws.length;
          return;
        }
        values = keep.map((i) => values[i]);
        ws = keep.map((i) => ws[i]);
      }
    };
    // A bounded number of transactions in flight: etcd answers "too many requests" beyond its apply backlog.
    await Promise.all(
      Array.from({ length: BATCH_CONCURRENCY }, async () => {
        // A turn of the event loop between chunks: when etcd refuses at once (circuit breaker
        // open) `one` settles in a microtask and the next chunk would be encoded without ever
        // yielding; a whole batch of 100,000 writes would then be one synchronous stretch.
        for (;;) {
          if (opts.proceed && !opts.proceed()) {
            // The caller called it off (the leader lost the lead): what is not sent yet stays unsent.
            if (pos < writes.length) {
              dropped += writes.length - pos;
              stopped = true;
              pos = writes.length;
            }
            return;
          }
          const c = nextChunk();
          if (!c) return;
          await one(c);
          await immediate();
        }
      }),
    );
    // A full store refuses every chunk alike: say so by type, so callers back off instead of retrying.
    if (full && !committed && !conflicts.length) throw full;
    if (firstError && !committed && !conflicts.length) throw new StoreUnavailableError(firstError);
    return { committed, dropped, revision, error: firstError ?? (stopped ? STOPPED : undefined), conflicts };
  }

  async syncRevision(who: string): Promise<number> {
    try {
      const res = await this.timed('put', this.client.put(`${PREFIX}sync/${who}`).value(String(Date.now())).exec());
      return Number(res.header?.revision);
    } catch (e) {
      // A full etcd refuses this write too, and every other: there is no write of the caller's to
      // wait for, so reads answer from the cache as it is (they must keep working under NOSPACE).
      if (e instanceof StoreFullError) return 0;
      throw e;
    }
  }

  async load(onKv: (kv: KeyValue) => void): Promise<number> {
    const end = PREFIX.slice(0, -1) + String.fromCharCode(PREFIX.charCodeAt(PREFIX.length - 1) + 1);
    let start = PREFIX;
    let rev = 0;
    for (;;) {
      let q = this.client.getAll().inRange({ start, end }).limit(LOAD_PAGE);
      if (rev) q = q.revision(rev);
      const res = await this.timed('range', q.exec());
      if (!rev) rev = Number(res.header.revision);
      for (const kv of res.kvs) onKv(toKv(kv));
      if (!res.more || !res.kvs.length) break;
      start = res.kvs[res.kvs.length - 1].key.toString() + '\0';
    }
    return rev;
  }

  async watch(fromRevision: number, onBatch: (b: { events: { type: 'put' | 'delete'; kv: KeyValue }[]; revision: number }) => void, onError: (e: Error) => void): Promise<StoreWatch> {
    let w: Watcher;
    try {
      w = await this.client
        .watch()
        .prefix(PREFIX)
        .startRevision(String(fromRevision + 1))
        .create();
    } catch (e) {
      throw watchLost(e, fromRevision);
    }
    w.on('data', (res) => {
      onBatch({ events: res.events.map((e) => ({ type: e.type === 'Put' ? 'put' : 'delete', kv: toKv(e.kv) })), revision: Number(res.header.revision) });
    });
    w.on('error', (e) => onError(watchLost(e, fromRevision) as Error));
    return { cancel: () => w.cancel() };
  }

  async grantLease(ttlS: number): Promise<Lease> {
    const lease = this.client.lease(ttlS, { autoKeepAlive: false });
    // A lost lease is reported by the next keepAlive; keep the emitter from warning meanwhile.
    lease.on('lost', () => undefined);
    const id = await this.timed('lease-grant', lease.grant());
    return new EtcdStoreLease(lease, id, ttlS, (op, p) => this.timed(op, p));
  }

  async registerManager(id: string, addr: string, ttlS: number): Promise<{ close(): Promise<void> }> {
    const w = this.electionWorker();
    if (w) return w.registerManager(id, addr, ttlS);
    // Kept alive by etcd3 in the background for as long as this manager runs.
    const lease = this.client.lease(ttlS);
    lease.on('lost', () => undefined);
    await this.timed('put', lease.put(key('managers', id)).value(addr).exec());
    return { close: () => lease.revoke().catch(() => undefined) };
  }

  async managers(): Promise<Map<string, string>> {
    const m = (await this.timed('range', this.client.getAll().prefix(`${PREFIX}managers/`).strings())) as Record<string, string>;
    return new Map(Object.entries(m).map(([k, addr]) => [k.slice(`${PREFIX}managers/`.length), addr]));
  }

  campaign(id: string, ttlS: number): Campaign {
    const w = this.electionWorker();
    if (w) return w.campaign(id, ttlS);
    const c = this.client.election(ELECTION, ttlS).campaign(id);
    const fns: ((e: CampaignEvent) => void)[] = [];
    c.on('elected', () => fns.forEach((f) => f({ type: 'elected' })));
    c.on('error', (err) => fns.forEach((f) => f({ type: 'lost', err: storeError(err) as Error })));
    return {
      on: (fn) => void fns.push(fn),
      resign: () => c.resign(),
    };
  }

  async leader(): Promise<string | undefined> {
    return (await this.timed('get', this.client.election(ELECTION).leader())) ?? undefined;
  }

  async close(): Promise<void> {
    await this.election?.close();
    this.client.close();
  }
}

class EtcdStoreLease implements Lease {
  constructor(
    private readonly lease: EtcdLease,
    readonly id: string,
    readonly ttlS: number,
    private readonly timed: <T>(op: string, p: Promise<T>) => Promise<T>,
  ) {}

  /**
   * One keepalive, on a stream of its own (etcd3's keepaliveOnce). Not one
   * shared stream for all leases, though that costs less CPU here: etcd
   * renews the requests of one stream one after the other, each waiting
   * until etcd has applied everything it committed (up to 1 s, then "waiting
   * for the applied index took too long", which ends the stream). Behind the
   * leader's large transactions that wait is hundreds of ms, so one stream
   * renews a few leases a second where 1,000 agents need 250; measured:
   * 2,226 re-registrations in one bench:schedule run. Separate streams wait
   * side by side.
   */
  async keepAlive(): Promise<void> {
    await this.timed('lease-keepalive', this.lease.keepaliveOnce());
  }

  async put(kind: Kind, id: string, value: string): Promise<number> {
    const res = await this.timed('put', this.lease.put(key(kind, id)).value(value).exec());
    return Number(res.header.revision);
  }

  async revoke(): Promise<void> {
    await this.timed('lease-revoke', this.lease.revoke());
  }

  release(): void {
    this.lease.release();
  }
}

/** etcd's maintenance API (status, compaction, defragmentation, alarms) as the Store's. */
class EtcdMaintenance implements StoreMaintenance {
  constructor(
    private readonly client: Etcd3,
    private readonly timed: <T>(op: string, p: Promise<T>) => Promise<T>,
  ) {}

  async status(): Promise<StoreStatus> {
    const [st, al] = await Promise.all([this.timed('status', this.client.maintenance.status()), this.timed('alarm', this.client.maintenance.alarm({ action: 'Get' }))]);
    return {
      dbSizeBytes: Number(st.dbSize),
      // etcd before 3.4 does not report it: take the whole file as in use (never defragments for nothing).
      dbSizeInUseBytes: Number(st.dbSizeInUse || st.dbSize),
      revision: Number(st.header.revision),
      alarms: (al.alarms ?? []).map((a) => String(a.alarm).toUpperCase()),
    };
  }

  async compact(revision: number): Promise<void> {
    try {
      // physical: returns once the compaction is applied to the backend, so a defragment after it reclaims its pages.
      await this.timed('compact', this.client.kv.compact({ revision: String(revision), physical: true }));
    } catch (e) {
      // Already compacted at or past it (etcd's own auto-compaction got there first): nothing to do.
      if (e instanceof Error && /compacted/.test(e.message)) return;
      throw e;
    }
  }

  async defragment(): Promise<void> {
    await this.timed('defragment', this.client.maintenance.defragment());
  }

  async disarmNoSpace(): Promise<void> {
    const al = await this.timed('alarm', this.client.maintenance.alarm({ action: 'Get' }));
    for (const a of al.alarms ?? []) {
      if (String(a.alarm).toUpperCase() !== 'NOSPACE') continue;
      await this.timed('alarm', this.client.maintenance.alarm({ action: 'Deactivate', memberID: a.memberID, alarm: 'Nospace' }));
    }
  }
}
