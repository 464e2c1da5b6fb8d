// A few seconds of the tar fuzzer (testing/fuzz.ts) in the unit suite; `npm
// run fuzz:tar` runs it for a minute (CONVOY_FUZZ_SECONDS).
import * as assert from 'node:assert/strict';
import { fuzzTar, RSS_CAP_BYTES } from './testing/fuzz';

const SECONDS = 4;

describe('tar fuzzing (short run)', function () {
  this.timeout((SECONDS + 20) * 1000);
  it('unpacks or refuses with a TarError every mutant, in time, in bounded memory, writing nothing outside the root', async () => {
    const lines: string[] = [];
    const r = await fuzzTar({ seconds: SECONDS, log: (l) => lines.push(l) });
    assert.deepEqual(r.failures, [], lines.join('\n'));
    assert.ok(r.inputs > 50, `only ${r.inputs} inputs in ${SECONDS} s`);
    assert.ok(r.unpacked > 0 && r.refused > 0, `unpacked ${r.unpacked}, refused ${r.refused}: the mutations should reach both`);
    assert.ok(r.maxRssBytes < RSS_CAP_BYTES);
  });
});
