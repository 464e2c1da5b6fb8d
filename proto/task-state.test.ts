import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { protoDir } from './mod';
import { TASK_STATES, isForward, isTerminal, stateRank } from './task-state';

/** `enum TaskState { NAME = 0; ... }` from types.proto, in declaration order. */
function protoEnum(name: string): { name: string; value: number }[] {
  const src = fs.readFileSync(path.join(protoDir(), 'types.proto'), 'utf8').replace(/\/\/[^\n]*/g, '');
  const body = new RegExp(`enum\\s+${name}\\s*\\{([^}]*)\\}`).exec(src)?.[1];
  assert.ok(body, `enum ${name} not found in types.proto`);
  return [...body.matchAll(/([A-Z_]+)\s*=\s*(\d+)\s*;/g)].map((m) => ({ name: m[1], value: Number(m[2]) }));
}

describe('task states', () => {
  it('follow types.proto: same names, same order, and the .proto numbers them in increasing order', () => {
    const decl = protoEnum('TaskState');
    assert.deepEqual([...TASK_STATES], decl.map((d) => d.name));
    for (let i = 1; i < decl.length; i++) assert.ok(decl[i].value > decl[i - 1].value, `${decl[i].name} must be numbered after ${decl[i - 1].name}`);
  });

  it('move only forward', () => {
    assert.ok(isForward('PENDING', 'ASSIGNED'));
    assert.ok(isForward('RUNNING', 'RUNNING'), 'same state (a new message) is allowed');
    assert.ok(!isForward('RUNNING', 'ASSIGNED'));
    assert.ok(!isForward('ORPHANED', 'RUNNING'));
    assert.ok(stateRank('NEW') < stateRank('ORPHANED'));
  });

  it('end after running', () => {
    assert.deepEqual(
      TASK_STATES.filter(isTerminal),
      ['COMPLETE', 'SHUTDOWN', 'FAILED', 'REJECTED', 'REMOVE', 'ORPHANED'],
    );
  });
});
