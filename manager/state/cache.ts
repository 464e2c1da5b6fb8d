// Every manager's in-memory copy of /convoy/, kept current by the store's
// watch (swarmkit's memory store, fed from etcd instead of raft). The leader's
// reconcile ticks, the dispatcher's assignment streams and the network state
// read it instead of listing etcd on every change, which is what makes a
// 100,000-task cluster cheap to run: a change costs one watch event, not a
// full read.
//
// Consistency: the cache is loaded page by page at one revision R, then
// watches from R+1, so it is always etcd as of `revision`. Writers that must
// not act on their own stale view (the leader, after a commit) wait for
// `waitFor(rev)`. meta.version of every object is its etcd mod revision, as
// the store's reads give, so the compare-and-swap writes work unchanged.
// A lost watch (compaction, etcd restarted) reloads everything.
//
// One watch response can carry tens of thousands of events (a commit of
// 100,000 tasks): applied in one go that is a synchronous stretch of over a
// second (JSON.parse of each, then GC), during which no heartbeat of any
// agent is answered. Batches are applied in slices of APPLY_SLICE_EVENTS
// events or APPLY_SLICE_MS, with a turn of the event loop between them, in
// order; `revision`, the waiters and the listeners move only once a whole
// batch is in, so no one is told of half a batch. Readers of the maps
// between slices see some of the batch's objects already (each with its own
// version, so guarded writes stay correct); the leader's snapshot waits for
// `settled()`.
import { performance } from 'node:perf_hooks';
import type { Cluster, Config, Network, Node, Secret, Service, Task, User } from '../../proto/mod';
import { errMsg, type Logger } from '../../common/logger';
import { PREFIX, decodeObject as decode, type KeyValue, type Store, type StoreWatch, type WatchBatch } from '../store/store';

/** Events applied before the cache gives the event loop a turn (about 10-20 ms of decoding). */
export const APPLY_SLICE_EVENTS = 2000;
/** Time after which a slice ends early (a slow machine, large objects). */
export const APPLY_SLICE_MS = 20;
/** Events between two looks at the clock within a slice. */
const CLOCK_EVERY = 64;

/** What one batch of watch events touched. */
export interface Change {
  /** Ids of tasks put or deleted. */
  tasks: Set<string>;
  /** Nodes whose assignment set may have changed (a task on them changed, before or after). */
  taskNodes: Set<string>;
  /** Services put or deleted, and services whose tasks changed. */
  services: Set<string>;
  /** Nodes put or deleted, or whose liveness key changed. */
  nodes: Set<string>;
  networks: boolean;
  /** A secret or config was put or deleted (their values stay sealed in the cache). */
  files: boolean;
  cluster: boolean;
  managers: boolean;
  /** A user (/convoy/users/) was put or deleted. */
  users: boolean;
  /** The cache was reloaded: everything may have changed. */
  reset: boolean;
}

const emptyChange = (): Change => ({
  tasks: new Set(),
  taskNodes: new Set(),
  services: new Set(),
  nodes: new Set(),
  networks: false,
  files: false,
  cluster: false,
  managers: false,
  users: false,
  reset: false,
});

export class StateCache {
  readonly services = new Map<string, Service>();
  readonly tasks = new Map<string, Task>();
  readonly nodes = new Map<string, Node>();
  readonly networks = new Map<string, Network>();
  /** Secrets and configs as etcd has them: values sealed (manager/secrets/sealing.ts opens them). */
  readonly secrets = new Map<string, Secret>();
  readonly configs = new Map<string, Config>();
  /** Nodes whose session lease is alive. */
  readonly alive = new Set<string>();
  /** Manager id → gRPC address, for managers whose lease is alive. */
  readonly managers = new Map<string, string>();
  /** Revoked identities (/convoy/revoked/<id>, manager/ca/): every certificate naming one is refused. */
  readonly revoked = new Set<string>();
  /** Users by name (/convoy/users/: name, role, certificate serial; manager/controlapi/users.ts). */
  readonly users = new Map<string, User>();
  cluster: Cluster | undefined;
  /** node id → ids of the tasks placed on it. */
  private readonly byNode = new Map<string, Set<string>>();
  /** The etcd revision the cache reflects. */
  revision = 0;
  private watcher: StoreWatch | undefined;
  private listeners: ((c: Change) => void)[] = [];
  private waiters: { rev: number; resolve: () => void }[] = [];
  private closed = false;
  /** Watch batches received and not yet applied, in order. */
  private queue: WatchBatch[] = [];
  /** The running apply of the queue, if any. */
  private draining: Promise<void> | undefined;
  /** Bumped by a reload: an apply of batches from before it stops. */
  private generation = 0;
  /** Watch batches received, and applied whole (or dropped by a reload). */
  private received = 0;
  private applied = 0;
  private settleWaiters: { n: number; resolve: () => void }[] = [];

  constructor(
    private readonly store: Store,
    private readonly log: Logger,
    /** Gives the event loop back between slices. Default: setImmediate. */
    private readonly yieldToLoop: () => Promise<void> = () => new Promise<void>((r) => setImmediate(r)),
  ) {}

  onChange(fn: (c: Change) => void): void {
    this.listeners.push(fn);
  }

  tasksOnNode(nodeId: string): Iterable<Task> {
    const ids = this.byNode.get(nodeId);
    const out: Task[] = [];
    if (ids) for (const id of ids) out.push(this.tasks.get(id)!);
    return out;
  }

  async start(): Promise<void> {
    await this.load();
    await this.watch();
  }

  /** Resolves once the cache reflects etcd at `rev` or later. */
  waitFor(rev: number, timeoutMs = 5000): Promise<boolean> {
    if (this.revision >= rev) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== entry);
        resolve(false);
      }, timeoutMs);
      const entry = {
        rev,
        resolve: () => {
          clearTimeout(timer);
          resolve(true);
        },
      };
      this.waiters.push(entry);
    });
  }

  /**
   * Resolves once every batch received before the call is applied, at a
   * batch boundary: the maps hold no half batch until the caller's next
   * await. (Not "the queue is empty": under a steady stream of status
   * updates it may never be.)
   */
  settled(): Promise<void> {
    if (this.applied >= this.received) return Promise.resolve();
    return new Promise((resolve) => this.settleWaiters.push({ n: this.received, resolve }));
  }

  /** Resolves the settle waiters that are due; true if there were any. */
  private releaseSettled(): boolean {
    const due = this.settleWaiters.filter((w) => w.n <= this.applied);
    if (!due.length) return false;
    this.settleWaiters = this.settleWaiters.filter((w) => w.n > this.applied);
    for (const w of due) w.resolve();
    return true;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.queue = [];
    this.applied = this.received;
    this.releaseSettled();
    await this.watcher?.cancel().catch(() => undefined);
    for (const w of this.waiters) w.resolve();
    this.waiters = [];
  }

  private clear(): void {
    this.services.clear();
    this.tasks.clear();
    this.nodes.clear();
    this.networks.clear();
    this.secrets.clear();
    this.configs.clear();
    this.alive.clear();
    this.managers.clear();
    this.revoked.clear();
    this.users.clear();
    this.byNode.clear();
    this.cluster = undefined;
  }

  private async load(): Promise<void> {
    this.clear();
    const none = emptyChange();
    this.revision = await this.store.load((kv) => this.apply('put', kv, none));
  }

  private async watch(): Promise<void> {
    this.watcher = await this.store.watch(
      this.revision,
      (b) => {
        if (this.closed) return;
        this.queue.push(b);
        this.received++;
        this.draining ??= this.drain().finally(() => (this.draining = undefined));
      },
      (e) => {
        if (this.closed) return;
        this.log.warn('state watch lost; reloading', { err: errMsg(e) });
        void this.reload();
      },
    );
  }

  /** Applies the queued batches in order, each in slices; revision and notify once per whole batch. */
  private async drain(): Promise<void> {
    const gen = this.generation;
    while (this.queue.length) {
      const b = this.queue.shift()!;
      const c = emptyChange();
      let i = 0;
      while (i < b.events.length) {
        const t0 = performance.now();
        const end = Math.min(b.events.length, i + APPLY_SLICE_EVENTS);
        while (i < end) {
          const e = b.events[i++];
          this.apply(e.type, e.kv, c);
          if (i % CLOCK_EVERY === 0 && performance.now() - t0 >= APPLY_SLICE_MS) break;
        }
        if (i < b.events.length) {
          await this.yieldToLoop();
          if (this.closed || gen !== this.generation) return;
        }
      }
      if (b.revision > this.revision) this.revision = b.revision;
      this.notify(c);
      this.applied++;
      // Those waiting for this batch run (their microtasks) before the next batch's first slice.
      if (this.releaseSettled() && this.queue.length) {
        await this.yieldToLoop();
        if (this.closed || gen !== this.generation) return;
      }
    }
  }

  private async reload(): Promise<void> {
    // Batches of the lost watch are superseded by the load.
    this.generation++;
    this.queue = [];
    this.applied = this.received;
    this.releaseSettled();
    await this.watcher?.cancel().catch(() => undefined);
    await this.draining;
    for (let delay = 100; !this.closed; delay = Math.min(delay * 2, 2000)) {
      try {
        await this.load();
        await this.watch();
        const c = emptyChange();
        c.reset = true;
        this.notify(c);
        return;
      } catch (e) {
        this.log.warn('state reload failed', { err: errMsg(e) });
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  }

  private notify(c: Change): void {
    const due = this.waiters.filter((w) => w.rev <= this.revision);
    if (due.length) {
      this.waiters = this.waiters.filter((w) => w.rev > this.revision);
      for (const w of due) w.resolve();
    }
    for (const fn of this.listeners) {
      try {
        fn(c);
      } catch (e) {
        this.log.warn('state listener failed', { err: errMsg(e) });
      }
    }
  }

  private apply(type: 'put' | 'delete', kv: KeyValue, c: Change): void {
    const k = kv.key;
    const rest = k.slice(PREFIX.length);
    const slash = rest.indexOf('/');
    if (slash < 0) return;
    const kind = rest.slice(0, slash);
    const id = rest.slice(slash + 1);
    const put = type === 'put';
    switch (kind) {
      case 'tasks': {
        const old = this.tasks.get(id);
        if (old?.nodeId) {
          c.taskNodes.add(old.nodeId);
          this.byNode.get(old.nodeId)?.delete(id);
        }
        c.tasks.add(id);
        if (old) c.services.add(old.serviceId);
        if (put) {
          const t = decode<Task>(kv);
          this.tasks.set(id, t);
          c.services.add(t.serviceId);
          if (t.nodeId) {
            c.taskNodes.add(t.nodeId);
            let s = this.byNode.get(t.nodeId);
            if (!s) this.byNode.set(t.nodeId, (s = new Set()));
            s.add(id);
          }
        } else this.tasks.delete(id);
        break;
      }
      case 'services':
        c.services.add(id);
        if (put) this.services.set(id, decode<Service>(kv));
        else this.services.delete(id);
        break;
      case 'nodes':
        c.nodes.add(id);
        if (put) this.nodes.set(id, decode<Node>(kv));
        else this.nodes.delete(id);
        break;
      case 'networks':
        c.networks = true;
        if (put) this.networks.set(id, decode<Network>(kv));
        else this.networks.delete(id);
        break;
      case 'secrets':
        c.files = true;
        if (put) this.secrets.set(id, decode<Secret>(kv));
        else this.secrets.delete(id);
        break;
      case 'configs':
        c.files = true;
        if (put) this.configs.set(id, decode<Config>(kv));
        else this.configs.delete(id);
        break;
      case 'alive':
        c.nodes.add(id);
        if (put) this.alive.add(id);
        else this.alive.delete(id);
        break;
      case 'managers':
        c.managers = true;
        if (put) this.managers.set(id, kv.value);
        else this.managers.delete(id);
        break;
      case 'users':
        c.users = true;
        if (put) this.users.set(id, decode<User>(kv));
        else this.users.delete(id);
        break;
      case 'cluster':
        if (id !== 'default') break;
        c.cluster = true;
        this.cluster = put ? decode<Cluster>(kv) : undefined;
        break;
      case 'revoked':
        // Never deleted in practice; a revoked node's sessions are ended through the node change.
        c.nodes.add(id);
        if (put) this.revoked.add(id);
        else this.revoked.delete(id);
        break;
      default:
        break;
    }
  }
}
