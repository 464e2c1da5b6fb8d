import * as assert from 'node:assert/strict';
import { defaultHostname, taskHostname } from './hostname';
import { makeTask } from './testing/fixtures';

describe('task hostname', () => {
  it("is the task id's first 12 characters by default, the spec's when it gives one", () => {
    assert.equal(defaultHostname('0a1b2c3d4e5f60718293a4b5c'), '0a1b2c3d4e5f');
    assert.equal(taskHostname(makeTask('0a1b2c3d4e5f60718293a4b5c', {})), '0a1b2c3d4e5f');
    assert.equal(taskHostname(makeTask('0a1b2c3d4e5f60718293a4b5c', { hostname: 'db-1' })), 'db-1');
  });

  it('never reads as a number (glibc would not look it up in /etc/hosts): extended to the first letter of the id', () => {
    // (10/16)^12: about one random hex id in 280 starts with 12 decimal digits.
    assert.equal(defaultHostname('1234567890123a4567890bcde'), '1234567890123a');
    assert.equal(defaultHostname('123456789012345678901234f'), '123456789012345678901234f');
    assert.equal(defaultHostname('1234567890123456789012345'), 't1234567890123456789012345');
    for (let i = 0; i < 2000; i++) {
      const id = Array.from({ length: 25 }, () => '0123456789abcdef'[Math.floor(Math.random() * (i % 2 ? 10.2 : 16))]).join('');
      const h = defaultHostname(id);
      assert.doesNotMatch(h, /^[0-9.]+$/, `${id} → ${h}`);
      assert.ok(h.length <= 63, `${id} → ${h}`);
      if (!h.startsWith('t')) assert.ok(id.startsWith(h), `${h} is a prefix of ${id}`);
    }
  });
});
