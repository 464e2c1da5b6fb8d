// The agent's in-memory secrets and configs: a COMPLETE set replaces the
// held set, incremental changes add and drop, and a dropped value is zeroed.
import { strict as assert } from 'node:assert';
import { AssignmentTracker } from '../session/assignments';
import { FileValues } from './values';

const payload = (id: string, data: string, version = 1) => ({ id, name: `n-${id}`, version, data: Buffer.from(data) });

describe('agent secrets and configs in memory', () => {
  it('follows the assignment stream: complete replaces, updates add or rotate, removes drop and zero', () => {
    const t = new AssignmentTracker();
    const v = new FileValues();
    const c = t.apply({ type: 'COMPLETE', appliesTo: '', resultsIn: 'v1', changes: [{ action: 'UPDATE', task: null, secret: payload('a', 'alpha') }, { action: 'UPDATE', task: null, config: payload('c', 'conf') }] });
    assert.equal(c.kind, 'complete');
    if (c.kind !== 'complete') return;
    assert.deepEqual(c.tasks, []);
    v.replace(c.files!.updates);
    assert.equal(v.get('secret', 'a')?.data.toString(), 'alpha');
    assert.equal(v.get('config', 'c')?.data.toString(), 'conf');
    assert.equal(v.get('config', 'a'), undefined, 'kinds are apart');
    const held = v.get('secret', 'a')!.data;
    const i = t.apply({ type: 'INCREMENTAL', appliesTo: 'v1', resultsIn: 'v2', changes: [{ action: 'UPDATE', task: null, secret: payload('a', 'alpha-2', 2) }, { action: 'REMOVE', task: null, config: payload('c', '') }] });
    assert.equal(i.kind, 'incremental');
    if (i.kind !== 'incremental') return;
    v.apply(i.files!);
    assert.equal(v.get('secret', 'a')?.version, 2);
    assert.equal(v.get('secret', 'a')?.data.toString(), 'alpha-2');
    assert.ok(held.every((b) => b === 0), 'the old version is zeroed');
    assert.equal(v.get('config', 'c'), undefined);
    // A COMPLETE without files (a resync after the last task went): nothing held.
    const a2 = v.get('secret', 'a')!.data;
    v.replace([]);
    assert.equal(v.size, 0);
    assert.ok(a2.every((b) => b === 0));
  });

  it('passes no files field for a message without any (the task-only shape is unchanged)', () => {
    const t = new AssignmentTracker();
    assert.deepEqual(t.apply({ type: 'COMPLETE', appliesTo: '', resultsIn: 'v1', changes: [] }), { kind: 'complete', tasks: [] });
  });
});
