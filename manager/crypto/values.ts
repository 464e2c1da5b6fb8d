// Envelope encryption of secret and config values in etcd. Each value gets
// a random 256-bit data key of its own; the value is sealed under the data
// key and the data key under the managers' key-encryption key (./kek.ts),
// both AES-256-GCM with the object's etcd key as associated data, so a
// sealed value copied to another object's key does not open. Rotating the
// KEK then means re-wrapping data keys, not re-encrypting values.
//
//   const v = sealValue(kek, Buffer.from('hunter2'), key('secrets', id));
//   openValue(kek, v, key('secrets', id));   // → the plaintext; throws KekError if tampered
import * as crypto from 'node:crypto';
import { KEK_BYTES, open, seal } from './kek';

export interface SealedValue {
  /** The data key, sealed under the KEK. */
  dataKey: string;
  /** The value, sealed under the data key. */
  data: string;
}

export function sealValue(kek: Buffer, plaintext: Buffer, aad: string): SealedValue {
  const dk = crypto.randomBytes(KEK_BYTES);
  try {
    return { dataKey: seal(kek, dk, `${aad}#data-key`), data: seal(dk, plaintext, aad) };
  } finally {
    dk.fill(0);
  }
}

export function openValue(kek: Buffer, v: SealedValue, aad: string): Buffer {
  const dk = open(kek, v.dataKey, `${aad}#data-key`);
  try {
    return open(dk, v.data, aad);
  } finally {
    dk.fill(0);
  }
}
