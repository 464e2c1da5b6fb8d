import { strict as assert } from 'node:assert';
import { newId } from './ids';

describe('ids', () => {
  it('are 25 hex characters whose shown 12 are never all digits (about 1 random id in 280 would be)', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 20_000; i++) {
      const id = newId();
      assert.match(id, /^[0-9a-f]{25}$/);
      assert.doesNotMatch(id, /^[0-9]{12}/, id);
      seen.add(id);
    }
    assert.equal(seen.size, 20_000);
  });
});
