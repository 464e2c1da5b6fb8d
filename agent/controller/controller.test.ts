import { strict as assert } from 'node:assert';
import type { TaskStateName, TaskStatus } from '../../proto/mod';
import { ExecutorError } from '../executor';
import { TaskController } from './controller';
import { fakeExecutor, makeSpec, makeTask } from './testing/fake-executor';
import { eventually } from '../../common/eventually';

function setup() {
  const fx = fakeExecutor();
  const reports: { id: string; status: TaskStatus }[] = [];
  const deps = { executor: fx.executor, report: (id: string, status: TaskStatus) => reports.push({ id, status }) };
  const states = (): TaskStateName[] => reports.map((r) => r.status.state);
  return { fx, reports, deps, states };
}

describe('TaskController', () => {
  it('drives a task from ASSIGNED to RUNNING, then COMPLETE on exit 0', async () => {
    const { fx, deps, states } = setup();
    const c = new TaskController(makeTask('t1'), deps);
    c.kick();
    await c.settled();
    assert.deepEqual(states(), ['ACCEPTED', 'PREPARING', 'STARTING', 'RUNNING']);
    assert.deepEqual(fx.calls, ['prepare t1', 'start t1']);
    fx.exit('t1', { exitCode: 0, oomKilled: false, reason: 'exit code 0' });
    await eventually(() => c.state === 'COMPLETE', 'the controller at COMPLETE');
    assert.equal(states().at(-1), 'COMPLETE');
  });

  it('reports FAILED with exit code and reason on a non-zero exit, OOM included', async () => {
    const { fx, deps, reports } = setup();
    const c = new TaskController(makeTask('t1'), deps);
    c.kick();
    await c.settled();
    fx.exit('t1', { exitCode: 137, oomKilled: true, reason: 'OOM killed (limit 64MiB)' });
    await eventually(() => c.state === 'FAILED', 'the controller at FAILED');
    const last = reports.at(-1)!.status;
    assert.equal(last.state, 'FAILED');
    assert.equal(last.exitCode, 137);
    assert.equal(last.err, 'OOM killed (limit 64MiB)');
    assert.equal(last.message, 'OOM killed');
  });

  it('never restarts a failed task in place, even when the desired state stays RUNNING', async () => {
    const { fx, deps } = setup();
    const c = new TaskController(makeTask('t1'), deps);
    c.kick();
    await c.settled();
    fx.exit('t1', { exitCode: 1, oomKilled: false, reason: 'exit code 1' });
    await eventually(() => c.state === 'FAILED', 'the controller at FAILED');
    c.update(makeTask('t1', { specVersion: 2 }));
    await c.settled();
    assert.equal(fx.starts('t1'), 1);
    assert.equal(c.state, 'FAILED');
  });

  it('a non-retryable ExecutorError in prepare rejects the task with the message', async () => {
    const { fx, deps, reports } = setup();
    fx.failPrepare = () => new ExecutorError('image registry.local/web:1 not found', false);
    const c = new TaskController(makeTask('t1'), deps);
    c.kick();
    await c.settled();
    const last = reports.at(-1)!.status;
    assert.equal(last.state, 'REJECTED');
    assert.equal(last.err, 'image registry.local/web:1 not found');
    assert.equal(fx.starts('t1'), 0);
  });

  it('a retryable ExecutorError in prepare (registry down) also rejects the task, as swarmkit does', async () => {
    const { fx, deps, reports } = setup();
    fx.failPrepare = () => new ExecutorError('registry 127.0.0.1:1 unreachable', true);
    const c = new TaskController(makeTask('t1'), deps);
    c.kick();
    await c.settled();
    assert.equal(reports.at(-1)!.status.state, 'REJECTED');
    assert.equal(reports.at(-1)!.status.err, 'registry 127.0.0.1:1 unreachable');
    assert.equal(fx.starts('t1'), 0);
  });

  it('a retryable ExecutorError in start fails the task', async () => {
    const { fx, deps, reports } = setup();
    fx.failStart = () => new ExecutorError('registry unreachable', true);
    const c = new TaskController(makeTask('t1'), deps);
    c.kick();
    await c.settled();
    assert.equal(reports.at(-1)!.status.state, 'FAILED');
    assert.equal(reports.at(-1)!.status.err, 'registry unreachable');
  });

  it('desired SHUTDOWN stops with the spec grace period, reports SHUTDOWN (not FAILED), then removes', async () => {
    const { fx, deps, states } = setup();
    const spec = makeSpec({ stopGracePeriodMs: 1234 });
    const c = new TaskController(makeTask('t1', { spec }), deps);
    c.kick();
    await c.settled();
    c.update(makeTask('t1', { spec, desiredState: 'SHUTDOWN' }));
    await c.settled();
    await eventually(() => fx.calls.includes('remove t1'), 't1 removed');
    assert.deepEqual(fx.calls, ['prepare t1', 'start t1', 'stop t1 1234', 'remove t1']);
    assert.equal(states().at(-1), 'SHUTDOWN');
    assert.ok(!states().includes('FAILED'));
  });

  it('an unassigned task is stopped, removed and then forgotten', async () => {
    const { fx, deps } = setup();
    const c = new TaskController(makeTask('t1'), deps);
    let finished = false;
    c.onFinished = () => (finished = true);
    c.kick();
    await c.settled();
    c.unassign();
    await c.settled();
    assert.ok(finished);
    assert.ok(fx.calls.includes('remove t1'));
  });

  it('a task never prepared is shut down without touching the executor', async () => {
    const { fx, deps, states } = setup();
    const c = new TaskController(makeTask('t1', { desiredState: 'SHUTDOWN' }), deps);
    c.kick();
    await c.settled();
    assert.deepEqual(fx.calls, []);
    assert.deepEqual(states(), ['SHUTDOWN']);
  });

  it('only moves forward: a task the manager saw RUNNING is not re-prepared', async () => {
    const { fx, deps, states } = setup();
    const t = makeTask('t1', { status: { state: 'RUNNING', timestamp: 1, message: '', err: '', exitCode: 0, pid: 0, health: '' } });
    const c = new TaskController(t, deps, { adopt: true });
    c.kick();
    await c.settled();
    assert.deepEqual(fx.calls, ['adopt t1']);
    assert.ok(states().every((s) => s === 'RUNNING'));
  });

  it('reports health transitions in status.health', async () => {
    const { deps, reports } = setup();
    const c = new TaskController(makeTask('t1'), deps);
    c.kick();
    await c.settled();
    c.setHealth('healthy');
    const last = reports.at(-1)!.status;
    assert.equal(last.state, 'RUNNING');
    assert.equal(last.health, 'healthy');
  });
});
