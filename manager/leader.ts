// The leader's loop: one reconcile tick at a time over the manager's
// StateCache, its writes committed in batched revision-guarded transactions,
// then a wait until the cache has seen them (so the next tick never acts on
// its own stale view). A tick runs when the cache changes (only the services
// and nodes that changed are re-orchestrated), when a time-based decision
// falls due (`wakeAt`: restart delays, update delay and monitor, a new
// session's grace period), and every FULL_TICK_MS as a safety net over
// everything.
//
// A tick runs in slices. The agents' heartbeats (their session leases) are
// answered on this same event loop (the election's lease is kept alive on
// the store's election worker thread since, store/election.ts); a tick over
// 100,000 new tasks is seconds of CPU, and run in one piece it cost the lead
// mid-burst when the election still ran on this loop. So the
// reconcile is a generator (reconcileSteps) that pauses every SLICE_MS, and
// the loop gives the event loop back (setImmediate: timers and I/O run)
// before resuming it. The snapshot it works on is a copy: the cache keeps
// applying watch events between slices. A tick whose leader lost the lead
// meanwhile is dropped, uncommitted.
//
// A write that loses its compare-and-swap (someone wrote the object since
// the tick read it) is retried alone: the loop waits until the cache holds
// the newer version, marks what the object belongs to dirty, and the next
// tick re-reconciles just that. Only a write lost for another reason (etcd
// refused or lost a transaction) costs a full re-sync.
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import type { Cluster, Network, Node, Service, Task } from '../proto/mod';
import { errMsg, type Logger } from '../common/logger';
import { eventsFor, placements } from './events';
import type { Autoscaler, ManagerObserver } from './hooks';
import { reconcileSteps, type ReconcileOptions, type ReconcileResult } from './reconcile';
import type { Change } from './state/cache';
import { isTask, type ClusterSnapshot } from './state/snapshot';
import { StoreFullError } from './store/errors';
import type { BatchOptions, Write } from './store/store';

/** What a batch commit reports. */
export interface BatchResult {
  committed: number;
  /** Writes not committed: conflicts, plus any lost with a failed transaction. */
  dropped: number;
  /** Highest revision a committed transaction made. */
  revision: number;
  error?: string;
  /** The writes whose compare failed (the object changed since it was read); the rest of their transaction is committed. */
  conflicts?: Write[];
}

/** The part of the Store the leader uses. */
export interface LeaderStore {
  batch(writes: Write[], opts?: BatchOptions): Promise<BatchResult>;
  /** A revision the cache is sure to reach, after every write made before the call. */
  syncRevision(who: string): Promise<number>;
}

/** The part of the StateCache the leader reads. */
export interface LeaderCache {
  readonly cluster: Cluster | undefined;
  readonly services: ReadonlyMap<string, Service>;
  readonly tasks: ReadonlyMap<string, Task>;
  readonly nodes: ReadonlyMap<string, Node>;
  readonly networks: ReadonlyMap<string, Network>;
  /** Nodes whose session key is alive. */
  readonly alive: ReadonlySet<string>;
  readonly revision: number;
  waitFor(rev: number, timeoutMs?: number): Promise<boolean>;
  /** Resolves when no watch batch is half applied (the cache applies large ones in slices). */
  settled?(): Promise<void>;
}

/** Wall clock and timers (tests pass a fake one). */
export interface LeaderClock {
  now(): number;
  setTimeout(fn: () => void, ms: number): { cancel(): void };
}

export const realClock: LeaderClock = {
  now: () => Date.now(),
  setTimeout(fn, ms) {
    const t = setTimeout(fn, ms);
    return { cancel: () => clearTimeout(t) };
  },
};

export interface LeaderDeps {
  store: LeaderStore;
  cache: LeaderCache;
  managerId: string;
  log: Logger;
  observer: ManagerObserver;
  autoscaler: Autoscaler;
  reconcile?: Omit<ReconcileOptions, 'dirty' | 'alive' | 'scale' | 'sliceMs'>;
  clock?: LeaderClock;
  /** Gives the event loop back between slices. Default: setImmediate. */
  yieldToLoop?: () => Promise<void>;
}

/** Safety net: a full reconcile at least this often. */
export const FULL_TICK_MS = 2000;
/** Debounce of cache changes before a tick; grows with the cost of the last tick. */
export const MIN_DEBOUNCE_MS = 15;
export const MAX_DEBOUNCE_MS = 500;
/**
 * Work per slice of a tick before the loop yields. Far under the election
 * TTL (2 s, a keepalive every third of it), and long enough that the pauses
 * (one event-loop turn each) cost a few percent of a big tick.
 */
export const SLICE_MS = 50;
/**
 * How long the leader waits, after a commit, for the cache to hold what it
 * committed, before it marks the next tick as one that must catch up first.
 */
export const CACHE_WAIT_MS = 5000;
/** How long a catching-up tick waits for the cache to reach etcd's revision before it gives up (and retries). */
const SYNC_WAIT_MS = 10_000;
/** An event-loop stall this long is logged as a warning: half the shortest lease TTL (2 s). */
const STALL_WARN_MS = 1000;
/** etcd NOSPACE: no write lands until space is reclaimed (docs/etcd.md): retry this seldom, and say so once. */
const STORE_FULL_RETRY_MS = 5000;

export interface Leader {
  start(): void;
  stop(): void;
  onChange(c: Change): void;
  /** Resolves when no tick is running (tests, shutdown). */
  idle(): Promise<void>;
}

const immediate = () => new Promise<void>((r) => setImmediate(r));

export function createLeader(d: LeaderDeps): Leader {
  const { store, cache, log, observer } = d;
  const clock = d.clock ?? realClock;
  const yieldToLoop = d.yieldToLoop ?? immediate;
  const source = `manager/${d.managerId}`;
  let leading = false;
  let running: Promise<void> | undefined;
  let timer: { cancel(): void } | undefined;
  let timerAt = Infinity;
  let full = true;
  /** The last tick failed on a full store (etcd NOSPACE): back off, warn once. */
  let storeFull = false;
  /** The cache may lag etcd (first tick, a failed or partly lost commit): catch up before deciding. */
  let sync = true;
  const dirtyServices = new Set<string>();
  const dirtyNodes = new Set<string>();
  let lastTickMs = 0;
  let lastFull = 0;
  /** The next tick at or after this time is a full one (a wakeAt came due). */
  let fullAt = Infinity;
  const loopDelay = monitorEventLoopDelay({ resolution: 20 });

  const schedule = (delayMs: number) => {
    if (!leading) return;
    const at = clock.now() + Math.max(0, delayMs);
    if (timer && timerAt <= at) return;
    timer?.cancel();
    timerAt = at;
    timer = clock.setTimeout(() => {
      timer = undefined;
      timerAt = Infinity;
      void run();
    }, Math.max(0, delayMs));
  };
  const debounce = () => Math.min(MAX_DEBOUNCE_MS, Math.max(MIN_DEBOUNCE_MS, lastTickMs * 2));

  const run = async () => {
    if (!leading) return;
    if (running) {
      // Coalesce: one more tick after this one.
      await running;
      schedule(0);
      return;
    }
    running = tick().finally(() => (running = undefined));
    await running;
  };

  /** The cache as of now, copied: the tick runs in slices while the cache moves on. */
  const snapshot = (now: number, cluster: Cluster): ClusterSnapshot => ({
    revision: cache.revision,
    now,
    cluster,
    services: new Map(cache.services),
    tasks: new Map(cache.tasks),
    nodes: new Map(cache.nodes),
    networks: new Map(cache.networks),
  });

  /** Runs the reconcile in slices; undefined when the lead was lost meanwhile. */
  const reconcileSliced = async (snap: ClusterSnapshot, opts: ReconcileOptions) => {
    const steps = reconcileSteps(snap, { ...opts, sliceMs: SLICE_MS });
    let slices = 0;
    let longest = 0;
    for (;;) {
      const t0 = performance.now();
      const r = steps.next();
      longest = Math.max(longest, performance.now() - t0);
      slices++;
      if (r.done) return { res: r.value, slices, longest };
      await yieldToLoop();
      if (!leading) return undefined;
    }
  };

  /** The objects a conflicting write belongs to become dirty; networks and the cluster are everyone's. */
  const markDirty = (w: Write) => {
    if (w.kind === 'tasks' && isTask(w.obj)) dirtyServices.add(w.obj.serviceId);
    else if (w.kind === 'services') dirtyServices.add(w.obj.id);
    else if (w.kind === 'nodes') dirtyNodes.add(w.obj.id);
    else full = true;
  };

  /** True when the cache already holds a version of w's object newer than the one w was computed from. */
  const seenNewer = (w: Write): boolean => {
    const m: ReadonlyMap<string, { meta: { version: number } | null }> | undefined =
      w.kind === 'tasks' ? cache.tasks : w.kind === 'services' ? cache.services : w.kind === 'nodes' ? cache.nodes : w.kind === 'networks' ? cache.networks : undefined;
    const cur = m?.get(w.obj.id);
    if (w.op === 'create') return !!cur;
    return !cur || (cur.meta?.version ?? 0) > (w.obj.meta?.version ?? 0);
  };

  /**
   * Commits a tick's writes in one store batch: the store keeps its
   * transactions in flight back to back, encoding each chunk as it goes out
   * and taking a turn of the event loop between chunks, and sends no further
   * chunk once this manager no longer leads (`proceed`). (It used to commit
   * in sequential portions of 8,192 writes: at ~1 KB a task a portion was
   * 9 transactions for 8 in flight, so every portion ended with one
   * transaction alone in flight, a barrier 13 times per 100,000 writes.)
   */
  const commitAll = (writes: Write[]): Promise<BatchResult> => store.batch(writes, { proceed: () => leading });

  const commit = async (writes: Write[]): Promise<{ retryInMs?: number }> => {
    const r = await commitAll(writes);
    const conflicts = r.conflicts ?? [];
    if (r.error) log.warn('some writes failed; retrying', { err: r.error, dropped: r.dropped, conflicts: conflicts.length, committed: r.committed });
    let retryInMs: number | undefined;
    if (r.dropped > conflicts.length) {
      // Writes lost with a failed transaction (or a store that cannot say which lost their
      // compare): recompute everything from what etcd has now.
      full = true;
      sync = true;
      retryInMs = MIN_DEBOUNCE_MS;
    } else if (conflicts.length) {
      // Someone wrote these objects meanwhile: once the cache has their newer versions,
      // re-reconcile what they belong to, and nothing else.
      log.debug('write conflicts; retrying those objects', { conflicts: conflicts.length, committed: r.committed });
      if (!conflicts.every(seenNewer) && !(await cache.waitFor(await store.syncRevision(d.managerId), SYNC_WAIT_MS))) sync = true;
      for (const w of conflicts) markDirty(w);
      retryInMs = MIN_DEBOUNCE_MS;
    }
    // The next tick must see these writes. A cache still behind after CACHE_WAIT_MS (a 100,000-task
    // commit is as many watch events to decode) would have it create the slots it has not seen yet
    // a second time: the next tick then first catches up with etcd (sync), like a tick after a loss.
    if (r.revision && !(await cache.waitFor(r.revision, CACHE_WAIT_MS))) {
      log.debug('state cache behind the commit; the next tick waits for it', { revision: r.revision, cache: cache.revision });
      sync = true;
    }
    return { retryInMs };
  };

  const tick = async () => {
    const t0 = performance.now();
    const c0 = clock.now();
    const now = c0;
    // A tick that is due for time-based decisions (restart delay, update pacing: wakeAt) looks at
    // everything: the services concerned are not dirty, and would otherwise wait for the next full tick.
    const isFull = full || now - lastFull >= FULL_TICK_MS || now >= fullAt;
    if (now >= fullAt) fullAt = Infinity;
    const dirty = isFull ? undefined : { services: new Set(dirtyServices), nodes: new Set(dirtyNodes) };
    full = false;
    dirtyServices.clear();
    dirtyNodes.clear();
    if (isFull) lastFull = now;
    let wakeAt = Infinity;
    try {
      if (sync) {
        sync = false;
        if (!(await cache.waitFor(await store.syncRevision(d.managerId), SYNC_WAIT_MS))) throw new Error('state cache is behind etcd');
      }
      // No half-applied watch batch in the copy (and the copy itself right after, synchronously).
      await cache.settled?.();
      if (!cache.cluster) return;
      const snap = snapshot(now, cache.cluster);
      const tCopy = performance.now();
      // The autoscaler decides on the snapshot (it keeps its own samples); its decisions are a step of the reconcile.
      const scale = d.autoscaler.decide(snap);
      observer.state(snap);
      const sliced = await reconcileSliced(snap, { ...d.reconcile, dirty, alive: new Set(cache.alive), scale });
      if (!sliced) return;
      const { res, slices, longest } = sliced;
      const tReconcile = performance.now();
      if (res.wakeAt !== undefined) {
        wakeAt = Math.min(wakeAt, res.wakeAt);
        fullAt = Math.min(fullAt, res.wakeAt);
      }
      report(snap, res, now, scale);
      if (res.writes.length) {
        const { retryInMs } = await commit(res.writes);
        if (retryInMs !== undefined) wakeAt = Math.min(wakeAt, clock.now() + retryInMs);
      }
      const ms = performance.now() - t0;
      const stall = loopDelay.max / 1e6;
      loopDelay.reset();
      const fields = {
        full: isFull,
        dirtyServices: dirty?.services.size ?? -1,
        writes: res.writes.length,
        wakeAt: Number.isFinite(wakeAt) ? wakeAt - clock.now() : -1,
        ms: Math.round(ms),
        copyMs: Math.round(tCopy - t0),
        reconcileMs: Math.round(tReconcile - tCopy),
        commitMs: Math.round(performance.now() - tReconcile),
        slices,
        longestSliceMs: Math.round(longest),
        loopStallMs: Math.round(stall),
      };
      if (stall >= STALL_WARN_MS) log.warn('event loop stalled (heartbeats wait on it)', fields);
      else log.debug('tick', fields);
      observer.reconciled({ seconds: ms / 1000, created: res.stats.created, assigned: res.stats.assigned, unschedulable: res.stats.unschedulable });
      storeFull = false;
    } catch (e) {
      const nowFull = e instanceof StoreFullError;
      if (!nowFull || !storeFull) log.warn('reconcile failed', { err: errMsg(e) });
      storeFull = nowFull;
      full = true;
      sync = true;
      wakeAt = Math.min(wakeAt, clock.now() + (storeFull ? STORE_FULL_RETRY_MS : 200));
    } finally {
      lastTickMs = clock.now() - c0;
      if (Number.isFinite(wakeAt)) schedule(wakeAt - clock.now());
      schedule(storeFull ? STORE_FULL_RETRY_MS : FULL_TICK_MS);
    }
  };

  /** Events, logs and the placement metric of a tick, from its snapshot and writes. */
  const report = (snap: ClusterSnapshot, res: ReconcileResult, now: number, scale: ReturnType<Autoscaler['decide']>) => {
    for (const s of placements(snap, res.writes, now)) observer.scheduled(s);
    for (const e of eventsFor(snap, res.writes, { now, source, scale })) {
      if (e.type === 'node') log.info(e.action === 'up' ? 'node up' : 'node down', { 'node.id': e.nodeId });
      else if (e.type === 'service' && e.action === 'autoscaled') log.info('autoscaled', { 'service.id': e.serviceId, 'service.name': e.serviceName, from: e.from, to: e.to, reason: e.message });
      observer.event(e);
    }
  };

  return {
    start() {
      leading = true;
      full = true;
      sync = true;
      loopDelay.enable();
      observer.leader(true);
      d.autoscaler.leading(true);
      observer.event({ type: 'manager', action: 'leader-elected', time: clock.now(), source, managerId: d.managerId });
      schedule(0);
    },
    stop() {
      if (!leading) return;
      leading = false;
      loopDelay.disable();
      timer?.cancel();
      timer = undefined;
      timerAt = Infinity;
      observer.leader(false);
      d.autoscaler.leading(false);
      observer.event({ type: 'manager', action: 'leader-lost', time: clock.now(), source, managerId: d.managerId });
    },
    onChange(c: Change) {
      if (!leading) return;
      if (c.reset || c.cluster || c.networks) full = true;
      for (const s of c.services) dirtyServices.add(s);
      for (const n of c.nodes) dirtyNodes.add(n);
      if (full || dirtyServices.size || dirtyNodes.size) schedule(debounce());
    },
    async idle() {
      await running;
    },
  };
}
