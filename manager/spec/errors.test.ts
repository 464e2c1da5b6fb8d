import { strict as assert } from 'node:assert';
import { quote } from './errors';

describe('quote (user text in an error message)', () => {
  it('JSON-quotes and cuts at the bound of quoted text, whatever escapes the text needs', () => {
    assert.equal(quote('web'), '"web"');
    assert.equal(quote('a\nb'), '"a\\nb"');
    assert.equal(quote('🚀é'), '"🚀é"', 'characters outside ASCII stay as they are, pairs intact');
    // Lone surrogates and control characters quote to six characters each: the cut is after escaping.
    for (const unit of ['\ud800', '\u0001', 'a']) {
      const q = quote(unit.repeat(1000), 200);
      assert.ok(q.length <= 200 + 2 + ' (1000 characters)…'.length, `${JSON.stringify(unit)}: ${q.length} characters`);
      assert.match(q, /… \(1000 characters\)$/);
      assert.doesNotThrow(() => JSON.parse(q.slice(0, q.lastIndexOf('"') + 1)), 'the quoted part is valid JSON (no escape cut in half)');
    }
  });
});
