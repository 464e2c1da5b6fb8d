import { strict as assert } from 'node:assert';
import type { TaskStatus } from '../../proto/mod';
import { Worker } from './worker';
import { fakeExecutor, makeTask } from './testing/fake-executor';
import { eventually } from '../../common/eventually';

function setup() {
  const fx = fakeExecutor();
  const reported = new Map<string, TaskStatus>();
  const worker = new Worker({ executor: fx.executor, reporter: { report: (id, s) => void reported.set(id, s) } });
  return { fx, reported, worker };
}

describe('Worker', () => {
  it('reconciles a COMPLETE set: running tasks are not restarted, missing ones are stopped and removed', async () => {
    const { fx, reported, worker } = setup();
    await worker.init();
    worker.applyComplete([makeTask('a'), makeTask('b')]);
    await eventually(() => reported.get('a')?.state === 'RUNNING' && reported.get('b')?.state === 'RUNNING', 'a and b reported RUNNING');
    // Reconnect: the new manager sends the complete set again, without b.
    worker.applyComplete([makeTask('a'), makeTask('c')]);
    await eventually(() => reported.get('c')?.state === 'RUNNING' && !worker.taskIds().includes('b'), 'c reported RUNNING and b gone');
    assert.equal(fx.starts('a'), 1);
    assert.ok(fx.calls.includes('remove b'));
    assert.equal(reported.get('b')?.state, 'SHUTDOWN');
  });

  it('re-reports a status the manager has not seen (lost with a dead manager)', async () => {
    const { worker, reported } = setup();
    await worker.init();
    worker.applyComplete([makeTask('a')]);
    await eventually(() => reported.get('a')?.state === 'RUNNING', 'a reported RUNNING');
    reported.clear();
    worker.applyComplete([makeTask('a')]); // manager still believes ASSIGNED
    assert.equal(reported.get('a')?.state, 'RUNNING');
  });

  it('applies INCREMENTAL updates and removes', async () => {
    const { fx, worker, reported } = setup();
    await worker.init();
    worker.applyComplete([]);
    worker.applyIncremental([makeTask('a')], []);
    await eventually(() => reported.get('a')?.state === 'RUNNING', 'a reported RUNNING');
    worker.applyIncremental([], ['a']);
    await eventually(() => worker.taskIds().length === 0, 'no task left in the worker');
    assert.ok(fx.calls.includes('remove a'));
  });

  it('adopts containers still assigned after a restart and removes the others', async () => {
    const { fx, worker, reported } = setup();
    fx.existing = [
      { taskId: 'kept', running: true },
      { taskId: 'gone', running: true },
    ];
    await worker.init();
    const running = { state: 'RUNNING' as const, timestamp: 1, message: '', err: '', exitCode: 0, pid: 0, health: '' };
    worker.applyComplete([makeTask('kept', { status: running })]);
    await eventually(() => fx.calls.includes('remove gone') && fx.calls.includes('adopt kept'), 'gone removed and kept adopted');
    assert.equal(fx.starts('kept'), 0);
    assert.equal(reported.get('kept')?.state, 'RUNNING');
    // The adopted task's exit is still observed.
    fx.exit('kept', { exitCode: 2, oomKilled: false, reason: 'exit code 2' });
    await eventually(() => reported.get('kept')?.state === 'FAILED', 'kept reported FAILED');
  });

  it('routes health changes to the task', async () => {
    const { fx, worker, reported } = setup();
    await worker.init();
    worker.applyComplete([makeTask('a')]);
    await eventually(() => reported.get('a')?.state === 'RUNNING', 'a reported RUNNING');
    fx.health('a', 'unhealthy');
    assert.equal(reported.get('a')?.health, 'unhealthy');
  });
});
