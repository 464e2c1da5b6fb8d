import * as assert from 'node:assert/strict';
import type { Task } from '../../proto/mod';
import { service } from './testing/fixtures';
import { newTask, shutdown, transition } from './task';

const task = (state: NonNullable<Task['status']>['state']): Task => {
  const t = newTask(service('web'), 't1', 1000, { slot: 1, attempt: 0 });
  return { ...t, status: { ...t.status!, state, message: state.toLowerCase() } };
};

describe('transition', () => {
  it('moves a task forward, stamped with the time and message given', () => {
    const t = transition(task('PENDING'), 'ASSIGNED', 'assigned', 2000);
    assert.equal(t?.status?.state, 'ASSIGNED');
    assert.equal(t?.status?.timestamp, 2000);
    assert.equal(t?.status?.message, 'assigned');
  });

  it('refuses a backward move: undefined, the task is left as it was', () => {
    const running = task('RUNNING');
    assert.equal(transition(running, 'ASSIGNED', 'assigned', 2000), undefined);
    assert.equal(running.status?.state, 'RUNNING');
  });

  it('allows the same state with a new message', () => {
    assert.equal(transition(task('PENDING'), 'PENDING', 'no suitable node', 2000)?.status?.message, 'no suitable node');
  });

  it('shutdown ends a pending task at once, and only tells a running one to stop', () => {
    assert.equal(shutdown(task('PENDING'), 2000, 'scaled down').status?.state, 'SHUTDOWN');
    const r = shutdown(task('RUNNING'), 2000, 'scaled down');
    assert.equal(r.status?.state, 'RUNNING');
    assert.equal(r.desiredState, 'SHUTDOWN');
  });
});
