// The job orchestrator through reconcile() on the simulated store: runs to
// completion, retries by the restart policy, max concurrency, new runs on a
// new spec version, global jobs per node, schedules (concurrency policies,
// missed fires on a leader takeover, the starting deadline), run history,
// and the events each run makes.
import { strict as assert } from 'node:assert';
import type { JobSpec, Service, ServiceSpec, Task } from '../../proto/mod';
import { eventsFor } from '../events';
import { node, service, Sim } from './testing/fixtures';

const job = (id: string, s: Partial<ServiceSpec> = {}, j: Partial<JobSpec> = {}) =>
  service(id, { mode: 'REPLICATED_JOB', replicas: 3, restart: { condition: 'RESTART_ON_FAILURE', delayMs: 0, maxAttempts: 0, windowMs: 0 }, ...s, job: { maxConcurrent: 0, schedule: '', timezone: '', concurrencyPolicy: 'CONCURRENCY_ALLOW', historyLimit: 3, startingDeadlineMs: 0, ...j } });
const cronJob = (id: string, schedule: string, j: Partial<JobSpec> = {}, s: Partial<ServiceSpec> = {}) => job(id, { replicas: 1, ...s }, { schedule, timezone: 'UTC', ...j });
const complete = (s: Sim, pick: (t: Task) => boolean = () => true) => s.report((t) => t.status?.state === 'RUNNING' && pick(t), 'COMPLETE', { exitCode: 0 });
const fail = (s: Sim, pick: (t: Task) => boolean = () => true) => s.report((t) => t.status?.state === 'RUNNING' && pick(t), 'FAILED', { exitCode: 1, err: 'exit code 1' });
const js = (s: Sim, id: string) => s.services.get(id)!.jobStatus!;
/** Ticks and returns the events the tick's writes make (as the leader reports them). */
function tickEvents(s: Sim) {
  const before = s.snapshot();
  const r = s.tick();
  return eventsFor(before, r.writes, { now: s.now, source: 'manager/m0' });
}
const jobEventsOf = (evs: ReturnType<typeof tickEvents>) => evs.filter((e) => e.type === 'service' && e.action.startsWith('job-')).map((e) => (e.type === 'service' ? `${e.action}:${e.iteration}` : ''));

describe('replicated job', () => {
  it('runs replicas tasks to completion: completed tasks are never restarted, the run finishes', () => {
    const s = new Sim({ services: [job('j', {}, {})], nodes: [node('a'), node('b')] });
    assert.deepEqual(jobEventsOf(tickEvents(s)), ['job-started:1']);
    assert.equal(s.live('j').length, 3);
    assert.ok(s.live('j').every((t) => t.jobIteration === 1));
    s.agentsRun();
    complete(s);
    const evs = tickEvents(s);
    assert.equal(s.live('j').length, 0);
    assert.ok(s.of('j').every((t) => t.desiredState === 'COMPLETE' && t.status?.state === 'COMPLETE'));
    assert.equal(js(s, 'j').finishedIteration, 1);
    assert.equal(js(s, 'j').finishedOk, true);
    assert.deepEqual(jobEventsOf(evs), ['job-completed:1']);
    assert.equal(s.settle().writes.length, 0, 'a finished run stays finished');
    assert.equal(s.of('j').length, 3);
  });

  it('even with restart condition any, exit 0 is done', () => {
    const s = new Sim({ services: [job('j', { replicas: 1, restart: { condition: 'RESTART_ANY', delayMs: 0, maxAttempts: 0, windowMs: 0 } })], nodes: [node('a')] });
    s.tick();
    s.agentsRun();
    complete(s);
    s.settle();
    assert.equal(s.of('j').length, 1);
    assert.equal(js(s, 'j').finishedOk, true);
  });

  it('retries a failed task by the restart policy (delay, max attempts), then the run fails', () => {
    const s = new Sim({ services: [job('j', { replicas: 1, restart: { condition: 'RESTART_ON_FAILURE', delayMs: 5000, maxAttempts: 2, windowMs: 0 } })], nodes: [node('a')] });
    s.tick();
    for (let i = 0; i < 2; i++) {
      s.agentsRun();
      fail(s);
      const r = s.tick();
      assert.equal(r.wakeAt, s.now + 5000, 'waits for the restart delay');
      assert.equal(s.live('j').length, 0);
      s.now += 5000;
      s.tick();
      assert.equal(s.live('j').length, 1);
      assert.equal(s.live('j')[0].attempt, i + 1);
    }
    s.agentsRun();
    fail(s);
    const evs = tickEvents(s);
    assert.equal(s.live('j').length, 0);
    assert.equal(js(s, 'j').finishedIteration, 1);
    assert.equal(js(s, 'j').finishedOk, false);
    assert.deepEqual(jobEventsOf(evs), ['job-failed:1']);
  });

  it('restart condition none: a failure is final at once', () => {
    const s = new Sim({ services: [job('j', { replicas: 2, restart: { condition: 'RESTART_NONE', delayMs: 0, maxAttempts: 0, windowMs: 0 } })], nodes: [node('a')] });
    s.tick();
    s.agentsRun();
    fail(s, (t) => t.slot === 1);
    complete(s, (t) => t.slot === 2);
    s.tick();
    assert.equal(s.of('j').length, 2);
    assert.match(js(s, 'j').message, /1 completed, 1 failed/);
  });

  it('runs at most max-concurrent tasks at once, starting the next slot as one completes', () => {
    const s = new Sim({ services: [job('j', { replicas: 5 }, { maxConcurrent: 2 })], nodes: [node('a'), node('b')] });
    s.tick();
    const seen = new Set<number>();
    for (let round = 0; round < 5 && js(s, 'j').finishedIteration === 0; round++) {
      const live = s.live('j');
      assert.ok(live.length <= 2, `round ${round}: ${live.length} running`);
      for (const t of live) seen.add(t.slot);
      s.agentsRun();
      complete(s, (t) => t.slot === Math.min(...s.live('j').map((x) => x.slot)));
      s.tick();
    }
    for (let i = 0; i < 3 && js(s, 'j').finishedIteration === 0; i++) {
      s.agentsRun();
      complete(s);
      s.tick();
    }
    assert.equal(js(s, 'j').finishedIteration, 1);
    assert.deepEqual([...seen].sort(), [1, 2, 3, 4, 5]);
    assert.equal(s.of('j').filter((t) => t.status?.state === 'COMPLETE').length, 5);
  });

  it('a new spec version (update --force) is a new run: the old run\'s tasks still going are shut down', () => {
    const s = new Sim({ services: [job('j', { replicas: 2 })], nodes: [node('a')] });
    s.tick();
    s.agentsRun();
    complete(s, (t) => t.slot === 1);
    s.tick();
    s.setService('j', (x) => ({ ...x, specVersion: 2 }));
    const evs = tickEvents(s);
    assert.deepEqual(jobEventsOf(evs), ['job-started:2']);
    const run1 = s.of('j').filter((t) => t.jobIteration === 1);
    assert.ok(run1.find((t) => t.slot === 2)!.desiredState === 'SHUTDOWN', 'run 1 slot 2 stopped');
    const run2 = s.live('j');
    assert.deepEqual(run2.map((t) => [t.slot, t.jobIteration, t.specVersion]).sort(), [
      [1, 2, 2],
      [2, 2, 2],
    ]);
    // The scheduler holds run 2's slot 2 until run 1's task there has stopped (stop-first, per slot).
    for (let i = 0; i < 3 && js(s, 'j').finishedIteration < 2; i++) {
      s.agentsRun();
      complete(s);
      s.tick();
    }
    assert.equal(js(s, 'j').finishedIteration, 2);
    assert.equal(s.of('j').filter((t) => t.jobIteration === 2 && t.status?.state === 'COMPLETE').length, 2);
  });

  it('a node that goes down: its task is orphaned and the slot runs again elsewhere, not counted as a retry', () => {
    const s = new Sim({ services: [job('j', { replicas: 1, restart: { condition: 'RESTART_NONE', delayMs: 0, maxAttempts: 0, windowMs: 0 } })], nodes: [node('a'), node('b')] });
    s.tick();
    s.agentsRun();
    const first = s.live('j')[0];
    s.setNode(first.nodeId, (n) => ({ ...n, status: { ...n.status!, state: 'NODE_DOWN' } }));
    s.tick();
    const live = s.live('j');
    assert.equal(live.length, 1);
    assert.notEqual(live[0].nodeId, first.nodeId);
    assert.equal(live[0].attempt, 0);
  });

  it('keeps the tasks of the newest history-limit finished runs and drops older runs', () => {
    const s = new Sim({ services: [job('j', { replicas: 2 }, { historyLimit: 2 })], nodes: [node('a')] });
    for (let v = 1; v <= 5; v++) {
      if (v > 1) s.setService('j', (x) => ({ ...x, specVersion: v }));
      s.tick();
      s.agentsRun();
      complete(s);
      s.tick();
    }
    const runs = [...new Set(s.of('j').map((t) => t.jobIteration))].sort();
    // The current run (5) and the two newest finished before it (3, 4).
    assert.deepEqual(runs, [3, 4, 5]);
    assert.equal(s.of('j').length, 6);
  });
});

describe('global job', () => {
  const g = () => job('g', { mode: 'GLOBAL_JOB', replicas: 0, placement: { constraints: ['node.labels.zone != dmz'], preferences: [], maxReplicasPerNode: 0, platforms: [], strategy: 'SPREAD' } });
  it('one task per eligible node; the run finishes when every node has completed', () => {
    const s = new Sim({ services: [g()], nodes: [node('a'), node('b'), node('c', { labels: { zone: 'dmz' } }), node('d', { state: 'NODE_DOWN' })] });
    s.tick();
    assert.deepEqual(s.live('g').map((t) => t.nodeId).sort(), ['a', 'b']);
    s.agentsRun();
    complete(s, (t) => t.nodeId === 'a');
    s.tick();
    assert.equal(js(s, 'g').finishedIteration, 0, 'b has not completed');
    assert.deepEqual(s.live('g').map((t) => t.nodeId), ['b']);
    // A node that joins before the run ends gets its task too.
    s.nodes.set('e', node('e'));
    s.tick();
    assert.deepEqual(s.live('g').map((t) => t.nodeId).sort(), ['b', 'e']);
    s.agentsRun();
    complete(s);
    s.tick();
    assert.equal(js(s, 'g').finishedIteration, 1);
    assert.equal(s.of('g').filter((t) => t.status?.state === 'COMPLETE').length, 3);
    // After the run: a new node gets nothing until the next run.
    s.nodes.set('f', node('f'));
    assert.equal(s.settle().writes.length, 0);
    s.setService('g', (x) => ({ ...x, specVersion: 2 }));
    s.tick();
    assert.deepEqual(s.live('g').map((t) => t.nodeId).sort(), ['a', 'b', 'e', 'f']);
  });

  it('retries a failed node task by the restart policy on the same node', () => {
    const s = new Sim({ services: [g()], nodes: [node('a')] });
    s.tick();
    s.agentsRun();
    fail(s);
    s.tick();
    const live = s.live('g');
    assert.equal(live.length, 1);
    assert.equal(live[0].nodeId, 'a');
    assert.equal(live[0].attempt, 1);
  });
});

describe('scheduled job', () => {
  // 2026-01-01T00:00:30Z: the Sim's clock starts here in these tests.
  const T0 = Date.parse('2026-01-01T00:00:30Z');
  const sim = (svc: Service, nodes = [node('a')]) => {
    const s = new Sim({ services: [svc], nodes });
    s.now = T0;
    return s;
  };

  it('does not run at creation; runs at each fire time and wakes the leader for the next', () => {
    const s = sim(cronJob('c', '*/5 * * * *'));
    const r = s.tick();
    assert.equal(s.of('c').length, 0);
    assert.equal(r.wakeAt, Date.parse('2026-01-01T00:05:00Z'));
    assert.equal(js(s, 'c').iteration, 0);
    s.now = Date.parse('2026-01-01T00:05:00Z');
    const evs = tickEvents(s);
    assert.deepEqual(jobEventsOf(evs), ['job-started:1']);
    assert.equal(s.live('c').length, 1);
    assert.equal(s.last!.wakeAt, Date.parse('2026-01-01T00:10:00Z'));
    assert.match(js(s, 'c').message, /run 1 started: scheduled 2026-01-01 00:05:00 UTC/);
    s.agentsRun();
    complete(s);
    s.tick();
    assert.equal(js(s, 'c').finishedIteration, 1);
  });

  it('reads the schedule in its time zone', () => {
    const s = sim(cronJob('c', '0 9 * * *', { timezone: 'Asia/Tokyo' }));
    const r = s.tick();
    assert.equal(new Date(r.wakeAt!).toISOString(), '2026-01-02T00:00:00.000Z', '09:00 in Tokyo is midnight UTC (the next one: T0 is just past it)');
  });

  it('concurrency policy allow: a new run starts while the last one still runs; both go on', () => {
    const s = sim(cronJob('c', '* * * * *'));
    s.tick();
    s.now = Date.parse('2026-01-01T00:01:00Z');
    s.tick();
    s.agentsRun();
    s.now = Date.parse('2026-01-01T00:02:00Z');
    s.tick();
    assert.deepEqual(s.live('c').map((t) => t.jobIteration).sort(), [1, 2]);
  });

  it('concurrency policy forbid: the fire is skipped while the last run goes on (an event says so)', () => {
    const s = sim(cronJob('c', '* * * * *', { concurrencyPolicy: 'CONCURRENCY_FORBID' }));
    s.tick();
    s.now = Date.parse('2026-01-01T00:01:00Z');
    s.tick();
    s.agentsRun();
    s.now = Date.parse('2026-01-01T00:02:00Z');
    const evs = tickEvents(s);
    assert.deepEqual(jobEventsOf(evs), ['job-skipped:1']);
    assert.match(js(s, 'c').message, /skipped: .*run 1 is still going \(concurrency policy forbid\)/);
    assert.deepEqual(s.live('c').map((t) => t.jobIteration), [1]);
    complete(s);
    s.tick();
    s.now = Date.parse('2026-01-01T00:03:00Z');
    s.tick();
    assert.deepEqual(s.live('c').map((t) => t.jobIteration), [2]);
  });

  it('concurrency policy replace: the running run is shut down and the new one starts', () => {
    const s = sim(cronJob('c', '* * * * *', { concurrencyPolicy: 'CONCURRENCY_REPLACE' }));
    s.tick();
    s.now = Date.parse('2026-01-01T00:01:00Z');
    s.tick();
    s.agentsRun();
    const old = s.live('c')[0];
    s.now = Date.parse('2026-01-01T00:02:00Z');
    s.tick();
    assert.equal(s.tasks.get(old.id)!.desiredState, 'SHUTDOWN');
    assert.match(s.tasks.get(old.id)!.status!.message, /replaced by run 2|running/);
    assert.deepEqual(s.live('c').map((t) => t.jobIteration), [2]);
  });

  it('a leader taking over after missed fires starts one run, for the latest missed fire', () => {
    const s = sim(cronJob('c', '*/10 * * * *'));
    s.tick(); // last handled: creation (00:00:30)
    // No leader from 00:00:30 to 00:47: fires at 00:10, 00:20, 00:30, 00:40 were missed.
    s.now = Date.parse('2026-01-01T00:47:00Z');
    const evs = tickEvents(s);
    assert.deepEqual(jobEventsOf(evs), ['job-started:1']);
    assert.equal(s.live('c').length, 1);
    assert.equal(js(s, 'c').lastScheduleAt, Date.parse('2026-01-01T00:40:00Z'));
    assert.match(js(s, 'c').message, /missed fire at 2026-01-01 00:40:00 UTC/);
    assert.equal(s.last!.wakeAt, Date.parse('2026-01-01T00:50:00Z'));
    assert.equal(s.tick().writes.filter((w) => w.kind === 'services').length, 0, 'no second catch-up run');
  });

  it('a missed fire older than the starting deadline starts nothing (recorded as missed)', () => {
    const s = sim(cronJob('c', '*/10 * * * *', { startingDeadlineMs: 60_000 }));
    s.tick();
    s.now = Date.parse('2026-01-01T00:47:00Z');
    const evs = tickEvents(s);
    assert.deepEqual(jobEventsOf(evs), ['job-skipped:0']);
    assert.equal(s.of('c').length, 0);
    assert.match(js(s, 'c').message, /missed: the fire at 2026-01-01 00:40:00 UTC is older than the starting deadline \(60 s\)/);
    s.now = Date.parse('2026-01-01T00:50:10Z');
    s.tick();
    assert.equal(s.live('c').length, 1, 'within the deadline: runs');
  });

  it('update --force (run requested) starts a run now; a spec change alone starts none', () => {
    const s = sim(cronJob('c', '0 0 1 1 *'));
    s.tick();
    s.setService('c', (x) => ({ ...x, specVersion: 2 }));
    s.tick();
    assert.equal(s.of('c').length, 0);
    s.setService('c', (x) => ({ ...x, specVersion: 3, jobStatus: { ...x.jobStatus!, runRequested: true } }));
    s.tick();
    assert.equal(s.live('c').length, 1);
    assert.equal(js(s, 'c').runRequested, false);
    assert.match(js(s, 'c').message, /requested/);
  });

  it('keeps the tasks of history-limit finished runs', () => {
    const s = sim(cronJob('c', '* * * * *', { historyLimit: 1 }));
    s.tick();
    for (let m = 1; m <= 4; m++) {
      s.now = Date.parse(`2026-01-01T00:0${m}:00Z`);
      s.tick();
      s.agentsRun();
      complete(s);
      s.tick();
    }
    assert.deepEqual([...new Set(s.of('c').map((t) => t.jobIteration))].sort(), [3, 4]);
  });
});
