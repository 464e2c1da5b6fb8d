// The store: the only part of the manager that sees the backing store (etcd
// in production, memory in unit tests). Convoy's objects live one prefix per
// kind, one key per object, JSON values. meta.version is the mod revision the
// object was read at; writes are transactions guarded by it (optimistic
// concurrency). Service names are unique through a name index written in
// the same transaction as the service.
//
// Besides objects the store owns what etcd gives the control plane: leases
// (a node is up while its session lease is), the leader election, the
// manager registry (lease-bound /convoy/managers/<id> keys) and the watch
// the StateCache is fed by. Implementations: EtcdStore (./etcd-store.ts) and
// MemoryStore (./memory-store.ts, same semantics, for unit tests). Both throw
// the typed errors of ./errors.ts.
import { isDeepStrictEqual } from 'node:util';
import { taskSpecWithDefaults, type Cluster, type Config, type Network, type Node, type Secret, type Service, type Task, type User } from '../../proto/mod';
import { ConflictError } from './errors';

export { ConflictError, LeaseNotFoundError, StoreFullError, StoreUnavailableError } from './errors';

export const PREFIX = '/convoy/';
export type Kind = 'services' | 'tasks' | 'nodes' | 'networks' | 'cluster' | 'alive' | 'managers' | 'users' | 'secrets' | 'configs' | 'ca' | 'revoked';

export function key(kind: Kind, id: string): string {
  return `${PREFIX}${kind}/${id}`;
}
export function nameKey(name: string): string {
  return `${PREFIX}names/services/${name}`;
}

export interface Versioned {
  id: string;
  meta: { version: number; createdAt: number; updatedAt: number } | null;
}

/** The cluster root CA (/convoy/ca/root): its certificate, and its private key sealed under the KEK (manager/crypto/kek.ts). */
export interface CaRecord extends Versioned {
  cert: string;
  sealedKey: string;
}

/** /convoy/ca/kek: the ids (kekId) of the key-encryption keys a rotation re-wrapped away from; no manager may seal under one again (manager/crypto/rewrap.ts). */
export interface KekRecord extends Versioned {
  retired: string[];
}

/** A revoked identity (/convoy/revoked/<id>): every certificate naming it is refused (manager/ca/). */
export interface RevokedRecord extends Versioned {
  revokedAt: number;
}

export type Stored = Service | Task | Node | Network | Cluster | User | Secret | Config | CaRecord | KekRecord | RevokedRecord;

/** Etcd's default limit of operations in one transaction. */
export const DEFAULT_MAX_TXN_OPS = 128;

/** Bytes of values per transaction: under etcd's default --max-request-bytes (1.5 MiB). */
export const MAX_TXN_BYTES = 1024 * 1024;

/** Attempts of one `update` (read, mutate, guarded write) before its ConflictError reaches the caller. */
export const UPDATE_ATTEMPTS = 5;

/** Name of the leader election (etcd's election prefix). */
export const ELECTION = 'convoy-leader';

/** Told of every backing-store request (for the etcd latency metric). */
export type EtcdObserver = (op: string, seconds: number) => void;

export type Write =
  | { op: 'create'; kind: Kind; obj: Stored }
  | { op: 'update'; kind: Kind; obj: Stored }
  | { op: 'delete'; kind: Kind; obj: Stored };

export interface BatchOptions {
  /**
   * Asked before each transaction is sent: once false, the writes not sent
   * yet are not sent (they count in `dropped`; `error` says why). The leader
   * passes "still leading". A store that commits a batch in one piece (memory)
   * asks once, before it.
   */
  proceed?: () => boolean;
}

export interface BatchResult {
  /** Writes committed. */
  committed: number;
  /** Writes not committed: the conflicts plus those of chunks the store refused or lost. */
  dropped: number;
  /** Highest revision a committed write made (0: none). */
  revision: number;
  /** The first refusal of a chunk by the store (overload, leader change), if any. */
  error?: string;
  /** Writes whose guard failed (the object changed, appeared or vanished since it was read): retry these alone. */
  conflicts: Write[];
}

/** One key as the store holds it. */
export interface KeyValue {
  key: string;
  value: string;
  modRevision: number;
}

export interface WatchBatch {
  events: { type: 'put' | 'delete'; kv: KeyValue }[];
  /** The store's revision after these events. */
  revision: number;
}

export interface StoreWatch {
  cancel(): Promise<void>;
}

/** A lease: keys put through it vanish when it lapses (no keepalive within its TTL) or is revoked. */
export interface Lease {
  /** The store's id of the lease (etcd's are 64-bit: a string, exact). */
  readonly id: string;
  readonly ttlS: number;
  /** One keepalive; LeaseNotFoundError when the lease already lapsed. */
  keepAlive(): Promise<void>;
  /** Puts a key bound to this lease; returns the write's revision. */
  put(kind: Kind, id: string, value: string): Promise<number>;
  revoke(): Promise<void>;
  /** Stops keeping it alive here (if anything did) and lets it lapse on its own. */
  release(): void;
}

export type CampaignEvent = { type: 'elected' } | { type: 'lost'; err: Error };

/** One candidacy in the leader election. */
export interface Campaign {
  on(fn: (e: CampaignEvent) => void): void;
  resign(): Promise<void>;
}

/** The backing store's size and alarms, as its maintenance API reports them. */
export interface StoreStatus {
  /** Bytes the database file takes on disk (what etcd's quota is checked against). */
  dbSizeBytes: number;
  /** Bytes of it in use; the rest is free pages a defragmentation gives back. */
  dbSizeInUseBytes: number;
  /** The store's current revision. */
  revision: number;
  /** Raised alarms by name ("NOSPACE", "CORRUPT"); empty when healthy. */
  alarms: string[];
}

/** Housekeeping of the backing store (etcd's maintenance API); ./maintenance.ts drives it. */
export interface StoreMaintenance {
  status(): Promise<StoreStatus>;
  /** Drops the history before `revision` (watchers from before it must reload). */
  compact(revision: number): Promise<void>;
  /** Rewrites the database file of the member this client talks to, giving free pages back to the disk. Blocks that member while it runs. */
  defragment(): Promise<void>;
  /** Disarms a raised NOSPACE alarm (after space was reclaimed; etcd raises it again if still over quota). */
  disarmNoSpace(): Promise<void>;
}

export interface Store {
  /** Housekeeping of the backing store; absent when it has none (memory). */
  readonly maintenance?: StoreMaintenance;

  // ---- objects -------------------------------------------------------------
  list<T extends Versioned>(kind: Kind): Promise<{ items: T[]; revision: number }>;
  get<T extends Versioned>(kind: Kind, id: string): Promise<T | undefined>;
  serviceIdByName(name: string): Promise<string | undefined>;
  aliveNodeIds(): Promise<Set<string>>;
  /** Creates a service and its name index in one transaction; ConflictError if the name is taken. Returns the revision. */
  createService(svc: Service): Promise<number>;
  /** Deletes a service and its name index, guarded by its version. Returns the revision. */
  removeService(svc: Service): Promise<number>;
  /** One guarded write (create: the key must not exist); ConflictError when it lost. Returns the revision. */
  put(kind: Kind, obj: Stored, create?: boolean): Promise<number>;
  /**
   * Read, mutate, guarded write; again on a conflict, at most `attempts`
   * times (then the ConflictError). `mutate` gets the current object
   * (undefined: none) and returns what to write, or undefined to write
   * nothing; what it throws reaches the caller as is. Returns the object as
   * written (meta.version = the write's revision), or undefined when nothing
   * was written.
   */
  update<T extends Stored>(kind: Kind, id: string, mutate: (cur: T | undefined) => T | undefined, attempts?: number): Promise<T | undefined>;
  /**
   * Many writes in as few transactions as the store's limits allow, each
   * guarded by every object's version. A chunk whose guard fails is not
   * dropped whole: the writes that conflicted are found and returned in
   * `conflicts`, the rest of the chunk is committed again.
   */
  batch(writes: Write[], opts?: BatchOptions): Promise<BatchResult>;
  /**
   * A revision a watcher of /convoy/ is sure to reach: a write of
   * /convoy/sync/<who>, after every write made before the call. (The
   * store's current revision may come from keys outside /convoy/, such as
   * the election's, which a /convoy/ watch never reports.) 0 when the
   * store is full (NOSPACE): no write of the caller's can have landed since,
   * and reads must keep answering.
   */
  syncRevision(who: string): Promise<number>;

  // ---- the feed of the StateCache -------------------------------------------
  /** Every key under /convoy/ as of one revision (read page by page); returns that revision. */
  load(onKv: (kv: KeyValue) => void): Promise<number>;
  /** Changes under /convoy/ after `fromRevision`, in order. `onError`: the watch is lost (compaction, restart): reload. */
  watch(fromRevision: number, onBatch: (b: WatchBatch) => void, onError: (e: Error) => void): Promise<StoreWatch>;

  // ---- leases, managers, election ---------------------------------------------
  grantLease(ttlS: number): Promise<Lease>;
  /** Puts /convoy/managers/<id> = addr, bound to a lease this store keeps alive until `close`. */
  registerManager(id: string, addr: string, ttlS: number): Promise<{ close(): Promise<void> }>;
  /** Manager id → address, of the managers registered now. */
  managers(): Promise<Map<string, string>>;
  /** Stands for leader as `id`; the leader's lease lapses `ttlS` after it stops being kept alive. */
  campaign(id: string, ttlS: number): Campaign;
  /** The id of the current leader, if any. */
  leader(): Promise<string | undefined>;
  close(): Promise<void>;
}

export function decodeObject<T extends Versioned>(kv: KeyValue): T {
  const isTask = kv.key.startsWith(TASK_KEYS);
  const obj = ((isTask && decodeTask(kv.value)) || JSON.parse(kv.value)) as T;
  if (isTask && obj && typeof obj === 'object' && SPARSE_SPEC in obj) {
    // Parsed whole (decodeTask could not take it apart): the spec's defaults go back in here.
    const o = obj as { spec?: unknown; sparseSpec?: unknown };
    if (o.sparseSpec && typeof o.sparseSpec === 'object') o.spec = taskSpecWithDefaults(o.sparseSpec);
    delete o.sparseSpec;
  }
  obj.meta = { createdAt: 0, updatedAt: 0, ...(obj.meta ?? {}), version: kv.modRevision };
  return obj;
}

/** Spec objects shared by many stored objects and never changed once shared: their JSON, made once (encodeSpecOnce). */
const sharedSpecJson = new WeakMap<object, string>();

/**
 * `spec` will be the `spec` of many objects written as they are (the tasks a
 * tick creates for one service share one TaskSpec object:
 * orchestrator/task.ts newTask) and nobody changes it from now on: encode
 * its JSON once, not once per object (100,000 new tasks were 100,000
 * encodings of the same ~650 bytes, the largest piece of the leader's
 * commit: docs/manager.md).
 */
export function encodeSpecOnce(spec: object): void {
  if (!sharedSpecJson.has(spec)) sharedSpecJson.set(spec, JSON.stringify(spec));
}

/**
 * The JSON of a stored object. An object spec is written last (its JSON
 * made once if it is shared: encodeSpecOnce), which is what lets
 * decodeTask find it without parsing it; no other reader depends on the
 * order of the keys.
 */
export function encodeObject(obj: Versioned, now = Date.now(), kind?: Kind): string {
  const meta = obj.meta ?? { version: 0, createdAt: now, updatedAt: now };
  const m = { ...meta, createdAt: meta.createdAt || now, updatedAt: now };
  const spec = (obj as { spec?: unknown }).spec;
  if (!spec || typeof spec !== 'object' || Array.isArray(spec)) return JSON.stringify({ ...obj, meta: m });
  const sparse = kind === 'tasks' ? sparseSpecJson(spec) : undefined;
  const field = sparse === undefined ? 'spec' : SPARSE_SPEC;
  const specJson = sparse ?? sharedSpecJson.get(spec) ?? JSON.stringify(spec);
  const rest = JSON.stringify({ ...obj, meta: m, spec: undefined });
  return rest.length > 2 ? `${rest.slice(0, -1)},"${field}":${specJson}}` : `{"${field}":${specJson}}`;
}

/**
 * The key a task's spec is stored under without its default-valued fields
 * (empty strings and lists, zeros, false, null): a decoded TaskSpec carries
 * every field of the message, and for a typical service more than half of
 * a stored task's bytes were those defaults (a 1,337-byte task held a
 * 784-byte spec, 200 bytes without them). Every write of a task, its trip
 * through etcd and the watch, and etcd's history of it shrink with them.
 * decodeObject puts the defaults back (taskSpecWithDefaults, once per
 * distinct spec: decodeTask interns it).
 */
const SPARSE_SPEC = 'sparseSpec';
const SPARSE_KEY = `,"${SPARSE_SPEC}":{`;
/** Spec object → its sparse JSON, or null: it does not come back whole from it (stored whole). */
const sparseBySpec = new WeakMap<object, string | null>();
/** Spec JSON → sparse JSON or null, for spec objects met for the first time (copies of a spec seen before). Bounded like internedSpecs. */
const sparseByJson = new Map<string, string | null>();

/** A spec without its default-valued fields (lists' elements too; maps and messages stay, however empty). */
function withoutDefaults(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(withoutDefaults);
  if (!v || typeof v !== 'object') return v;
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) {
    if (x === '' || x === 0 || x === false || x === null || x === undefined || (Array.isArray(x) && x.length === 0)) continue;
    out[k] = withoutDefaults(x);
  }
  return out;
}

/**
 * The sparse JSON of a task spec, or undefined where putting the defaults
 * back would not give the same spec (a field that is not TaskSpec's, a map
 * value that is a default, an explicitly present default): that spec is
 * stored whole. Checked once per distinct spec.
 */
function sparseSpecJson(spec: object): string | undefined {
  let sparse = sparseBySpec.get(spec);
  if (sparse === undefined) {
    const full = sharedSpecJson.get(spec) ?? JSON.stringify(spec);
    sparse = sparseByJson.get(full);
    if (sparse === undefined) {
      const parsed = JSON.parse(full) as object;
      const s = withoutDefaults(parsed) as object;
      let same = false;
      try {
        same = isDeepStrictEqual(taskSpecWithDefaults(s), parsed);
      } catch {
        // not a TaskSpec the codec takes (a wrong type somewhere): stored whole
      }
      sparse = same ? JSON.stringify(s) : null;
      if (sparseByJson.size >= INTERNED_SPECS_MAX) sparseByJson.clear();
      sparseByJson.set(full, sparse);
    }
    sparseBySpec.set(spec, sparse);
  }
  return sparse ?? undefined;
}

const TASK_KEYS = `${PREFIX}tasks/`;
const SPEC_KEY = ',"spec":{';
/**
 * The task specs met in stored tasks, by their JSON: every task of one
 * service version holds the same spec, so the cache keeps one (frozen) spec
 * object for all of them rather than one parsed copy each (100,000 tasks
 * were 100,000 copies of ~30 objects for the collector to walk), and a
 * status write re-uses its JSON (sharedSpecJson). Bounded: emptied when full.
 */
const internedSpecs = new Map<string, object>();
/** The same for specs stored sparse (by their sparse JSON; the object holds the defaults again). */
const internedSparseSpecs = new Map<string, object>();
export const INTERNED_SPECS_MAX = 4096;

/**
 * A stored task whose spec is written last (encodeObject): the fields
 * before the spec parsed, the spec taken from internedSpecs (parsed and
 * frozen the first time it is met). Undefined where the value is not of
 * that shape (an older write, the spec elsewhere): the caller parses it
 * whole. `,"spec":{` cannot occur inside a JSON string (its quotes would be
 * escaped), and the prefix before it parses as an object only where it is a
 * key of the top level; the rest parses as one value only where the spec is
 * the last key.
 */
function decodeTask(value: string): Versioned | undefined {
  if (value.charCodeAt(value.length - 1) !== 125 /* } */) return undefined;
  let sparse = true;
  let at = value.indexOf(SPARSE_KEY);
  if (at < 0) {
    sparse = false;
    at = value.indexOf(SPEC_KEY);
  }
  if (at < 1) return undefined;
  const specJson = value.slice(at + (sparse ? SPARSE_KEY : SPEC_KEY).length - 1, -1);
  const interned = sparse ? internedSparseSpecs : internedSpecs;
  let spec = interned.get(specJson);
  if (!spec) {
    try {
      const parsed = JSON.parse(specJson) as object;
      spec = sparse ? taskSpecWithDefaults(parsed) : parsed;
    } catch {
      return undefined;
    }
    deepFreeze(spec);
    if (interned.size >= INTERNED_SPECS_MAX) interned.clear();
    interned.set(specJson, spec);
    if (sparse) sparseBySpec.set(spec, specJson);
    else sharedSpecJson.set(spec, specJson);
  }
  let obj: { spec?: object } & Versioned;
  try {
    obj = JSON.parse(`${value.slice(0, at)}}`) as { spec?: object } & Versioned;
  } catch {
    return undefined;
  }
  if (obj === null || typeof obj !== 'object' || Array.isArray(obj) || 'spec' in obj || SPARSE_SPEC in obj) return undefined;
  obj.spec = spec;
  return obj;
}

/** How many distinct task specs decodeTask holds now (for tests). */
export function internedSpecCount(): number {
  return internedSpecs.size + internedSparseSpecs.size;
}

function deepFreeze(o: object): void {
  Object.freeze(o);
  for (const v of Object.values(o)) if (v && typeof v === 'object' && !Object.isFrozen(v)) deepFreeze(v as object);
}

/** The guard of a write: create = the key must not exist; update and delete = it is at the version read. */
export function guardOf(w: Write): { key: string; version: number } {
  return { key: key(w.kind, w.obj.id), version: w.op === 'create' ? 0 : (w.obj.meta?.version ?? 0) };
}

/** The shared body of `update`: read, mutate, guarded write, again on ConflictError. */
export async function updateWithRetry<T extends Stored>(
  s: Pick<Store, 'get' | 'put'>,
  kind: Kind,
  id: string,
  mutate: (cur: T | undefined) => T | undefined,
  attempts = UPDATE_ATTEMPTS,
): Promise<T | undefined> {
  for (let attempt = 1; ; attempt++) {
    const cur = await s.get<T>(kind, id);
    const next = mutate(cur);
    if (!next) return undefined;
    try {
      const now = Date.now();
      const revision = await s.put(kind, next, !cur);
      // As written (encodeObject stamps the times the same way), at the write's revision.
      return { ...next, meta: { createdAt: next.meta?.createdAt || now, updatedAt: now, version: revision } };
    } catch (e) {
      if (!(e instanceof ConflictError) || attempt >= attempts) throw e;
    }
  }
}
