// The spec-validation fuzz target, briefly: every property it checks holds for
// a few seconds of mutated seed specs (npm run fuzz:spec runs it for a minute).
import { strict as assert } from 'node:assert';
import { loadCorpus, runSpecFuzz } from './fuzz';

describe('spec validation fuzz', function () {
  this.timeout(60_000);

  it('has seed specs that validate', () => {
    assert.ok(loadCorpus().length >= 5);
  });

  it('survives 3 s of mutated specs: results only, deterministic, idempotent, bounded messages', () => {
    // Fixed seed: the same inputs on every run; the npm script varies it. No time limit per input here (a loaded CI machine is not a hang).
    const r = runSpecFuzz({ durationMs: 3_000, seed: 20261201, slowMs: Infinity });
    assert.deepEqual(r.failures, []);
    assert.ok(r.iterations > 50, `${r.iterations} iterations`);
    assert.ok(r.accepted > 0 && r.refused > 0, `both paths taken: ${r.accepted} accepted, ${r.refused} refused`);
  });

  it('replays one iteration from its seed and number', () => {
    const a = runSpecFuzz({ durationMs: 0, seed: 7, only: 41, slowMs: Infinity });
    const b = runSpecFuzz({ durationMs: 0, seed: 7, only: 41, slowMs: Infinity });
    assert.equal(a.iterations, 1);
    assert.deepEqual([a.accepted, a.refused], [b.accepted, b.refused]);
  });
});
