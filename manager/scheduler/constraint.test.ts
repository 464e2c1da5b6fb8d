// The constraint parser: what it accepts (exactly what the regex grammar it
// replaced accepted), what it refuses and why, that its work grows linearly
// with the input (counted, not timed), and the per-spec-version cache.
import { strict as assert } from 'node:assert';
import { node } from '../orchestrator/testing/fixtures';
import { CONSTRAINT_MAX_BYTES } from '../spec/limits';
import { ConstraintCache, ConstraintError, constraintMatches, constraintsOf, parseConstraint, parseConstraints, type ParseMeter } from './constraint';

/** The grammar before the one-pass parser (quadratic on trailing blanks): the reference for short inputs. */
function regexParse(expr: string): { key: string; op: string; value: string } | undefined {
  const m = /^\s*([^\s=!]+)\s*(==|!=|=|<=|>=|<|>|~=)\s*(.*?)\s*$/.exec(expr);
  if (!m) return undefined;
  const [, key, op, value] = m;
  if (op !== '==' && op !== '!=') return undefined;
  if (!['node.id', 'node.hostname', 'node.role', 'node.platform.os', 'node.platform.arch'].includes(key) && !/^node\.labels\.[^.\s]/.test(key) && !/^engine\.labels\.[^.\s]/.test(key)) return undefined;
  if (!value) return undefined;
  return { key, op, value };
}

function tryParse(expr: string, meter?: ParseMeter): { key: string; op: string; value: string } | ConstraintError {
  try {
    return parseConstraint(expr, meter);
  } catch (e) {
    assert.ok(e instanceof ConstraintError, `threw ${String(e)}`);
    return e;
  }
}

/** xorshift32: the same "random" strings on every run. */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 2 ** 32;
  };
}

describe('parseConstraint', () => {
  it('parses keys, both operators, blanks and values as before', () => {
    assert.deepEqual(parseConstraint('node.labels.zone==east'), { key: 'node.labels.zone', op: '==', value: 'east' });
    assert.deepEqual(parseConstraint('  node.role   !=  manager \t'), { key: 'node.role', op: '!=', value: 'manager' });
    assert.deepEqual(parseConstraint('engine.labels.disk == solid state'), { key: 'engine.labels.disk', op: '==', value: 'solid state' });
    assert.deepEqual(parseConstraint('node.labels.x==a==b'), { key: 'node.labels.x', op: '==', value: 'a==b' });
    assert.deepEqual(parseConstraint('node.id==\n abc \n'), { key: 'node.id', op: '==', value: 'abc' }, 'blanks around the value may be newlines');
    assert.deepEqual(parseConstraint('\u3000node.hostname\u00a0==\u2003h1\ufeff'), { key: 'node.hostname', op: '==', value: 'h1' }, 'Unicode blanks count as blanks');
  });

  it('refuses malformed constraints with the reason', () => {
    assert.throws(() => parseConstraint('node.labels.zone >= 3'), /operator ">=" is not supported \(only == and !=\)/);
    assert.throws(() => parseConstraint('node.role<manager'), /operator "<" is not supported/);
    assert.throws(() => parseConstraint('node.role = manager'), /operator "=" is not supported/);
    assert.throws(() => parseConstraint('node.color == red'), /unknown constraint key "node.color"/);
    assert.throws(() => parseConstraint('node.labels..x == red'), /unknown constraint key/);
    assert.throws(() => parseConstraint('node.labels.zone == '), /has no value/);
    assert.throws(() => parseConstraint('== east'), /not of the form KEY==VALUE/);
    assert.throws(() => parseConstraint(''), /not of the form/);
    assert.throws(() => parseConstraint('node.labels.a == b\nc'), /one line/);
    assert.throws(() => parseConstraint('node.labels.a ! b'), /not of the form/);
  });

  it('accepts exactly what the regex grammar accepted, with the same parse (3,000 random short expressions)', () => {
    const next = rng(12);
    const atoms = ['=', '==', '!', '!=', ' ', '\t', '\n', '<', '>', '~', 'a', 'node.', 'labels.', 'node.labels.', 'engine.labels.', 'node.id', '.', 'x', '\u2028', '\u00a0'];
    let accepted = 0;
    for (let k = 0; k < 3000; k++) {
      let s = '';
      const parts = 1 + Math.floor(next() * 7);
      for (let j = 0; j < parts; j++) s += atoms[Math.floor(next() * atoms.length)];
      const want = regexParse(s);
      const got = tryParse(s);
      if (want) accepted++;
      assert.deepEqual(got instanceof ConstraintError ? undefined : got, want, `for ${JSON.stringify(s)}`);
    }
    assert.ok(accepted > 30, `the sample must hold valid constraints too (${accepted})`);
  });

  it('parses a maximal constraint and refuses 120,000-character pathological ones, in work linear in their length', () => {
    const maximal = `node.labels.${'k'.repeat(128)} != ${'v'.repeat(CONSTRAINT_MAX_BYTES - 128 - 'node.labels. != '.length)}`;
    assert.equal(maximal.length, CONSTRAINT_MAX_BYTES);
    const m0: ParseMeter = { steps: 0 };
    const c = parseConstraint(maximal, m0);
    assert.equal(c.op, '!=');
    assert.equal(c.key.length, 'node.labels.'.length + 128);
    assert.ok(m0.steps <= 3 * maximal.length, `${m0.steps} steps for ${maximal.length} characters`);

    const N = 120_000;
    // Each shape at n and 2n characters: refused (or parsed) the same way, with work at most 3 per character and doubling with n.
    const shapes: Record<string, (n: number) => string> = {
      'trailing blanks': (n) => `node.id==a${' '.repeat(n - 11)}b`,
      'blanks then nothing': (n) => `node.id==${' '.repeat(n - 9)}`,
      equals: (n) => '='.repeat(n),
      bangs: (n) => '!'.repeat(n),
      'bang blank equals': (n) => 'a' + '= !'.repeat(Math.floor((n - 1) / 3)),
      'a long key with < in it': (n) => `a<${'b'.repeat(n - 2)}`,
      'a long key and no operator': (n) => 'k'.repeat(n),
      'blanks only': (n) => ' '.repeat(n),
      'a long value over lines': (n) => `node.id==${'x\n'.repeat(Math.floor((n - 9) / 2))}`,
      'a long valid value': (n) => `node.labels.z==${'v '.repeat(Math.floor((n - 15) / 2))}`,
    };
    for (const [name, make] of Object.entries(shapes)) {
      const small: ParseMeter = { steps: 0 };
      const big: ParseMeter = { steps: 0 };
      const a = tryParse(make(N), small);
      const b = tryParse(make(2 * N), big);
      assert.equal(a instanceof ConstraintError, b instanceof ConstraintError, name);
      assert.ok(small.steps <= 3 * N, `${name}: ${small.steps} steps for ${N} characters`);
      assert.ok(big.steps <= 2 * small.steps + 16, `${name}: ${small.steps} steps at n, ${big.steps} at 2n`);
      if (a instanceof ConstraintError) assert.ok(a.message.length < 400, `${name}: the message quotes a bounded prefix (${a.message.length})`);
    }
  });

  it('never matches a label a node merely inherits (__proto__, constructor)', () => {
    const n = node('a', { labels: { zone: 'east' } });
    for (const key of ['__proto__', 'constructor', 'toString', 'hasOwnProperty']) {
      assert.equal(constraintMatches(parseConstraint(`node.labels.${key}==x`), n), false, key);
      assert.equal(constraintMatches(parseConstraint(`engine.labels.${key}!=x`), n), true, key);
    }
    const own = node('b', { labels: JSON.parse('{"__proto__":"x"}') as Record<string, string> });
    assert.equal(constraintMatches(parseConstraint('node.labels.__proto__==X'), own), true, 'an own label of that name is a label');
  });
});

describe('ConstraintCache', () => {
  const pl = (...constraints: string[]) => ({ constraints, preferences: [], maxReplicasPerNode: 0, platforms: [], strategy: 'SPREAD' as const });

  it('returns the same parse for the same service version and reparses when the expressions differ', () => {
    const cache = new ConstraintCache();
    const a = cache.get('s1', 1, pl('node.labels.zone==east'));
    assert.equal(cache.get('s1', 1, pl('node.labels.zone==east')), a, 'equal expressions (other objects) hit');
    assert.deepEqual(a, parseConstraints(pl('node.labels.zone==east')));
    const b = cache.get('s1', 1, pl('node.labels.zone==west'));
    assert.notEqual(b, a);
    assert.equal(b[0].value, 'west', 'a reused (service, version) with other constraints is not served stale');
    assert.deepEqual(cache.get('s1', 2, null), []);
  });

  it('constraintsOf shares one cache between callers, matching case-insensitively as before', () => {
    const a = constraintsOf('svc-x', 3, pl('node.labels.Zone == EAST'));
    assert.equal(constraintsOf('svc-x', 3, pl('node.labels.Zone == EAST')), a);
    assert.equal(constraintMatches(a[0], node('n', { labels: { Zone: 'East' } })), true);
    assert.equal(constraintMatches(a[0], node('n', { labels: { zone: 'East' } })), false, 'label names are exact');
  });

  it('keeps at most its bound', () => {
    const cache = new ConstraintCache(3);
    for (let v = 1; v <= 10; v++) cache.get('s', v, pl('node.role==worker'));
    assert.equal(cache.size, 3);
  });
});
