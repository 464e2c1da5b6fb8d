// UpdateTaskStatus: a node's observed task states, applied only forward and
// only to the node's own tasks (proto/dispatcher.proto), committed in
// batches; a write that lost a compare-and-swap race is retried alone.
//
// The calls of all the agents connected to one manager are coalesced
// (StatusCoalescer): while one commit is in flight, the calls that arrive
// are queued, and the next commit takes them all at once. 1,000 agents
// report every ~100 ms each; one transaction per call was thousands of
// small etcd transactions (and as many client calls on the manager) a
// second during a burst, competing with the leader's commit. Coalesced, the
// store gets one batch per round trip, and a task reported twice in the
// meantime (ACCEPTED, then RUNNING) is written once, with the newer state.
// Every call still answers only once its updates are committed (or refused).
import { isForward, type Task } from '../../proto/mod';
import { boundTaskStatus } from '../spec/objects';
import type { StateCache } from '../state/cache';
import type { Store, Write } from '../store/store';

/** Rounds of one status batch: the first from the cache, the retries of conflicting tasks from the store. */
const STATUS_ROUNDS = 4;
/**
 * Updates one coalesced commit takes at most (the calls beyond wait for the
 * next): two transactions' worth on the embedded etcd, so a call never waits
 * behind a commit of unbounded size (its agent's deadline is 5 s), and the
 * status writes add little to etcd's apply backlog next to the leader's
 * commit (etcd answers "waiting for the applied index took too long" to the
 * election's keepalive when that backlog grows past seconds).
 */
export const MAX_COALESCED_UPDATES = 2048;

/** Longest wait for the cache to show the last status commit before the next one reads from it anyway (its conflicts are then retried). */
const CACHE_WAIT_MS = 1000;

type Status = NonNullable<Task['status']>;

/** One node's report of one task, bounded. */
interface Item {
  nodeId: string;
  taskId: string;
  status: Status;
  /** Committed (true) or not (refused: not the node's task, backwards, or lost). */
  applied: boolean;
}

/** The newest status per task of one call, bounded (a status that names no task state is ignored). */
function itemsOf(nodeId: string, updates: { taskId: string; status: Task['status'] }[]): Item[] {
  // The newest status per task wins within one call. A status out of bounds (a huge message,
  // terminal escapes) is cut, not lost.
  const latest = new Map<string, Status>();
  for (const u of updates) {
    if (!u.status) continue;
    const b = boundTaskStatus(u.status);
    if (b.ok) latest.set(u.taskId, b.status);
  }
  return [...latest].map(([taskId, status]) => ({ nodeId, taskId, status, applied: false }));
}

/**
 * Commits items (several nodes' reports), forward-only and only on the
 * reporting node's own tasks; marks each item applied or not. Items must name
 * distinct tasks per node; a task reported by two nodes is written for its
 * owner only.
 */
async function commitItems(store: Store, cache: Pick<StateCache, 'tasks'>, items: Item[]): Promise<number> {
  let pending = items;
  let revision = 0;
  for (let round = 0; round < STATUS_ROUNDS && pending.length; round++) {
    // First from the cache; after a lost race, from the store.
    const tasks = round === 0 ? pending.map((it) => cache.tasks.get(it.taskId)) : await Promise.all(pending.map((it) => store.get<Task>('tasks', it.taskId)));
    const writes: Write[] = [];
    const byWrite: Item[] = [];
    pending.forEach((it, i) => {
      const t = tasks[i];
      if (!t || t.nodeId !== it.nodeId) return;
      if (!isForward(t.status?.state ?? 'NEW', it.status.state)) return;
      writes.push({ op: 'update', kind: 'tasks', obj: { ...t, status: it.status } });
      byWrite.push(it);
    });
    if (!writes.length) break;
    const r = await store.batch(writes);
    revision = Math.max(revision, r.revision);
    const conflicted = new Set(r.conflicts.map((w) => w.obj.id));
    // When the store refused a chunk outright, which writes landed is unknown: retry them all (rare).
    const unknown = r.committed + r.conflicts.length < writes.length;
    const next: Item[] = [];
    byWrite.forEach((it) => {
      if (unknown || conflicted.has(it.taskId)) next.push(it);
      else it.applied = true;
    });
    // Retry these alone (re-read, checked again; a write that did land is rewritten as it is).
    pending = next;
  }
  return revision;
}

/** One node's batch, committed on its own (tests; the dispatcher coalesces through StatusCoalescer). */
export async function applyStatusUpdates(
  store: Store,
  cache: Pick<StateCache, 'tasks'>,
  nodeId: string,
  updates: { taskId: string; status: Task['status'] }[],
): Promise<{ applied: number; ignored: number }> {
  const items = itemsOf(nodeId, updates);
  await commitItems(store, cache, items);
  const applied = items.filter((it) => it.applied).length;
  return { applied, ignored: items.length - applied };
}

interface Call {
  items: Item[];
  resolve: (r: { applied: number; ignored: number }) => void;
  reject: (e: unknown) => void;
}

/**
 * The status reports of every session of one manager, committed together:
 * one commit in flight at a time, the calls that arrive meanwhile go into
 * the next one.
 */
export class StatusCoalescer {
  private queue: Call[] = [];
  private queued = 0;
  private running = false;
  /** Revision of the last commit: the next one reads its tasks from the cache once it is there. */
  private lastRevision = 0;

  constructor(
    private readonly store: Store,
    private readonly cache: Pick<StateCache, 'tasks' | 'waitFor'>,
    private readonly maxUpdates = MAX_COALESCED_UPDATES,
  ) {}

  /** Resolves once this call's updates are committed (or refused); rejects when the store refused the commit. */
  submit(nodeId: string, updates: { taskId: string; status: Task['status'] }[]): Promise<{ applied: number; ignored: number }> {
    const items = itemsOf(nodeId, updates);
    if (!items.length) return Promise.resolve({ applied: 0, ignored: 0 });
    return new Promise((resolve, reject) => {
      this.queue.push({ items, resolve, reject });
      this.queued += items.length;
      if (!this.running) void this.drain();
    });
  }

  private async drain(): Promise<void> {
    this.running = true;
    try {
      while (this.queue.length) {
        // The tasks of the last commit, read from a cache that has not seen it yet, would all
        // lose their compare (the next report of a task usually follows its previous one at once:
        // the agent sends its next batch when the last is answered) and be re-read one by one.
        // Calls arriving meanwhile join this commit.
        if (this.lastRevision) await this.cache.waitFor(this.lastRevision, CACHE_WAIT_MS);
        // Whole calls, up to maxUpdates (at least one call).
        const calls: Call[] = [];
        let n = 0;
        while (this.queue.length && (!calls.length || n + this.queue[0].items.length <= this.maxUpdates)) {
          const c = this.queue.shift()!;
          calls.push(c);
          n += c.items.length;
        }
        this.queued -= n;
        // A task reported in several of these calls by the same node: the last call's status is
        // the newest; the earlier items are superseded (they count as applied once it is).
        const newest = new Map<string, Item>();
        const superseded = new Map<Item, Item>();
        for (const c of calls) {
          for (const it of c.items) {
            const k = `${it.nodeId}\0${it.taskId}`;
            const prev = newest.get(k);
            if (prev) superseded.set(prev, it);
            newest.set(k, it);
          }
        }
        try {
          this.lastRevision = await commitItems(this.store, this.cache, [...newest.values()]);
        } catch (e) {
          for (const c of calls) c.reject(e);
          continue;
        }
        for (const c of calls) {
          let applied = 0;
          for (const it of c.items) {
            let last = it;
            while (superseded.has(last)) last = superseded.get(last)!;
            if (last.applied && isForward(it.status.state, last.status.state)) applied++;
          }
          c.resolve({ applied, ignored: c.items.length - applied });
        }
      }
    } finally {
      this.running = false;
    }
  }
}
