// The progress model of the waiting verbs (progress.ts): task lists in, lines,
// N/M, events and verdicts out; the printer's two forms; the wait loop on a
// scripted Control API with a fake clock.
import { strict as assert } from 'node:assert';
import type { Service, Task, TaskStateName } from '../../proto/mod';
import type { CliIO, ControlApi } from '../client';
import { ConvergeTracker, ProgressPrinter, describeTask, waitForServices, type ProgressView } from './progress';

type UpdState = NonNullable<Service['updateStatus']>['state'];

function svc(o: { replicas?: number; global?: boolean; specVersion?: number; update?: [UpdState, number, string?]; monitorMs?: number; updatedAt?: number } = {}): Service {
  return {
    id: 'svc1',
    meta: { version: 1, createdAt: 1000, updatedAt: o.updatedAt ?? 1000 },
    spec: { name: 'web', mode: o.global ? 'GLOBAL' : 'REPLICATED', replicas: o.replicas ?? 3, update: o.monitorMs ? { monitorMs: o.monitorMs } : null },
    specVersion: o.specVersion ?? 1,
    updateStatus: o.update ? { state: o.update[0], startedAt: o.update[1], completedAt: 0, message: o.update[2] ?? '' } : null,
  } as unknown as Service;
}

let seq = 0;
function task(slot: number, state: TaskStateName, o: { sv?: number; desired?: TaskStateName; at?: number; err?: string; message?: string; health?: string; node?: string; healthcheck?: boolean; id?: string } = {}): Task {
  const at = o.at ?? 2000 + seq++;
  return {
    id: o.id ?? `task${String(seq).padStart(4, '0')}abcdefgh`,
    meta: { version: 1, createdAt: at, updatedAt: at },
    serviceId: 'svc1',
    serviceName: 'web',
    slot,
    nodeId: o.node ?? '',
    spec: { container: { image: 'img', healthcheck: o.healthcheck ? { test: ['CMD', 'true'] } : null } },
    specVersion: o.sv ?? 1,
    status: { state, timestamp: at, message: o.message ?? state.toLowerCase(), err: o.err ?? '', exitCode: 0, pid: 0, health: o.health ?? '' },
    desiredState: o.desired ?? 'RUNNING',
    attempt: 0,
  } as unknown as Task;
}

describe('progress: the convergence model', () => {
  it('one line per slot with its state and reason, and N/M', () => {
    const t = new ConvergeTracker('create', svc());
    const v = t.step({
      service: svc(),
      tasks: [task(1, 'RUNNING'), task(2, 'PENDING', { message: 'no suitable node: insufficient memory on 3 nodes' }), task(3, 'PREPARING')],
      now: 0,
    });
    assert.equal(v.title, 'web: overall progress: 1/3 tasks running');
    assert.deepEqual(v.lines, ['1/3: running', '2/3: pending  no suitable node: insufficient memory on 3 nodes', '3/3: preparing']);
    assert.equal(v.running, 1);
    assert.equal(v.desired, 3);
    assert.equal(v.verdict, undefined);
    assert.equal(v.verify, undefined);
  });

  it('converged after the verify period (the update monitor), not before; a relapse starts the period again', () => {
    const s = svc({ replicas: 2, monitorMs: 3000 });
    const t = new ConvergeTracker('create', s);
    const up = [task(1, 'RUNNING'), task(2, 'RUNNING')];
    const v1 = t.step({ service: s, tasks: up, now: 10_000 });
    assert.equal(v1.verify, 'verify: Waiting 3 seconds to verify that tasks are stable...');
    assert.equal(v1.verdict, undefined);
    const down = [task(1, 'RUNNING'), task(2, 'FAILED', { err: 'exit code 1' })];
    const v2 = t.step({ service: s, tasks: down, now: 12_000 });
    assert.equal(v2.verify, undefined, 'not converged any more');
    assert.deepEqual(v2.events, [`web.2: task ${down[1].id.slice(0, 12)} failed: exit code 1`]);
    const again = [...down, task(2, 'RUNNING')];
    assert.equal(t.step({ service: s, tasks: again, now: 13_000 }).verdict, undefined);
    assert.equal(t.step({ service: s, tasks: again, now: 15_999 }).verdict, undefined, '2.999 s stable is not enough');
    assert.deepEqual(t.step({ service: s, tasks: again, now: 16_000 }).verdict, { ok: true, message: 'converged' });
  });

  it('Docker\'s 5 s when the service sets no monitor', () => {
    const s = svc({ replicas: 1 });
    const t = new ConvergeTracker('scale', s);
    assert.match(t.step({ service: s, tasks: [task(1, 'RUNNING')], now: 0 }).verify ?? '', /Waiting 5 seconds/);
  });

  it('a task with a healthcheck counts once healthy; an unhealthy one is reported once', () => {
    const s = svc({ replicas: 1 });
    const t = new ConvergeTracker('create', s, 0);
    const starting = task(1, 'RUNNING', { healthcheck: true, health: 'starting', id: 'aaaaaaaaaaaaaaaa' });
    const v1 = t.step({ service: s, tasks: [starting], now: 0 });
    assert.equal(v1.running, 0);
    assert.deepEqual(v1.lines, ['1/1: running (starting)']);
    const sick = { ...starting, status: { ...starting.status!, health: 'unhealthy', message: 'health: unhealthy' } } as Task;
    assert.deepEqual(t.step({ service: s, tasks: [sick], now: 1 }).events, ['web.1: task aaaaaaaaaaaa unhealthy']);
    assert.deepEqual(t.step({ service: s, tasks: [sick], now: 2 }).events, [], 'once per task');
    const well = { ...starting, status: { ...starting.status!, health: 'healthy' } } as Task;
    assert.deepEqual(t.step({ service: s, tasks: [well], now: 3 }).verdict, { ok: true, message: 'converged' });
  });

  it('failures from before the command are history: not reported', () => {
    const s = svc({ replicas: 1, updatedAt: 5000 });
    const t = new ConvergeTracker('scale', s, 0);
    const v = t.step({ service: s, tasks: [task(1, 'FAILED', { at: 4000, err: 'old' }), task(1, 'PENDING', { at: 5500 })], now: 0 });
    assert.deepEqual(v.events, []);
    assert.deepEqual(v.lines, ['1/1: pending'], 'the newest task of the slot');
  });

  it('every slot rejected ends the wait, with the reason', () => {
    const s = svc({ replicas: 2 });
    const t = new ConvergeTracker('create', s);
    const v1 = t.step({ service: s, tasks: [task(1, 'REJECTED', { err: 'pull access denied for img' }), task(2, 'PENDING')], now: 0 });
    assert.equal(v1.verdict, undefined, 'one slot still has a chance');
    assert.equal(v1.events.length, 1);
    assert.match(v1.events[0], /^web\.1: task \w{12} rejected: pull access denied for img$/);
    const v2 = t.step({ service: s, tasks: [task(1, 'REJECTED', { err: 'pull access denied for img' }), task(2, 'REJECTED', { err: 'pull access denied for img' })], now: 1 });
    assert.deepEqual(v2.verdict, { ok: false, message: 'every task rejected: pull access denied for img' });
  });

  it('an update: old-spec slots marked, done when the manager completes it (already monitored)', () => {
    const base = svc({ specVersion: 2, update: ['UPDATING', 9000, 'update in progress'], replicas: 2 });
    const t = new ConvergeTracker('update', base);
    const mid = [task(1, 'RUNNING', { sv: 2 }), task(2, 'RUNNING', { sv: 1 })];
    const v1 = t.step({ service: base, tasks: mid, now: 0 });
    assert.deepEqual(v1.lines, ['1/2: running', '2/2: running (old spec)']);
    assert.equal(v1.running, 1);
    const all = [task(1, 'RUNNING', { sv: 2 }), task(2, 'SHUTDOWN', { sv: 1, desired: 'SHUTDOWN' }), task(2, 'RUNNING', { sv: 2 })];
    const v2 = t.step({ service: base, tasks: all, now: 1 });
    assert.equal(v2.verdict, undefined, 'UPDATING: not converged yet, whatever the tasks say');
    assert.equal(v2.verify, undefined);
    const done = svc({ specVersion: 2, update: ['UPDATE_COMPLETED', 9000, 'update completed'], replicas: 2 });
    assert.deepEqual(t.step({ service: done, tasks: all, now: 2 }).verdict, { ok: true, message: 'converged' });
  });

  it('an update that pauses fails with the manager\'s reason', () => {
    const base = svc({ specVersion: 2, update: ['UPDATING', 9000] });
    const t = new ConvergeTracker('update', base);
    const paused = svc({ specVersion: 2, update: ['UPDATE_PAUSED', 9000, 'update paused: task x (slot 1) failed: exit code 1'] });
    assert.deepEqual(t.step({ service: paused, tasks: [], now: 0 }).verdict, { ok: false, message: 'update paused: task x (slot 1) failed: exit code 1' });
  });

  it('an update that rolls back: "rolling back" as it happens, then fails with "rolled back: <why>"', () => {
    const base = svc({ specVersion: 2, update: ['UPDATING', 9000], replicas: 1 });
    const t = new ConvergeTracker('update', base);
    const failed = task(1, 'FAILED', { sv: 2, err: 'exit code 1', at: 9100 });
    const v1 = t.step({ service: base, tasks: [failed], now: 0 });
    assert.match(v1.events[0], /web\.1: task \w+ failed: exit code 1/);
    const rb = svc({ specVersion: 3, update: ['ROLLBACK_STARTED', 9200, `rollback started: update failed: task ${failed.id} (slot 1) failed: exit code 1`], replicas: 1 });
    const v2 = t.step({ service: rb, tasks: [failed, task(1, 'STARTING', { sv: 3 })], now: 1 });
    assert.deepEqual(v2.events, [`web: rolling back: update failed: task ${failed.id} (slot 1) failed: exit code 1`]);
    assert.equal(v2.verdict, undefined);
    const rolled = svc({ specVersion: 3, update: ['ROLLBACK_COMPLETED', 9200, 'rollback completed'], replicas: 1 });
    assert.deepEqual(t.step({ service: rolled, tasks: [failed, task(1, 'RUNNING', { sv: 3 })], now: 2 }).verdict, {
      ok: false,
      message: `rolled back: update failed: task ${failed.id} (slot 1) failed: exit code 1`,
    });
  });

  it('a rollback seen only once completed: the reason the manager kept', () => {
    const base = svc({ specVersion: 2, update: ['UPDATING', 9000], replicas: 1 });
    const t = new ConvergeTracker('update', base);
    const rolled = svc({ specVersion: 3, update: ['ROLLBACK_COMPLETED', 9200, 'rollback completed: update failed: task t (slot 1) failed: exit code 1'], replicas: 1 });
    assert.deepEqual(t.step({ service: rolled, tasks: [task(1, 'RUNNING', { sv: 3 })], now: 0 }).verdict, { ok: false, message: 'rolled back: update failed: task t (slot 1) failed: exit code 1' });
  });

  it('a manual rollback that completes is a success', () => {
    const base = svc({ specVersion: 3, update: ['ROLLBACK_STARTED', 9000, 'manually requested rollback'], replicas: 1 });
    const t = new ConvergeTracker('rollback', base);
    const done = svc({ specVersion: 3, update: ['ROLLBACK_COMPLETED', 9000, 'rollback completed'], replicas: 1 });
    const v = t.step({ service: done, tasks: [task(1, 'RUNNING', { sv: 3 })], now: 0 });
    assert.deepEqual(v.events, []);
    assert.deepEqual(v.verdict, { ok: true, message: 'converged' });
  });

  it('an earlier update\'s outcome is not this command\'s: a scale after a rollback converges', () => {
    const s = svc({ specVersion: 3, update: ['ROLLBACK_COMPLETED', 9000, 'rollback completed'], replicas: 1 });
    const t = new ConvergeTracker('scale', s, 0);
    assert.deepEqual(t.step({ service: s, tasks: [task(1, 'RUNNING', { sv: 3 })], now: 0 }).verdict, { ok: true, message: 'converged' });
  });

  it('scale down: converged once the removed slots have stopped', () => {
    const s = svc({ replicas: 1 });
    const t = new ConvergeTracker('scale', s, 0);
    const v1 = t.step({ service: s, tasks: [task(1, 'RUNNING'), task(2, 'RUNNING', { desired: 'SHUTDOWN' })], now: 0 });
    assert.equal(v1.title, 'web: overall progress: 1/1 tasks running, 1 stopping');
    assert.deepEqual(v1.lines, ['1/1: running'], 'a slot being removed has no line');
    assert.equal(v1.verdict, undefined);
    assert.deepEqual(t.step({ service: s, tasks: [task(1, 'RUNNING'), task(2, 'SHUTDOWN', { desired: 'SHUTDOWN' })], now: 1 }).verdict, { ok: true, message: 'converged' });
  });

  it('global: one line per node, by hostname; N/M over the nodes that have a task', () => {
    const s = svc({ global: true });
    const t = new ConvergeTracker('create', s);
    const names = new Map([
      ['n1', 'h1'],
      ['n2', 'h2'],
    ]);
    const v = t.step({ service: s, tasks: [task(0, 'RUNNING', { node: 'n2' }), task(0, 'REJECTED', { node: 'n1', err: 'no such image' })], nodeNames: names, now: 0 });
    assert.deepEqual(v.lines, ['h1: rejected  no such image', 'h2: running']);
    assert.equal(v.title, 'web: overall progress: 1/2 tasks running');
    assert.match(v.events[0], /^web on h1: task \w+ rejected: no such image$/);
  });

  it('many replicas: N/M only, no slot lines', () => {
    const s = svc({ replicas: 50 });
    const v = new ConvergeTracker('scale', s).step({ service: s, tasks: Array.from({ length: 50 }, (_, i) => task(i + 1, 'RUNNING')), now: 0 });
    assert.deepEqual(v.lines, []);
    assert.equal(v.running, 50);
  });

  it('describeTask cuts a long reason and keeps it on one line', () => {
    const d = describeTask(task(1, 'FAILED', { err: 'x'.repeat(500) + '\nsecond line' }), 1);
    assert.ok(!d.includes('\n'));
    assert.ok(d.length < 200, String(d.length));
  });
});

describe('progress: printing', () => {
  const view = (o: Partial<ProgressView>): ProgressView => ({ service: 'web', title: 'web: overall progress: 0/2 tasks running', lines: [], running: 0, desired: 2, events: [], ...o });

  it('not a terminal: one plain line per change, no escape codes', () => {
    let out = '';
    const p = new ProgressPrinter((s) => void (out += s), undefined);
    p.draw([view({ lines: ['1/2: pending', '2/2: pending'] })]);
    p.draw([view({ lines: ['1/2: pending', '2/2: pending'] })]);
    p.draw([view({ title: 'web: overall progress: 1/2 tasks running', lines: ['1/2: running', '2/2: pending'], events: ['web.2: task x rejected: nope'] })]);
    p.draw([view({ title: 'web: overall progress: 2/2 tasks running', lines: ['1/2: running', '2/2: running'], verify: 'verify: Waiting 5 seconds to verify that tasks are stable...' })]);
    p.draw([view({ title: 'web: overall progress: 2/2 tasks running', lines: ['1/2: running', '2/2: running'], verdict: { ok: true, message: 'converged' } })]);
    assert.equal(
      out,
      [
        'web: overall progress: 0/2 tasks running',
        'web: 1/2: pending',
        'web: 2/2: pending',
        'web.2: task x rejected: nope',
        'web: overall progress: 1/2 tasks running',
        'web: 1/2: running',
        'web: overall progress: 2/2 tasks running',
        'web: 2/2: running',
        'web: verify: Waiting 5 seconds to verify that tasks are stable...',
        'web: verify: converged',
        '',
      ].join('\n'),
    );
    assert.ok(!out.includes('\x1b'));
  });

  it('a terminal: the block is redrawn in place (cursor up, clear), events stay above it, lines cut to the width', () => {
    let out = '';
    const p = new ProgressPrinter((s) => void (out += s), 30);
    p.draw([view({ lines: ['1/2: pending', '2/2: pending  ' + 'x'.repeat(40)] })]);
    const first = out;
    assert.ok(!first.includes('\x1b'), 'nothing to move over the first time');
    assert.equal(first.split('\n').length - 1, 3);
    assert.ok(first.split('\n').every((l) => l.length <= 29));
    out = '';
    p.draw([view({ lines: ['1/2: running', '2/2: running'], events: ['web.2: failed'], verdict: { ok: true, message: 'converged' } })]);
    assert.ok(out.startsWith('\x1b[3A\r\x1b[J'), JSON.stringify(out.slice(0, 12)));
    assert.equal(out.slice('\x1b[3A\r\x1b[J'.length), 'web.2: failed\nweb: overall progress: 0/2 t…\n  1/2: running\n  2/2: running\nverify: converged\n');
  });

  it('a terminal too short for the block: the slot lines are dropped, the overall lines stay', () => {
    let out = '';
    const p = new ProgressPrinter((s) => void (out += s), 80, 4);
    p.draw([view({ lines: ['1/2: pending', '2/2: pending'] }), view({ service: 'api', title: 'api: overall progress: 0/2 tasks running', lines: ['1/2: pending', '2/2: pending'] })]);
    assert.equal(out, 'web: overall progress: 0/2 tasks running\napi: overall progress: 0/2 tasks running\n');
  });
});

describe('progress: waiting on the Control API', () => {
  function harness(script: { service: Service; tasks: Task[] }[], o: { terminal?: boolean } = {}) {
    let now = 0;
    let i = 0;
    let out = '';
    let err = '';
    let code = 0;
    const calls: string[] = [];
    const api = {
      getService: async () => {
        calls.push('getService');
        return { service: script[Math.min(i, script.length - 1)].service, counts: null };
      },
      listTasks: async () => {
        calls.push('listTasks');
        return { tasks: script[Math.min(i, script.length - 1)].tasks, nextPageToken: '' };
      },
    } as unknown as ControlApi;
    const io = {
      out: (s: string) => void (out += s),
      err: (s: string) => void (err += s),
      now: () => now,
      env: {},
      connect: () => ({ api, close: () => undefined }),
      setExitCode: (c: number) => void (code = c),
      terminal: o.terminal ? () => ({ columns: 100 }) : undefined,
    } as CliIO;
    const sleep = async (ms: number) => {
      now += ms;
      i++;
    };
    return { io, api, sleep, out: () => out, err: () => err, code: () => code, calls, polls: () => i };
  }

  it('polls until converged and stable, then says so; exit status 0', async () => {
    const s = svc({ replicas: 1, monitorMs: 1000 });
    const h = harness([
      { service: s, tasks: [] },
      { service: s, tasks: [task(1, 'PENDING')] },
      { service: s, tasks: [task(1, 'RUNNING', { id: 'r1' })] },
    ]);
    assert.equal(await waitForServices(h.io, h.api, [s], 'create', { sleep: h.sleep, pollMs: 500 }), true);
    assert.equal(h.code(), 0);
    assert.equal(h.err(), '');
    assert.match(h.out(), /web: 1\/1: pending\nweb: overall progress: 1\/1 tasks running\nweb: 1\/1: running\nweb: verify: Waiting 1 second to[^\n]*\nweb: verify: converged\n$/);
    // Converged at poll 2 (t = 1 s), stable at t = 2 s: polls 2, 3, 4.
    assert.equal(h.polls(), 4);
  });

  it('a rollback of the update: the reason on stderr, exit status 1', async () => {
    const base = svc({ specVersion: 2, update: ['UPDATING', 9000], replicas: 1 });
    const rolled = svc({ specVersion: 3, update: ['ROLLBACK_COMPLETED', 9200, 'rollback completed'], replicas: 1 });
    const h = harness([
      { service: svc({ specVersion: 3, update: ['ROLLBACK_STARTED', 9200, 'rollback started: update failed: task t (slot 1) failed: exit code 1'], replicas: 1 }), tasks: [] },
      { service: rolled, tasks: [task(1, 'RUNNING', { sv: 3 })] },
    ]);
    assert.equal(await waitForServices(h.io, h.api, [base], 'update', { sleep: h.sleep }), false);
    assert.equal(h.code(), 1);
    assert.equal(h.err(), 'convoy: web: rolled back: update failed: task t (slot 1) failed: exit code 1\n');
    assert.match(h.out(), /web: rolling back: update failed/);
  });

  it('--timeout: gives up with N/M, exit status 1', async () => {
    const s = svc({ replicas: 2 });
    const h = harness([{ service: s, tasks: [task(1, 'RUNNING'), task(2, 'PENDING', { message: 'no suitable node: insufficient memory on 1 node' })] }]);
    assert.equal(await waitForServices(h.io, h.api, [s], 'create', { sleep: h.sleep, pollMs: 500, timeoutMs: 2000 }), false);
    assert.equal(h.err(), 'convoy: web: timed out after 2s: 1/2 tasks running\n');
    assert.equal(h.polls(), 4, 'gave up at t = 2 s');
  });

  it('quiet: nothing printed, the verdict still decides', async () => {
    const s = svc({ replicas: 1 });
    const h = harness([{ service: s, tasks: [task(1, 'RUNNING')] }]);
    assert.equal(await waitForServices(h.io, h.api, [s], 'scale', { sleep: h.sleep, quiet: true, verifyMs: 0 }), true);
    assert.equal(h.out(), '');
  });

  it('Ctrl-C while waiting: says the change goes on and where to look; the handler is removed after', async () => {
    const s = svc({ replicas: 1 });
    const h = harness([{ service: s, tasks: [task(1, 'RUNNING')] }]);
    let said: (() => void) | undefined;
    let removed = false;
    h.io.onInterrupt = (say) => {
      said = say;
      return () => void (removed = true);
    };
    await waitForServices(h.io, h.api, [s], 'scale', { sleep: h.sleep, verifyMs: 0 });
    said!();
    assert.equal(h.err(), '\nconvoy: stopped watching; the change goes on (convoy service ps web)\n');
    assert.ok(removed);
  });

  it('on a terminal the output has the redraws', async () => {
    const s = svc({ replicas: 1 });
    const h = harness([{ service: s, tasks: [task(1, 'PENDING')] }, { service: s, tasks: [task(1, 'RUNNING')] }], { terminal: true });
    await waitForServices(h.io, h.api, [s], 'scale', { sleep: h.sleep, verifyMs: 0 });
    assert.match(h.out(), /\x1b\[2A\r\x1b\[J/);
    assert.match(h.out(), /verify: converged\n$/);
  });
});

describe('progress: jobs', () => {
  const job = (o: { mode?: 'REPLICATED_JOB' | 'GLOBAL_JOB'; replicas?: number; schedule?: string; iteration?: number; finished?: [number, boolean]; message?: string } = {}): Service =>
    ({
      ...svc({ replicas: o.replicas ?? 3 }),
      spec: { name: 'batch', mode: o.mode ?? 'REPLICATED_JOB', replicas: o.replicas ?? 3, job: { schedule: o.schedule ?? '', timezone: '' } },
      jobStatus: { iteration: o.iteration ?? 0, finishedIteration: o.finished?.[0] ?? 0, finishedOk: o.finished?.[1] ?? false, message: o.message ?? '', runRequested: false },
    }) as unknown as Service;
  const run = (slot: number, state: TaskStateName, iteration: number, o: Parameters<typeof task>[2] = {}) => ({ ...task(slot, state, { desired: 'COMPLETE', ...o }), jobIteration: iteration }) as Task;

  it('counts completions of the current run, ends "job complete" when the manager finishes it', () => {
    const t = new ConvergeTracker('create', job());
    const v1 = t.step({ service: job({ iteration: 1 }), tasks: [run(1, 'COMPLETE', 1), run(2, 'RUNNING', 1), run(3, 'PENDING', 1)], now: 0 });
    assert.equal(v1.title, 'batch: job progress: 1 out of 3 complete');
    assert.deepEqual(v1.lines, ['1/3: complete', '2/3: running', '3/3: pending']);
    assert.equal(v1.verdict, undefined, 'a running job has not converged');
    const v2 = t.step({ service: job({ iteration: 1, finished: [1, true] }), tasks: [run(1, 'COMPLETE', 1), run(2, 'COMPLETE', 1), run(3, 'COMPLETE', 1)], now: 1 });
    assert.equal(v2.title, 'batch: job progress: 3 out of 3 complete');
    assert.deepEqual(v2.verdict, { ok: true, message: 'job complete' });
  });

  it('a failed run ends non-zero with the task failure; a run older than the update is not this command\'s', () => {
    const before = job({ iteration: 1, finished: [1, true] });
    const t = new ConvergeTracker('update', before);
    const old = t.step({ service: before, tasks: [run(1, 'COMPLETE', 1), run(2, 'COMPLETE', 1), run(3, 'COMPLETE', 1)], now: 0 });
    assert.equal(old.verdict, undefined, 'the finished first run is history');
    assert.equal(old.title, 'batch: job progress: 0 out of 3 complete');
    const failing = [run(1, 'FAILED', 2, { err: 'exit code 3', at: 5000 }), run(2, 'COMPLETE', 2), run(3, 'COMPLETE', 2)];
    const v = t.step({ service: job({ iteration: 2, finished: [2, false] }), tasks: failing, now: 1 });
    assert.equal(v.verdict?.ok, false);
    assert.match(v.verdict?.message ?? '', /^job failed: batch\.1 failed: exit code 3/);
  });

  it('a scheduled job has nothing to wait for; a global job counts its nodes', () => {
    const sched = new ConvergeTracker('create', job({ schedule: '*/5 * * * *' }));
    const v = sched.step({ service: job({ schedule: '*/5 * * * *' }), tasks: [], now: 0 });
    assert.deepEqual(v.verdict, { ok: true, message: 'scheduled (*/5 * * * *): each run is an event' });
    const g = new ConvergeTracker('create', job({ mode: 'GLOBAL_JOB' }));
    const gv = g.step({ service: job({ mode: 'GLOBAL_JOB', iteration: 1 }), tasks: [run(0, 'COMPLETE', 1, { node: 'n1' }), run(0, 'RUNNING', 1, { node: 'n2' })], now: 0 });
    assert.equal(gv.title, 'batch: job progress: 1 out of 2 complete');
    assert.equal(gv.verdict, undefined);
  });
});
