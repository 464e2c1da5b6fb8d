import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadKek, loadOrCreateKek, open, seal } from './kek';

describe('key-encryption key', () => {
  let dir: string;
  beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'convoy-kek-'))));
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('is created 0600 once and read back the same', () => {
    const f = path.join(dir, 'sub', 'kek');
    const a = loadOrCreateKek(f);
    assert.equal(fs.statSync(f).mode & 0o777, 0o600);
    assert.equal(fs.statSync(path.dirname(f)).mode & 0o777, 0o700);
    assert.deepEqual(loadOrCreateKek(f), a);
  });

  it('refuses a file others can read, and one that is not 32 bytes', () => {
    const f = path.join(dir, 'kek');
    loadOrCreateKek(f);
    fs.chmodSync(f, 0o644);
    assert.throws(() => loadKek(f), /readable by others/);
    fs.writeFileSync(f, Buffer.alloc(16).toString('base64'), { mode: 0o600 });
    fs.chmodSync(f, 0o600);
    assert.throws(() => loadKek(f), /not a key-encryption key/);
  });

  it('seals so that only the same key and the same aad open, and tampering is detected', () => {
    const k = loadOrCreateKek(path.join(dir, 'kek'));
    const other = loadOrCreateKek(path.join(dir, 'kek2'));
    const s = seal(k, Buffer.from('the CA key'), '/convoy/ca/key');
    assert.ok(!s.includes('the CA key') && !Buffer.from(s.slice(3), 'base64').includes('the CA key'));
    assert.equal(open(k, s, '/convoy/ca/key').toString(), 'the CA key');
    assert.notEqual(seal(k, Buffer.from('x'), 'a'), seal(k, Buffer.from('x'), 'a'), 'a fresh IV each time');
    assert.throws(() => open(other, s, '/convoy/ca/key'), /does not open/);
    assert.throws(() => open(k, s, '/convoy/secrets/x'), /does not open/);
    const raw = Buffer.from(s.slice(3), 'base64');
    raw[raw.length - 1] ^= 1;
    assert.throws(() => open(k, `v1:${raw.toString('base64')}`, '/convoy/ca/key'), /does not open/);
  });
});
