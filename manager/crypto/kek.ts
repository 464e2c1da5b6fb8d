// The key-encryption key (KEK): 32 random bytes the managers hold, in a 0600
// file in the manager's data dir (or `--kek-file`). Everything secret that
// goes into etcd (the CA's private key, the data keys of secrets and configs)
// is sealed with AES-256-GCM under it; etcd never holds a plaintext secret.
//
//   const kek = loadOrCreateKek(path.join(dataDir, 'kek'));   // a KeyRing
//   const sealed = kek.seal(Buffer.from(pem), 'ca-key');       // store this
//   const pem2 = kek.open(sealed, 'ca-key');                   // throws if tampered
//
// `aad` binds a sealed value to what it is (its etcd key, say): a value moved
// to another key does not open.
//
// Rotation (docs/security.md, "Rotating the KEK"): the file holds one key per
// line (base64; blank lines and `#` comments ignored). The first is the
// current key, which seals; the others are previous keys, which only open.
// A manager re-wraps at start whatever is still sealed under a previous key
// (./rewrap.ts), so once every manager runs with the new key first, the old
// line can go.
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';

export const KEK_BYTES = 32;
const VERSION = 'v1';

export class KekError extends Error {}

/** How many keys a KEK file may hold (the current one and those it replaces). */
export const KEK_RING_MAX = 8;

/** The id of a key: 8 bytes of a SHA-256 over a label and the key, hex. Shown to operators; tells nothing of the key. */
export function kekId(key: Buffer): string {
  return crypto.createHash('sha256').update('convoy key-encryption key id\0').update(key).digest('hex').slice(0, 16);
}

/**
 * The managers' key-encryption keys: the current one (it seals) and the
 * previous ones (they only open, during a rotation).
 */
export class KeyRing {
  readonly keys: readonly Buffer[];

  constructor(keys: readonly Buffer[]) {
    if (keys.length === 0) throw new KekError('key-encryption key: none given');
    if (keys.length > KEK_RING_MAX) throw new KekError(`key-encryption key: ${keys.length} keys, at most ${KEK_RING_MAX}`);
    for (const k of keys) if (k.length !== KEK_BYTES) throw new KekError(`key-encryption key: ${k.length} bytes, want ${KEK_BYTES}`);
    this.keys = [...keys];
  }

  /** The key that seals. */
  get current(): Buffer {
    return this.keys[0];
  }

  /** The current key's id (kekId). */
  get id(): string {
    return kekId(this.current);
  }

  /** Seals under the current key. */
  seal(plaintext: Buffer, aad: string): string {
    return seal(this.current, plaintext, aad);
  }

  /** Opens under whichever key of the ring sealed it (the current one first). */
  open(sealed: string, aad: string): Buffer {
    let refused: unknown;
    for (const k of this.keys) {
      try {
        return open(k, sealed, aad);
      } catch (e) {
        // A malformed value is malformed under every key: said at once.
        if (!(e instanceof KekError) || !e.message.includes('does not open')) throw e;
        refused = e;
      }
    }
    throw refused;
  }

  /** Whether sealed opens under the current key (false: a previous key sealed it, or none of ours did). */
  sealedUnderCurrent(sealed: string, aad: string): boolean {
    return this.sealedBy(sealed, aad) === this.current;
  }

  /** The key of the ring that sealed it (the current one first), or undefined when none did. */
  sealedBy(sealed: string, aad: string): Buffer | undefined {
    for (const k of this.keys) {
      try {
        open(k, sealed, aad).fill(0);
        return k;
      } catch {
        // not this one
      }
    }
    return undefined;
  }

  /** The ids of every key (kekId), the current one first. */
  get ids(): string[] {
    return this.keys.map(kekId);
  }

  /** The file's text: one base64 key per line, the current one first (also what a joining manager is handed). */
  text(): string {
    return this.keys.map((k) => k.toString('base64') + '\n').join('');
  }
}

/** Parses a KEK file's text (one base64 key per line, the current one first; blank lines and `#` comments skipped); errors name the line. */
export function parseKeyRing(text: string, where: string): KeyRing {
  const keys: Buffer[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    if (line === '' || line.startsWith('#')) continue;
    // Standard or URL-safe base64 (what Buffer.from(…, 'base64') has always taken), nothing else.
    const key = /^[A-Za-z0-9+/_-]+={0,2}$/.test(line) ? Buffer.from(line, 'base64') : Buffer.alloc(0);
    if (key.length !== KEK_BYTES) throw new KekError(`${where}:${i + 1}: not a key-encryption key (want ${KEK_BYTES} base64 bytes; make one with: head -c 32 /dev/urandom | base64)`);
    if (keys.some((k) => k.equals(key))) throw new KekError(`${where}:${i + 1}: the same key twice`);
    keys.push(key);
  }
  if (keys.length === 0) throw new KekError(`${where}: not a key-encryption key (no key in it)`);
  if (keys.length > KEK_RING_MAX) throw new KekError(`${where}: ${keys.length} keys, at most ${KEK_RING_MAX} (drop the oldest lines once nothing is sealed under them: convoy cluster ca)`);
  return new KeyRing(keys);
}

/** Reads the KEK file, or creates it (one new key, 0600, in a 0700 directory) if absent. */
export function loadOrCreateKek(file: string): KeyRing {
  if (fs.existsSync(file)) return loadKek(file);
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const ring = new KeyRing([crypto.randomBytes(KEK_BYTES)]);
  fs.writeFileSync(file, ring.text(), { mode: 0o600, flag: 'wx' });
  return ring;
}

/** Reads a KEK file; refuses one that others can read or that holds anything but keys. */
export function loadKek(file: string): KeyRing {
  const st = fs.statSync(file);
  if ((st.mode & 0o077) !== 0) throw new KekError(`${file}: key-encryption key is readable by others (mode ${(st.mode & 0o777).toString(8)}); chmod 600 it`);
  if (st.size > 64 * 1024) throw new KekError(`${file}: not a key-encryption key (${st.size} bytes)`);
  return parseKeyRing(fs.readFileSync(file, 'utf8'), file);
}

/** `v1:<base64 iv|tag|ciphertext>`. */
export function seal(key: Buffer, plaintext: Buffer, aad: string): string {
  const iv = crypto.randomBytes(12);
  const c = crypto.createCipheriv('aes-256-gcm', key, iv);
  c.setAAD(Buffer.from(aad));
  const ct = Buffer.concat([c.update(plaintext), c.final()]);
  return `${VERSION}:${Buffer.concat([iv, c.getAuthTag(), ct]).toString('base64')}`;
}

export function open(key: Buffer, sealed: string, aad: string): Buffer {
  if (!sealed.startsWith(`${VERSION}:`)) throw new KekError('sealed value: unknown format');
  const raw = Buffer.from(sealed.slice(VERSION.length + 1), 'base64');
  if (raw.length < 28) throw new KekError('sealed value: too short');
  const d = crypto.createDecipheriv('aes-256-gcm', key, raw.subarray(0, 12));
  d.setAAD(Buffer.from(aad));
  d.setAuthTag(raw.subarray(12, 28));
  try {
    return Buffer.concat([d.update(raw.subarray(28)), d.final()]);
  } catch {
    throw new KekError('sealed value does not open under this key-encryption key (wrong key or tampered)');
  }
}
