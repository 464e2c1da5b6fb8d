import { strict as assert } from 'node:assert';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { KEK_RING_MAX, KeyRing, kekId, loadKek, loadOrCreateKek, open, parseKeyRing, seal } from './kek';

const b64 = () => crypto.randomBytes(32).toString('base64');

describe('key-encryption key', () => {
  let dir: string;
  beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'convoy-kek-'))));
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('is created 0600 once and read back the same', () => {
    const f = path.join(dir, 'sub', 'kek');
    const a = loadOrCreateKek(f);
    assert.equal(fs.statSync(f).mode & 0o777, 0o600);
    assert.equal(fs.statSync(path.dirname(f)).mode & 0o777, 0o700);
    assert.equal(a.keys.length, 1);
    assert.match(fs.readFileSync(f, 'utf8'), /^[A-Za-z0-9+/]{43}=\n$/, 'one base64 key and a newline (as before rotation existed)');
    assert.deepEqual(loadOrCreateKek(f).keys, a.keys);
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
    const s = k.seal(Buffer.from('the CA key'), '/convoy/ca/key');
    assert.ok(!s.includes('the CA key') && !Buffer.from(s.slice(3), 'base64').includes('the CA key'));
    assert.equal(k.open(s, '/convoy/ca/key').toString(), 'the CA key');
    assert.equal(open(k.current, s, '/convoy/ca/key').toString(), 'the CA key', 'sealed under the current key');
    assert.notEqual(k.seal(Buffer.from('x'), 'a'), k.seal(Buffer.from('x'), 'a'), 'a fresh IV each time');
    assert.throws(() => other.open(s, '/convoy/ca/key'), /does not open/);
    assert.throws(() => k.open(s, '/convoy/secrets/x'), /does not open/);
    const raw = Buffer.from(s.slice(3), 'base64');
    raw[raw.length - 1] ^= 1;
    assert.throws(() => k.open(`v1:${raw.toString('base64')}`, '/convoy/ca/key'), /does not open/);
    assert.throws(() => k.open('v9:abc', '/convoy/ca/key'), /unknown format/);
  });

  describe('rotation: a file of several keys', () => {
    it('seals under the first line and opens what any line sealed; tells which key sealed a value', () => {
      const [oldKey, newKey] = [b64(), b64()];
      const before = parseKeyRing(`${oldKey}\n`, 'kek');
      const during = parseKeyRing(`# rotating: the new key first\n${newKey}\n\n${oldKey}\n`, 'kek');
      assert.equal(during.keys.length, 2);
      assert.deepEqual(during.current, Buffer.from(newKey, 'base64'));
      const oldSealed = before.seal(Buffer.from('ca key'), 'aad');
      assert.equal(during.open(oldSealed, 'aad').toString(), 'ca key', 'a previous key still opens');
      assert.equal(during.sealedUnderCurrent(oldSealed, 'aad'), false);
      const newSealed = during.seal(Buffer.from('ca key'), 'aad');
      assert.equal(during.sealedUnderCurrent(newSealed, 'aad'), true);
      assert.throws(() => before.open(newSealed, 'aad'), /does not open/, 'a manager without the new key cannot open what it sealed');
      const after = parseKeyRing(`${newKey}\n`, 'kek');
      assert.equal(after.open(newSealed, 'aad').toString(), 'ca key');
      assert.throws(() => after.open(oldSealed, 'aad'), /does not open/, 'the dropped key opens nothing');
      assert.equal(during.id, kekId(Buffer.from(newKey, 'base64')));
      assert.notEqual(during.id, before.id);
      assert.match(during.id, /^[0-9a-f]{16}$/);
      assert.notEqual(during.id, crypto.createHash('sha256').update(during.current).digest('hex').slice(0, 16), 'a digest over a label and the key, not the bare SHA-256 of the key');
      assert.deepEqual(during.ids, [kekId(during.keys[0]), kekId(during.keys[1])]);
      assert.deepEqual(parseKeyRing(during.text(), 'join').keys, during.keys, 'text() round-trips, the current key first');
    });

    it('names the file and line of a bad key, a repeated key, an empty file, too many keys', () => {
      const k = b64();
      assert.throws(() => parseKeyRing(`${k}\nnot base64!\n`, '/d/kek'), /\/d\/kek:2: not a key-encryption key .*head -c 32 \/dev\/urandom \| base64/);
      assert.throws(() => parseKeyRing(`${k}\n${Buffer.alloc(16).toString('base64')}\n`, '/d/kek'), /\/d\/kek:2: not a key-encryption key/);
      assert.throws(() => parseKeyRing(`\n${k}\n# x\n${k}\n`, '/d/kek'), /\/d\/kek:4: the same key twice/);
      assert.throws(() => parseKeyRing('# nothing\n\n', '/d/kek'), /\/d\/kek: not a key-encryption key \(no key in it\)/);
      const many = Array.from({ length: KEK_RING_MAX + 1 }, b64).join('\n');
      assert.throws(() => parseKeyRing(many, '/d/kek'), new RegExp(`${KEK_RING_MAX + 1} keys, at most ${KEK_RING_MAX}`));
      assert.throws(() => new KeyRing([]), /none given/);
      assert.throws(() => new KeyRing([Buffer.alloc(31)]), /31 bytes/);
    });

    it('loads a file of several keys from disk, with the same checks on its mode', () => {
      const f = path.join(dir, 'kek');
      const [a, b] = [b64(), b64()];
      fs.writeFileSync(f, `${a}\n${b}\n`, { mode: 0o600 });
      const ring = loadKek(f);
      assert.deepEqual(ring.keys.map((x) => x.toString('base64')), [a, b]);
      fs.writeFileSync(f, `${a}\nxyz\n`, { mode: 0o600 });
      assert.throws(() => loadKek(f), new RegExp(`${f.replace(/[/.]/g, '\\$&')}:2: not a key-encryption key`));
      // The raw AES-GCM functions are what the ring uses: a value sealed by seal() under the second key opens.
      fs.writeFileSync(f, `${a}\n${b}\n`, { mode: 0o600 });
      assert.equal(loadKek(f).open(seal(Buffer.from(b, 'base64'), Buffer.from('v'), 'x'), 'x').toString(), 'v');
    });
  });
});
