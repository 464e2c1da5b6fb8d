import { strict as assert } from 'node:assert';
import { Backoff, BACKOFF_INITIAL_MS, BACKOFF_MAX_MS } from './backoff';

describe('Backoff', () => {
  it('grows exponentially up to the cap, never below half the current ceiling', () => {
    const lo = new Backoff(undefined, undefined, () => 0);
    const hi = new Backoff(undefined, undefined, () => 1);
    const lows = Array.from({ length: 10 }, () => lo.next());
    const highs = Array.from({ length: 10 }, () => hi.next());
    assert.equal(lows[0], BACKOFF_INITIAL_MS / 2);
    assert.equal(highs[0], BACKOFF_INITIAL_MS);
    assert.equal(highs[1], BACKOFF_INITIAL_MS * 2);
    assert.equal(highs.at(-1), BACKOFF_MAX_MS);
    assert.equal(lows.at(-1), BACKOFF_MAX_MS / 2);
    assert.ok(lows.every((d) => d > 0));
  });

  it('starts over after reset', () => {
    const b = new Backoff(undefined, undefined, () => 1);
    for (let i = 0; i < 5; i++) b.next();
    b.reset();
    assert.equal(b.next(), BACKOFF_INITIAL_MS);
  });
});
