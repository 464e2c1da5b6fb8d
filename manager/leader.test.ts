// The leader loop with a fake clock, over a fake store and cache (the
// narrow LeaderStore and LeaderCache interfaces): debounce, coalescing of
// changes during a running tick, wakeAt, and the compare-and-swap conflict
// path (only the conflicting object is retried, no full re-sync).
import { strict as assert } from 'node:assert';
import type { ConvoyEvent } from '../proto/events';
import type { Cluster, Network, Node, Service, Task } from '../proto/mod';
import { nullLogger } from '../common/logger';
import { nullAutoscaler, nullObserver, type ManagerObserver } from './hooks';
import { createLeader, FULL_TICK_MS, MIN_DEBOUNCE_MS, type BatchResult, type Leader, type LeaderCache, type LeaderClock, type LeaderStore } from './leader';
import { cluster, counter, node, service } from './orchestrator/testing/fixtures';
import { StateCache, type Change } from './state/cache';
import { StoreFullError } from './store/errors';
import { MemoryStore } from './store/memory-store';
import { isNetwork, isNode, isService, isTask, type Write } from './state/snapshot';

/** Timers that fire only when the test advances the clock. */
class FakeClock implements LeaderClock {
  t = 1_000_000;
  private timers: { at: number; fn: () => void; live: boolean }[] = [];
  now(): number {
    return this.t;
  }
  setTimeout(fn: () => void, ms: number): { cancel(): void } {
    const e = { at: this.t + ms, fn, live: true };
    this.timers.push(e);
    return { cancel: () => (e.live = false) };
  }
  /** Time of the next live timer (Infinity: none). */
  next(): number {
    return Math.min(...this.timers.filter((e) => e.live).map((e) => e.at), Infinity);
  }
  /** Moves time forward by ms and fires what came due, without waiting for the ticks they start. */
  fire(ms: number): void {
    this.t += ms;
    for (const e of this.timers.filter((x) => x.live && x.at <= this.t).sort((a, b) => a.at - b.at)) {
      e.live = false;
      e.fn();
    }
  }
  /** Moves time forward by ms, firing the timers that come due, in order, each tick run to its end. */
  async advance(ms: number, leader: Leader): Promise<void> {
    const end = this.t + ms;
    for (;;) {
      const due = this.timers.filter((e) => e.live && e.at <= end).sort((a, b) => a.at - b.at)[0];
      if (!due) break;
      this.t = due.at;
      due.live = false;
      due.fn();
      await leader.idle();
      // A tick that coalesced schedules its follow-up once the running one ends.
      await new Promise((r) => setImmediate(r));
    }
    this.t = end;
  }
}

/** The cache and the store in one: a commit lands in the cache at once, versions bumped. */
class FakeEtcd implements LeaderStore, LeaderCache {
  cluster: Cluster | undefined = cluster();
  services = new Map<string, Service>();
  tasks = new Map<string, Task>();
  nodes = new Map<string, Node>();
  networks = new Map<string, Network>();
  alive = new Set<string>();
  revision = 10;
  batches: Write[][] = [];
  syncs = 0;
  /** Called with each batch before it commits: returns the writes to refuse as conflicts. */
  conflict: (ws: Write[]) => Write[] = () => [];
  /** When set, a batch waits for this promise before it commits (a tick "running"). */
  gate: Promise<void> | undefined;

  async batch(ws: Write[]): Promise<BatchResult> {
    this.batches.push(ws);
    if (this.gate) await this.gate;
    const refused = new Set(this.conflict(ws));
    const rev = ++this.revision;
    for (const w of ws) if (!refused.has(w)) this.apply(w, rev);
    return { committed: ws.length - refused.size, dropped: refused.size, revision: rev, conflicts: [...refused] };
  }
  async syncRevision(): Promise<number> {
    this.syncs++;
    return this.revision;
  }
  async waitFor(rev: number): Promise<boolean> {
    return this.revision >= rev;
  }
  apply(w: Write, rev: number): void {
    const meta = { version: rev, createdAt: w.obj.meta?.createdAt || 1, updatedAt: 1 };
    const o = w.obj;
    if (isTask(o)) {
      if (w.op === 'delete') this.tasks.delete(o.id);
      else this.tasks.set(o.id, { ...o, meta });
    } else if (isService(o)) this.services.set(o.id, { ...o, meta });
    else if (isNode(o)) this.nodes.set(o.id, { ...o, meta });
    else if (isNetwork(o)) this.networks.set(o.id, { ...o, meta });
  }
  /** Someone else writes a task (an agent's status report): a newer version in etcd and in the cache. */
  touch(id: string, f: (t: Task) => Task): void {
    const t = this.tasks.get(id)!;
    this.tasks.set(id, { ...f(t), meta: { ...t.meta!, version: ++this.revision } });
  }
}

const change = (o: Partial<Change> = {}): Change => ({
  tasks: new Set(),
  taskNodes: new Set(),
  services: new Set(),
  nodes: new Set(),
  files: false,
  networks: false,
  cluster: false,
  managers: false,
  users: false,
  reset: false,
  ...o,
});

function setup() {
  const clock = new FakeClock();
  const etcd = new FakeEtcd();
  etcd.nodes.set('a', node('a'));
  etcd.alive.add('a');
  const ticks: number[] = [];
  const events: ConvoyEvent[] = [];
  const observer: ManagerObserver = { ...nullObserver, reconciled: () => ticks.push(clock.now()), event: (e) => events.push(e) };
  const leader = createLeader({ store: etcd, cache: etcd, managerId: 'm1', log: nullLogger, observer, autoscaler: nullAutoscaler, clock, reconcile: { newId: counter('t') } });
  return { clock, etcd, leader, ticks, events };
}

const tasksOf = (etcd: FakeEtcd, sid: string) => [...etcd.tasks.values()].filter((t) => t.serviceId === sid);

describe('leader loop', () => {
  let leader: Leader | undefined;
  afterEach(() => leader?.stop());

  it('ticks at once when elected, then debounces changes', async () => {
    const s = setup();
    leader = s.leader;
    s.etcd.services.set('web', service('web', { replicas: 2 }));
    s.leader.start();
    await s.clock.advance(0, s.leader);
    assert.equal(s.ticks.length, 1, 'the first tick runs at once');
    assert.equal(tasksOf(s.etcd, 'web').length, 2);
    assert.equal(s.etcd.syncs, 1, 'a new leader catches up with etcd first');

    s.etcd.services.set('api', service('api', { replicas: 1 }));
    s.leader.onChange(change({ services: new Set(['api']) }));
    s.leader.onChange(change({ services: new Set(['api']) }));
    await s.clock.advance(MIN_DEBOUNCE_MS - 1, s.leader);
    assert.equal(s.ticks.length, 1, 'not before the debounce');
    await s.clock.advance(1, s.leader);
    assert.equal(s.ticks.length, 2, 'two changes, one tick');
    assert.equal(tasksOf(s.etcd, 'api').length, 1);
  });

  it('a dirty tick reconciles only what changed; the periodic full tick catches the rest', async () => {
    const s = setup();
    leader = s.leader;
    s.etcd.services.set('web', service('web', { replicas: 1 }));
    s.leader.start();
    await s.clock.advance(0, s.leader);
    // "api" appears without a change notification; "web" changes with one.
    s.etcd.services.set('api', service('api', { replicas: 1 }));
    s.etcd.services.set('web', { ...s.etcd.services.get('web')!, spec: { ...s.etcd.services.get('web')!.spec!, replicas: 2 } });
    s.leader.onChange(change({ services: new Set(['web']) }));
    await s.clock.advance(MIN_DEBOUNCE_MS, s.leader);
    assert.equal(tasksOf(s.etcd, 'web').length, 2);
    assert.equal(tasksOf(s.etcd, 'api').length, 0, 'not dirty: not looked at');
    await s.clock.advance(FULL_TICK_MS, s.leader);
    assert.equal(tasksOf(s.etcd, 'api').length, 1, 'the full tick');
  });

  it('coalesces changes during a running tick into one more tick after it', async () => {
    const s = setup();
    leader = s.leader;
    s.etcd.services.set('web', service('web', { replicas: 1 }));
    s.leader.start();
    let open!: () => void;
    s.etcd.gate = new Promise((r) => (open = r));
    s.clock.fire(0);
    for (let i = 0; i < 50 && !s.etcd.batches.length; i++) await new Promise((r) => setImmediate(r));
    assert.equal(s.etcd.batches.length, 1, 'the first tick is committing');
    for (const id of ['x', 'y', 'z']) {
      s.etcd.services.set(id, service(id, { replicas: 1 }));
      s.leader.onChange(change({ services: new Set([id]) }));
    }
    s.clock.fire(MIN_DEBOUNCE_MS * 3);
    assert.equal(s.ticks.length, 0, 'the first tick is still running');
    assert.equal(s.etcd.batches.length, 1, 'no second tick alongside it');
    s.etcd.gate = undefined;
    open();
    await s.leader.idle();
    await new Promise((r) => setImmediate(r));
    await s.clock.advance(0, s.leader);
    assert.equal(s.ticks.length, 2, 'the running tick, then one tick for the three changes');
    for (const id of ['x', 'y', 'z']) assert.equal(tasksOf(s.etcd, id).length, 1);
  });

  it('wakes at wakeAt: a node whose key is gone is marked down when its grace period ends', async () => {
    const s = setup();
    leader = s.leader;
    s.etcd.nodes.set('b', { ...node('b'), status: { state: 'NODE_READY', message: '', addr: '', updatedAt: s.clock.now() } });
    s.leader.start();
    await s.clock.advance(0, s.leader);
    assert.equal(s.etcd.nodes.get('b')?.status?.state, 'NODE_READY', 'a new session gets its grace period');
    const wake = s.clock.next();
    assert.ok(wake < s.clock.now() + FULL_TICK_MS, 'a tick is due before the periodic one');
    await s.clock.advance(wake - s.clock.now(), s.leader);
    assert.equal(s.etcd.nodes.get('b')?.status?.state, 'NODE_DOWN');
    assert.deepEqual(
      s.events.filter((e) => e.type === 'node').map((e) => e.type === 'node' && [e.action, e.nodeId]),
      [['down', 'b']],
    );
  });

  it('retries only the object whose compare failed, without a full re-sync', async () => {
    const s = setup();
    leader = s.leader;
    s.etcd.services.set('web', service('web', { replicas: 2 }));
    s.etcd.services.set('api', service('api', { replicas: 1 }));
    s.leader.start();
    await s.clock.advance(0, s.leader);
    const [w1, w2] = tasksOf(s.etcd, 'web');
    // Scaled to 0, both web tasks are told to stop; an agent reports one of them running meanwhile.
    let refusedOnce = false;
    s.etcd.conflict = (ws) => {
      const hit = ws.find((w) => w.obj.id === w1.id);
      if (!hit || refusedOnce) return [];
      refusedOnce = true;
      s.etcd.touch(w1.id, (t) => ({ ...t, status: { ...t.status!, state: 'RUNNING', message: 'started' } }));
      return [hit];
    };
    s.etcd.services.set('web', { ...s.etcd.services.get('web')!, spec: { ...s.etcd.services.get('web')!.spec!, replicas: 0 } });
    s.leader.onChange(change({ services: new Set(['web']) }));
    await s.clock.advance(MIN_DEBOUNCE_MS, s.leader);
    const first = s.etcd.batches.at(-1)!;
    assert.deepEqual(first.map((w) => w.obj.id).sort(), [w1.id, w2.id].sort(), 'scale to 0: both web tasks written');
    assert.equal(s.etcd.tasks.get(w2.id)?.desiredState, 'SHUTDOWN', 'the other write of the chunk is committed');
    assert.equal(s.etcd.tasks.get(w1.id)?.desiredState, 'RUNNING', 'the conflicting one is not');
    const newer = s.etcd.tasks.get(w1.id)!.meta!.version;

    await s.clock.advance(MIN_DEBOUNCE_MS, s.leader);
    const retry = s.etcd.batches.at(-1)!;
    assert.deepEqual(retry.map((w) => w.obj.id), [w1.id], 'the retry writes just the object that conflicted');
    assert.equal(retry[0].obj.meta?.version, newer, 'computed from its newer version');
    assert.equal(s.etcd.tasks.get(w1.id)?.desiredState, 'SHUTDOWN');
    assert.equal(s.etcd.syncs, 1, 'no re-sync with etcd');
  });

  it('re-syncs everything when writes are lost without a conflict to name them', async () => {
    const s = setup();
    leader = s.leader;
    s.etcd.services.set('web', service('web', { replicas: 1 }));
    s.leader.start();
    const batch = s.etcd.batch.bind(s.etcd);
    let lose = true;
    s.etcd.batch = async (ws) => {
      if (!lose) return batch(ws);
      lose = false;
      s.etcd.batches.push(ws);
      return { committed: 0, dropped: ws.length, revision: 0 };
    };
    await s.clock.advance(0, s.leader);
    assert.equal(tasksOf(s.etcd, 'web').length, 0);
    await s.clock.advance(MIN_DEBOUNCE_MS, s.leader);
    assert.equal(s.etcd.syncs, 2, 'caught up with etcd again');
    assert.equal(tasksOf(s.etcd, 'web').length, 1, 'and recomputed');
  });

  it('backs off on a full store (etcd NOSPACE): retries every few seconds, warns once, resumes when space is back', async () => {
    const s = setup();
    leader = s.leader;
    s.etcd.services.set('web', service('web', { replicas: 1 }));
    const warnings: string[] = [];
    const log = { ...nullLogger, warn: (msg: string) => warnings.push(msg), child: () => log };
    const l = createLeader({ store: s.etcd, cache: s.etcd, managerId: 'm1', log, observer: nullObserver, autoscaler: nullAutoscaler, clock: s.clock, reconcile: { newId: counter('t') } });
    leader = l;
    const batch = s.etcd.batch.bind(s.etcd);
    let storeFull = true;
    let attempts = 0;
    s.etcd.batch = async (ws) => {
      if (!storeFull) return batch(ws);
      attempts++;
      throw new StoreFullError('the cluster store is full (etcd NOSPACE)');
    };
    l.start();
    await s.clock.advance(0, l);
    assert.equal(attempts, 1);
    await s.clock.advance(20_000, l);
    assert.ok(attempts >= 4 && attempts <= 5, `one attempt per ~5 s, not a spin (${attempts} in 20 s)`);
    assert.equal(warnings.filter((w) => w === 'reconcile failed').length, 1, 'warned once');
    storeFull = false;
    await s.clock.advance(5_000, l);
    assert.equal(tasksOf(s.etcd, 'web').length, 1, 'resumed once writes land again');
  });

  describe('scheduled jobs (docs/jobs.md)', () => {
    const cronJob = (id: string, schedule: string, createdAt: number): Service => {
      const svc = service(id, { mode: 'REPLICATED_JOB', replicas: 1, job: { maxConcurrent: 0, schedule, timezone: 'UTC', concurrencyPolicy: 'CONCURRENCY_ALLOW', historyLimit: 3, startingDeadlineMs: 0 } });
      return { ...svc, meta: { version: 1, createdAt, updatedAt: createdAt } };
    };
    const jobEvents = (evs: ConvoyEvent[]) => evs.filter((e) => e.type === 'service' && e.action.startsWith('job-')).map((e) => e.type === 'service' && [e.action, e.iteration, e.time]);

    it('sets a timer for the fire time (wakeAt) and starts the run exactly then, with an event', async () => {
      const s = setup();
      leader = s.leader;
      // The fake clock starts at 1,000,000 ms (00:16:40 UTC on day 0): the next 00:17 is 1,020,000.
      s.etcd.services.set('c', cronJob('c', '17 0 * * *', s.clock.now()));
      s.leader.start();
      await s.clock.advance(0, s.leader);
      assert.equal(tasksOf(s.etcd, 'c').length, 0, 'nothing at creation');
      await s.clock.advance(1_020_000 - 1 - s.clock.now(), s.leader);
      assert.equal(tasksOf(s.etcd, 'c').length, 0, 'nothing before the fire time');
      assert.equal(s.clock.next(), 1_020_000, 'a timer at the fire time');
      await s.clock.advance(1, s.leader);
      assert.equal(tasksOf(s.etcd, 'c').length, 1);
      assert.equal(s.ticks.at(-1), 1_020_000, 'the tick ran at the fire time, not at the next periodic one');
      assert.deepEqual(jobEvents(s.events), [['job-started', 1, 1_020_000]]);
      assert.equal(s.etcd.services.get('c')!.jobStatus!.lastScheduleAt, 1_020_000);
    });

    it('a leader taking over after missed fires starts one run for the latest, once', async () => {
      const s = setup();
      leader = s.leader;
      // Created at 00:00; last fire handled at 00:01; no leader since: fires at 00:02 .. 00:16 missed.
      const svc = cronJob('c', '* * * * *', 0);
      s.etcd.services.set('c', { ...svc, jobStatus: { iteration: 0, specVersion: 1, startedAt: 0, lastScheduleAt: 60_000, runRequested: false, message: '', finishedIteration: 0, finishedAt: 0, finishedOk: false } });
      s.leader.start();
      await s.clock.advance(0, s.leader);
      const ts = tasksOf(s.etcd, 'c');
      assert.equal(ts.length, 1, 'one catch-up run, not fifteen');
      assert.equal(ts[0].jobIteration, 1);
      assert.equal(s.etcd.services.get('c')!.jobStatus!.lastScheduleAt, 960_000, 'the latest missed fire (00:16)');
      assert.match(s.etcd.services.get('c')!.jobStatus!.message, /missed fire at 1970-01-01 00:16:00 UTC/);
      await s.clock.advance(FULL_TICK_MS * 3, s.leader);
      assert.equal(tasksOf(s.etcd, 'c').length, 1, 'no further run before 00:17');
      assert.deepEqual(jobEvents(s.events).map((e) => e && e[0]), ['job-started']);
    });
  });

  describe('on the in-memory Store and a real StateCache', () => {
    let store: MemoryStore | undefined;
    let cache: StateCache | undefined;
    afterEach(async () => {
      await cache?.close();
      await store?.close();
    });

    it('places a service; a write racing its commit costs one re-reconcile from the newer version, not a re-sync', async () => {
      const clock = new FakeClock();
      store = new MemoryStore({ now: () => clock.now() });
      await store.put('cluster', cluster(), true);
      await store.put('nodes', node('a'), true);
      const lease = await store.grantLease(3600);
      await lease.put('alive', 'a', '1');
      await store.createService(service('web', { replicas: 3 }));
      cache = new StateCache(store, nullLogger);
      await cache.start();
      const batches: string[][] = [];
      const raced = new Set<string>();
      const real = store;
      const racing = {
        syncRevision: (who: string) => real.syncRevision(who),
        async batch(ws: Write[]): Promise<BatchResult> {
          batches.push(ws.filter((w) => w.kind === 'tasks').map((w) => w.obj.id));
          // An agent reports the first stopping task meanwhile: its write lands first.
          const hit = ws.find((w) => isTask(w.obj) && w.obj.desiredState === 'SHUTDOWN');
          if (hit && !raced.size) {
            raced.add(hit.obj.id);
            await real.update<Task>('tasks', hit.obj.id, (t) => t && { ...t, status: { ...t.status!, state: 'RUNNING', message: 'started' } });
          }
          return real.batch(ws);
        },
      };
      const l = createLeader({ store: racing, cache, managerId: 'm1', log: nullLogger, observer: nullObserver, autoscaler: nullAutoscaler, clock, reconcile: { newId: counter('t') } });
      leader = l;
      cache.onChange((c) => l.onChange(c));
      l.start();
      await clock.advance(0, l);
      const tasks = () => [...cache!.tasks.values()];
      assert.equal(tasks().filter((t) => t.status?.state === 'ASSIGNED' && t.nodeId === 'a').length, 3);

      await store.update<Service>('services', 'web', (s) => s && { ...s, spec: { ...s.spec!, replicas: 1 } });
      for (let i = 0; i < 5; i++) await clock.advance(MIN_DEBOUNCE_MS, l);
      const [racedId] = [...raced];
      assert.ok(racedId, 'a write raced the commit');
      assert.equal(batches.length, 3, 'create; stop two; retry');
      assert.equal(batches[1].length, 2, 'scale 3 → 1: two tasks told to stop in one batch');
      assert.ok(batches[1].includes(racedId));
      assert.equal(batches[2].length, 1, 'the retry writes one task, not the slot already committed');
      // Re-reconciled from the newer version: the task now running stays (running tasks are the last
      // to go in a scale-down), and another one stops in its place.
      assert.notEqual(batches[2][0], racedId);
      assert.equal(cache.tasks.get(racedId)?.status?.state, 'RUNNING', "the agent's report is kept");
      assert.equal(cache.tasks.get(racedId)?.desiredState, 'RUNNING');
      assert.equal(tasks().filter((t) => t.desiredState === 'SHUTDOWN').length, 2);
    });
  });
});
