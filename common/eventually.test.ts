import { strict as assert } from 'node:assert';
import { eventually, TimeoutError } from './eventually';

describe('eventually', () => {
  it('resolves to the first truthy value of the condition', async () => {
    let n = 0;
    assert.equal(await eventually(() => (++n >= 3 ? `after ${n}` : undefined), 'three calls'), 'after 3');
  });

  it('counts a throw as "not yet" and names the last error when it gives up', async () => {
    let calls = 0;
    const err = await eventually(
      () => {
        calls++;
        throw new Error('connection refused');
      },
      'a manager',
      { timeoutMs: 30, pollMs: 5 },
    ).catch((e: unknown) => e);
    assert.ok(err instanceof TimeoutError);
    assert.equal(err.message, 'timed out waiting for a manager (last error: connection refused)');
    assert.ok(calls > 1, 'retried after the throw');
  });

  it('waits on async conditions and takes a custom message prefix', async () => {
    const err = await eventually(async () => false, 'the registry', { timeoutMs: 10, prefix: 'lab: timed out waiting for' }).catch((e: Error) => e);
    assert.equal(err instanceof Error && err.message, 'lab: timed out waiting for the registry');
  });
});
