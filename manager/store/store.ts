// The store: Convoy's objects in etcd, one prefix per kind, one key per
// object, JSON values. meta.version is the etcd mod revision the object was
// read at; writes are transactions guarded by it (optimistic concurrency).
// Service names are unique through a name index written in the same
// transaction as the service.
import { Etcd3, type IKeyValue } from 'etcd3';
import type { Cluster, Network, Node, Service, Task } from '../../proto/mod';

export const PREFIX = '/convoy/';
export type Kind = 'services' | 'tasks' | 'nodes' | 'networks' | 'cluster' | 'alive' | 'managers';

export function key(kind: Kind, id: string): string {
  return `${PREFIX}${kind}/${id}`;
}
export function nameKey(name: string): string {
  return `${PREFIX}names/services/${name}`;
}

interface Versioned {
  id: string;
  meta: { version: number; createdAt: number; updatedAt: number } | null;
}

function decode<T extends Versioned>(kv: IKeyValue): T {
  const obj = JSON.parse(kv.value.toString()) as T;
  obj.meta = { createdAt: 0, updatedAt: 0, ...(obj.meta ?? {}), version: Number(kv.mod_revision) };
  return obj;
}

/** Etcd's default limit of operations in one transaction. */
export const DEFAULT_MAX_TXN_OPS = 128;

export class ConflictError extends Error {
  override name = 'ConflictError';
}

export type Stored = Service | Task | Node | Network | Cluster;

/** Bytes of values per transaction: under etcd's default --max-request-bytes (1.5 MiB). */
export const MAX_TXN_BYTES = 1024 * 1024;

/** Transactions of one batch in flight at once. */
const BATCH_CONCURRENCY = 8;

/** Told of every etcd request the store makes (for the etcd latency metric). */
export type EtcdObserver = (op: string, seconds: number) => void;

export type Write =
  | { op: 'create'; kind: Kind; obj: Stored }
  | { op: 'update'; kind: Kind; obj: Stored }
  | { op: 'delete'; kind: Kind; obj: Stored };

export class Store {
  constructor(
    readonly client: Etcd3,
    private readonly maxTxnOps = DEFAULT_MAX_TXN_OPS,
    private readonly observe: EtcdObserver = () => undefined,
  ) {}

  private async timed<T>(op: string, p: Promise<T>): Promise<T> {
    const t0 = process.hrtime.bigint();
    try {
      return await p;
    } finally {
      this.observe(op, Number(process.hrtime.bigint() - t0) / 1e9);
    }
  }

  async list<T extends Versioned>(kind: Kind): Promise<{ items: T[]; revision: number }> {
    const res = await this.timed('range', this.client.getAll().prefix(`${PREFIX}${kind}/`).exec());
    return { items: res.kvs.map((kv) => decode<T>(kv)), revision: Number(res.header.revision) };
  }

  async get<T extends Versioned>(kind: Kind, id: string): Promise<T | undefined> {
    const res = await this.timed('get', this.client.get(key(kind, id)).exec());
    return res.kvs.length ? decode<T>(res.kvs[0]) : undefined;
  }

  async serviceIdByName(name: string): Promise<string | undefined> {
    return (await this.client.get(nameKey(name)).string()) ?? undefined;
  }

  async aliveNodeIds(): Promise<Set<string>> {
    const keys = await this.client.getAll().prefix(`${PREFIX}alive/`).keys();
    return new Set(keys.map((k) => k.slice(`${PREFIX}alive/`.length)));
  }

  private encode(obj: Versioned): string {
    const now = Date.now();
    const meta = obj.meta ?? { version: 0, createdAt: now, updatedAt: now };
    return JSON.stringify({ ...obj, meta: { ...meta, createdAt: meta.createdAt || now, updatedAt: now } });
  }

  /** Creates a service and its name index in one transaction; ConflictError if the name is taken. */
  async createService(svc: Service): Promise<void> {
    const name = svc.spec?.name ?? '';
    const res = await this.timed(
      'txn',
      this.client
        .if(nameKey(name), 'Create', '==', 0)
        .then(this.client.put(nameKey(name)).value(svc.id), this.client.put(key('services', svc.id)).value(this.encode(svc)))
        .commit(),
    );
    if (!res.succeeded) throw new ConflictError(`service name "${name}" is already in use`);
  }

  async removeService(svc: Service): Promise<void> {
    const res = await this.timed(
      'txn',
      this.client
        .if(key('services', svc.id), 'Mod', '==', svc.meta?.version ?? 0)
        .then(this.client.delete().key(key('services', svc.id)), this.client.delete().key(nameKey(svc.spec?.name ?? '')))
        .commit(),
    );
    if (!res.succeeded) throw new ConflictError(`service ${svc.id} changed meanwhile; retry`);
  }

  /** One guarded write; ConflictError when the object changed since it was read. */
  async put(kind: Kind, obj: Stored, create = false): Promise<number> {
    const res = await this.timed(
      'txn',
      this.client
        .if(key(kind, obj.id), create ? 'Create' : 'Mod', '==', create ? 0 : (obj.meta?.version ?? 0))
        .then(this.client.put(key(kind, obj.id)).value(this.encode(obj)))
        .commit(),
    );
    if (!res.succeeded) throw new ConflictError(`${kind} ${obj.id} changed meanwhile; retry`);
    return Number(res.header.revision);
  }

  /**
   * Many writes in as few transactions as etcd's limits allow (operations
   * and bytes per request). Each chunk is guarded by every object's version;
   * a chunk that loses a race is dropped whole (the reconcilers recompute it
   * on the next tick). Chunks go out concurrently. Returns how many writes
   * were committed and the highest revision a committed chunk made.
   */
  async batch(writes: Write[]): Promise<{ committed: number; dropped: number; revision: number; error?: string }> {
    // A compare and an op per write: stay under the limit on both.
    const maxOps = Math.max(1, Math.floor(this.maxTxnOps / 2));
    let committed = 0;
    let dropped = 0;
    let revision = 0;
    // Chunks are encoded as the transactions go out, not all up front: 100,000 tasks encode in
    // most of a second, and one synchronous stretch that long starves the election lease's
    // keepalive (2 s TTL) and costs the leadership.
    let pos = 0;
    const nextChunk = (): { ws: Write[]; values: (string | undefined)[] } | undefined => {
      if (pos >= writes.length) return undefined;
      const cur: { ws: Write[]; values: (string | undefined)[] } = { ws: [], values: [] };
      let bytes = 0;
      while (pos < writes.length) {
        const w = writes[pos];
        const v = w.op === 'delete' ? undefined : this.encode(w.obj);
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
    const one = async ({ ws, values }: { ws: Write[]; values: (string | undefined)[] }) => {
      const cmp = (w: Write): [string, 'Create' | 'Mod', number] =>
        w.op === 'create' ? [key(w.kind, w.obj.id), 'Create', 0] : [key(w.kind, w.obj.id), 'Mod', w.obj.meta?.version ?? 0];
      const [first, ...rest] = ws;
      let txn = this.client.if(cmp(first)[0], cmp(first)[1], '==', cmp(first)[2]);
      for (const w of rest) {
        const [k, col, v] = cmp(w);
        txn = txn.and(k, col, '==', v);
      }
      const ops = ws.map((w, i) => (w.op === 'delete' ? this.client.delete().key(key(w.kind, w.obj.id)) : this.client.put(key(w.kind, w.obj.id)).value(values[i]!)));
      try {
        const res = await this.timed('txn', txn.then(...ops).commit());
        if (res.succeeded) {
          committed += ws.length;
          revision = Math.max(revision, Number(res.header.revision));
        } else dropped += ws.length;
      } catch (e) {
        // etcd refused or lost this chunk (overload, leader change): the others may have landed.
        dropped += ws.length;
        firstError ??= e instanceof Error ? e.message : String(e);
      }
    };
    // A bounded number of transactions in flight: etcd answers "too many requests" beyond its apply backlog.
    await Promise.all(
      Array.from({ length: BATCH_CONCURRENCY }, async () => {
        for (let c = nextChunk(); c; c = nextChunk()) await one(c);
      }),
    );
    if (firstError && !committed) throw new Error(firstError);
    return { committed, dropped, revision, error: firstError };
  }

  /**
   * A revision a watcher of /convoy/ is sure to reach: a write of
   * /convoy/sync/<who>, after every write made before the call. (etcd's
   * current revision may come from keys outside /convoy/, such as the
   * election's, which a /convoy/ watch never reports.)
   */
  async syncRevision(who: string): Promise<number> {
    const res = await this.timed('put', this.client.put(`${PREFIX}sync/${who}`).value(String(Date.now())).exec());
    return Number(res.header?.revision);
  }
}
