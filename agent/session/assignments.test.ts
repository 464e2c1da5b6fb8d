import { strict as assert } from 'node:assert';
import { AssignmentTracker, type AssignmentsMessageLike } from './assignments';
import { makeTask } from '../controller/testing/fake-executor';

const complete = (resultsIn: string, ids: string[]): AssignmentsMessageLike => ({
  type: 'COMPLETE',
  appliesTo: '',
  resultsIn,
  changes: ids.map((id) => ({ action: 'UPDATE', task: makeTask(id) })),
});
const incr = (appliesTo: string, resultsIn: string, up: string[], rm: string[] = []): AssignmentsMessageLike => ({
  type: 'INCREMENTAL',
  appliesTo,
  resultsIn,
  changes: [
    ...up.map((id) => ({ action: 'UPDATE' as const, task: makeTask(id) })),
    ...rm.map((id) => ({ action: 'REMOVE' as const, task: makeTask(id) })),
  ],
});

describe('AssignmentTracker', () => {
  it('applies a COMPLETE set then INCREMENTAL changes that follow it', () => {
    const t = new AssignmentTracker();
    const a = t.apply(complete('v1', ['a', 'b']));
    assert.equal(a.kind, 'complete');
    assert.deepEqual(a.kind === 'complete' && a.tasks.map((x) => x.id), ['a', 'b']);
    const b = t.apply(incr('v1', 'v2', ['c'], ['a']));
    assert.deepEqual(b, { kind: 'incremental', updates: [makeTask('c')], removes: ['a'] });
    assert.equal(t.version, 'v2');
  });

  it('detects a gap when applies_to is not the last results_in', () => {
    const t = new AssignmentTracker();
    t.apply(complete('v1', []));
    t.apply(incr('v1', 'v2', ['a']));
    const r = t.apply(incr('v3', 'v4', ['b']));
    assert.deepEqual(r, { kind: 'gap', expected: 'v2', got: 'v3' });
    // After a gap nothing is trusted until a new COMPLETE.
    assert.equal(t.apply(incr('v4', 'v5', [])).kind, 'gap');
    assert.equal(t.apply(complete('v9', ['a'])).kind, 'complete');
    assert.equal(t.apply(incr('v9', 'v10', [])).kind, 'incremental');
  });

  it('treats an INCREMENTAL before any COMPLETE as a gap', () => {
    const t = new AssignmentTracker();
    assert.equal(t.apply(incr('', 'v1', ['a'])).kind, 'gap');
  });

  it('a new stream (reset) expects a COMPLETE first', () => {
    const t = new AssignmentTracker();
    t.apply(complete('v1', []));
    t.reset();
    assert.equal(t.apply(incr('v1', 'v2', [])).kind, 'gap');
  });
});
