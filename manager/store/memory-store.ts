// The Store in memory, for unit tests of the control API, the dispatcher and
// the leader: the same semantics as EtcdStore (one revision counter, mod
// revisions as versions, guarded writes, leases whose keys vanish when they
// lapse, a watch that reports every change in order) without a process.
// Time is injectable: leases lapse against `now()`, checked at every call
// and by `expireLeases()`, so a test moves a fake clock and sees the expiry.
import type { Service } from '../../proto/mod';
import { ConflictError, LeaseNotFoundError, StoreUnavailableError } from './errors';
import {
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
  type KeyValue,
  type Kind,
  type Lease,
  type Store,
  type StoreWatch,
  type Stored,
  type Versioned,
  type WatchBatch,
  type Write,
} from './store';

interface Entry {
  value: string;
  createRevision: number;
  modRevision: number;
  lease: string;
}

type Op = { type: 'put'; key: string; value: string; lease?: string } | { type: 'delete'; key: string };

interface Candidate {
  id: string;
  fns: ((e: CampaignEvent) => void)[];
  elected: boolean;
}

export interface MemoryStoreOptions {
  /** The clock leases lapse against (ms). */
  now?: () => number;
}

export class MemoryStore implements Store {
  private readonly kv = new Map<string, Entry>();
  private rev = 1;
  private readonly history: WatchBatch[] = [];
  private readonly watchers = new Set<{ from: number; onBatch: (b: WatchBatch) => void }>();
  private readonly leases = new Map<string, { ttlS: number; expiresAt: number; keys: Set<string> }>();
  private nextLease = 1;
  private candidates: Candidate[] = [];
  private readonly now: () => number;
  /** While true every call fails with StoreUnavailableError (etcd out of reach). */
  unavailable = false;
  /** Calls of batch() (tests count commits). */
  batches = 0;

  constructor(opts: MemoryStoreOptions = {}) {
    this.now = opts.now ?? Date.now;
  }

  /** The current revision. */
  get revision(): number {
    return this.rev;
  }

  // ---- the core: check, then apply ops atomically at one new revision ------

  private enter(): void {
    if (this.unavailable) throw new StoreUnavailableError('memory store: unavailable (test switch)');
    this.expireLeases();
  }

  private commit(ops: Op[]): number {
    if (!ops.length) return this.rev;
    const rev = ++this.rev;
    const events: WatchBatch['events'] = [];
    for (const op of ops) {
      const prev = this.kv.get(op.key);
      if (prev?.lease) this.leases.get(prev.lease)?.keys.delete(op.key);
      if (op.type === 'put') {
        const e: Entry = { value: op.value, createRevision: prev?.createRevision ?? rev, modRevision: rev, lease: op.lease ?? '' };
        this.kv.set(op.key, e);
        if (e.lease) this.leases.get(e.lease)?.keys.add(op.key);
        events.push({ type: 'put', kv: { key: op.key, value: op.value, modRevision: rev } });
      } else if (prev) {
        this.kv.delete(op.key);
        events.push({ type: 'delete', kv: { key: op.key, value: '', modRevision: rev } });
      }
    }
    const b: WatchBatch = { events: events.filter((e) => e.kv.key.startsWith(PREFIX)), revision: rev };
    if (b.events.length) {
      this.history.push(b);
      // Delivered after the call returns, as etcd's watch is.
      for (const w of this.watchers) queueMicrotask(() => this.watchers.has(w) && w.onBatch(b));
    }
    return rev;
  }

  private kvOf(k: string): KeyValue | undefined {
    const e = this.kv.get(k);
    return e ? { key: k, value: e.value, modRevision: e.modRevision } : undefined;
  }

  /** Lapses every lease whose TTL ran out: its keys are deleted, campaigns on it lose. */
  expireLeases(): void {
    const now = this.now();
    for (const [id, l] of this.leases) {
      if (l.expiresAt > now) continue;
      this.leases.delete(id);
      this.commit([...l.keys].map((k) => ({ type: 'delete', key: k })));
    }
  }

  // ---- objects -------------------------------------------------------------

  async list<T extends Versioned>(kind: Kind): Promise<{ items: T[]; revision: number }> {
    this.enter();
    const p = `${PREFIX}${kind}/`;
    const items: T[] = [];
    for (const k of [...this.kv.keys()].sort()) if (k.startsWith(p)) items.push(decodeObject<T>(this.kvOf(k)!));
    return { items, revision: this.rev };
  }

  async get<T extends Versioned>(kind: Kind, id: string): Promise<T | undefined> {
    this.enter();
    const kv = this.kvOf(key(kind, id));
    return kv ? decodeObject<T>(kv) : undefined;
  }

  async serviceIdByName(name: string): Promise<string | undefined> {
    this.enter();
    return this.kv.get(nameKey(name))?.value;
  }

  async aliveNodeIds(): Promise<Set<string>> {
    this.enter();
    const p = `${PREFIX}alive/`;
    return new Set([...this.kv.keys()].filter((k) => k.startsWith(p)).map((k) => k.slice(p.length)));
  }

  async createService(svc: Service): Promise<number> {
    this.enter();
    const name = svc.spec?.name ?? '';
    if (this.kv.has(nameKey(name))) throw new ConflictError(`service name "${name}" is already in use`);
    return this.commit([
      { type: 'put', key: nameKey(name), value: svc.id },
      { type: 'put', key: key('services', svc.id), value: encodeObject(svc) },
    ]);
  }

  async removeService(svc: Service): Promise<number> {
    this.enter();
    if (this.kv.get(key('services', svc.id))?.modRevision !== (svc.meta?.version ?? 0)) throw new ConflictError(`service ${svc.id} changed meanwhile; retry`);
    return this.commit([
      { type: 'delete', key: key('services', svc.id) },
      { type: 'delete', key: nameKey(svc.spec?.name ?? '') },
    ]);
  }

  private guardHolds(w: Write): boolean {
    const g = guardOf(w);
    const e = this.kv.get(g.key);
    return w.op === 'create' ? !e : !!e && e.modRevision === g.version;
  }

  async put(kind: Kind, obj: Stored, create = false): Promise<number> {
    this.enter();
    const w: Write = { op: create ? 'create' : 'update', kind, obj };
    if (!this.guardHolds(w)) throw new ConflictError(`${kind} ${obj.id} changed meanwhile; retry`);
    return this.commit([{ type: 'put', key: key(kind, obj.id), value: encodeObject(obj, undefined, kind) }]);
  }

  update<T extends Stored>(kind: Kind, id: string, mutate: (cur: T | undefined) => T | undefined, attempts?: number): Promise<T | undefined> {
    return updateWithRetry<T>(this, kind, id, mutate, attempts);
  }

  /** All writes whose guard holds commit at one revision; the others come back as conflicts. */
  async batch(writes: Write[], opts: BatchOptions = {}): Promise<BatchResult> {
    this.enter();
    if (opts.proceed && !opts.proceed()) return { committed: 0, dropped: writes.length, revision: 0, error: 'stopped before it was sent', conflicts: [] }; // as EtcdStore's STOPPED
    this.batches++;
    const conflicts: Write[] = [];
    const ops: Op[] = [];
    for (const w of writes) {
      if (!this.guardHolds(w)) conflicts.push(w);
      else ops.push(w.op === 'delete' ? { type: 'delete', key: key(w.kind, w.obj.id) } : { type: 'put', key: key(w.kind, w.obj.id), value: encodeObject(w.obj, undefined, w.kind) });
    }
    const revision = ops.length ? this.commit(ops) : 0;
    return { committed: ops.length, dropped: conflicts.length, revision, conflicts };
  }

  async syncRevision(who: string): Promise<number> {
    this.enter();
    return this.commit([{ type: 'put', key: `${PREFIX}sync/${who}`, value: String(this.now()) }]);
  }

  /** Test helper: writes a raw object (no guard), as another manager or an operator of etcd would. */
  async forcePut(kind: Kind, obj: Stored): Promise<number> {
    return this.commit([{ type: 'put', key: key(kind, obj.id), value: encodeObject(obj, undefined, kind) }]);
  }

  // ---- feed ----------------------------------------------------------------

  async load(onKv: (kv: KeyValue) => void): Promise<number> {
    this.enter();
    for (const k of [...this.kv.keys()].sort()) if (k.startsWith(PREFIX)) onKv(this.kvOf(k)!);
    return this.rev;
  }

  async watch(fromRevision: number, onBatch: (b: WatchBatch) => void, _onError: (e: Error) => void): Promise<StoreWatch> {
    this.enter();
    const w = { from: fromRevision, onBatch };
    // What happened between the load and now, then live.
    const missed = this.history.filter((b) => b.revision > fromRevision);
    for (const b of missed) queueMicrotask(() => this.watchers.has(w) && onBatch(b));
    this.watchers.add(w);
    return { cancel: async () => void this.watchers.delete(w) };
  }

  // ---- leases, managers, election ------------------------------------------

  async grantLease(ttlS: number): Promise<Lease> {
    this.enter();
    const id = String(this.nextLease++);
    this.leases.set(id, { ttlS, expiresAt: this.now() + ttlS * 1000, keys: new Set() });
    const store = this;
    return {
      id,
      ttlS,
      async keepAlive() {
        store.enter();
        const l = store.leases.get(id);
        if (!l) throw new LeaseNotFoundError(id);
        l.expiresAt = store.now() + ttlS * 1000;
      },
      async put(kind, objId, value) {
        store.enter();
        if (!store.leases.has(id)) throw new LeaseNotFoundError(id);
        return store.commit([{ type: 'put', key: key(kind, objId), value, lease: id }]);
      },
      async revoke() {
        store.enter();
        const l = store.leases.get(id);
        if (!l) throw new LeaseNotFoundError(id);
        store.leases.delete(id);
        store.commit([...l.keys].map((k) => ({ type: 'delete', key: k })));
      },
      release() {
        /* nothing keeps it alive here */
      },
    };
  }

  /** Whether a lease is still alive (tests). */
  leaseAlive(id: string): boolean {
    this.expireLeases();
    return this.leases.has(id);
  }

  async registerManager(id: string, addr: string): Promise<{ close(): Promise<void> }> {
    this.enter();
    this.commit([{ type: 'put', key: key('managers', id), value: addr }]);
    return { close: async () => void this.commit([{ type: 'delete', key: key('managers', id) }]) };
  }

  async managers(): Promise<Map<string, string>> {
    this.enter();
    const p = `${PREFIX}managers/`;
    return new Map([...this.kv].filter(([k]) => k.startsWith(p)).map(([k, e]) => [k.slice(p.length), e.value]));
  }

  /** Candidates are elected in the order they stood; the leader's term ends with resign() or loseLead(). */
  campaign(id: string): Campaign {
    const c: Candidate = { id, fns: [], elected: false };
    this.candidates.push(c);
    queueMicrotask(() => this.elect());
    return {
      on: (fn) => void c.fns.push(fn),
      resign: async () => {
        this.candidates = this.candidates.filter((x) => x !== c);
        this.elect();
      },
    };
  }

  /** Test helper: the leader's election lease lapses (as when its keepalives starve). */
  loseLead(): void {
    const c = this.candidates.find((x) => x.elected);
    if (!c) return;
    this.candidates = this.candidates.filter((x) => x !== c);
    for (const f of c.fns) f({ type: 'lost', err: new LeaseNotFoundError('election') });
    this.elect();
  }

  private elect(): void {
    const c = this.candidates[0];
    if (!c || c.elected) return;
    c.elected = true;
    for (const f of c.fns) f({ type: 'elected' });
  }

  async leader(): Promise<string | undefined> {
    this.enter();
    return this.candidates.find((x) => x.elected)?.id;
  }

  async close(): Promise<void> {
    this.watchers.clear();
  }
}
