// The key-encryption key (KEK): 32 random bytes the managers hold, in a 0600
// file in the manager's data dir (or `--kek-file`). Everything secret that
// goes into etcd (the CA's private key, the data keys of secrets and configs)
// is sealed with AES-256-GCM under it; etcd never holds a plaintext secret.
//
//   const kek = loadOrCreateKek(path.join(dataDir, 'kek'));
//   const sealed = seal(kek, Buffer.from(pem), 'ca-key');   // store this
//   const pem2 = open(kek, sealed, 'ca-key');               // throws if tampered
//
// `aad` binds a sealed value to what it is (its etcd key, say): a value moved
// to another key does not open.
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';

export const KEK_BYTES = 32;
const VERSION = 'v1';

export class KekError extends Error {}

/** Reads the KEK file, or creates it (0600, in a 0700 directory) if absent. */
export function loadOrCreateKek(file: string): Buffer {
  if (fs.existsSync(file)) return loadKek(file);
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const key = crypto.randomBytes(KEK_BYTES);
  fs.writeFileSync(file, key.toString('base64') + '\n', { mode: 0o600, flag: 'wx' });
  return key;
}

/** Reads a KEK file; refuses one that others can read or that is not 32 bytes. */
export function loadKek(file: string): Buffer {
  const st = fs.statSync(file);
  if ((st.mode & 0o077) !== 0) throw new KekError(`${file}: key-encryption key is readable by others (mode ${(st.mode & 0o777).toString(8)}); chmod 600 it`);
  const key = Buffer.from(fs.readFileSync(file, 'utf8').trim(), 'base64');
  if (key.length !== KEK_BYTES) throw new KekError(`${file}: not a key-encryption key (want ${KEK_BYTES} base64 bytes)`);
  return key;
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
