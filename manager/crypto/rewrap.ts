// After a KEK rotation: what a previous key sealed is sealed again under the
// current one. Only the small sealed keys change: the CA's private key and
// each secret's and config's data key; the values (sealed under their data
// keys) stay as they are. Every manager runs this at start, so once each one
// has been restarted with the new key first, nothing is left under the old
// key and its line can go (docs/security.md, "Rotating the KEK").
//
// A key re-wrapped away from is recorded as retired (/convoy/ca/kek): a
// manager whose first line is a retired key refuses to start, and refuses to
// seal, so a manager restarted with its file unedited cannot turn the
// rotation back.
//
//   await assertNotRetired(store, kek);           // at start, and before sealing
//   const r = await rewrapSealed(store, kek);      // { rewrapped, total, current, unopenable, failed }
import { CA_KEY_AAD } from '../ca/ca';
import { errMsg, type Logger } from '../../common/logger';
import type { Config, Secret } from '../../proto/mod';
import { key, type CaRecord, type KekRecord, type Kind, type Store } from '../store/store';
import { KekError, kekId, type KeyRing } from './kek';
import { dataKeyAad } from './values';

/** A secret or a config: both carry `dataKey` and `data`. */
type SealedObject = Secret | Config;

/** What holds a sealed data key: secrets and configs (their `dataKey`, sealed to `<etcd key>#data-key`). */
const VALUE_KINDS: Array<'secrets' | 'configs'> = ['secrets', 'configs'];

export interface SealedCount {
  /** Sealed keys in the store: the CA's and one per secret and config. */
  total: number;
  /** Of those, sealed under the current key. */
  current: number;
  /** Of those, opened by no key of the ring (sealed under a key this manager lacks). */
  unopenable: number;
}

export interface RewrapResult extends SealedCount {
  /** Sealed anew under the current key by this run. */
  rewrapped: number;
  /** Under a previous key still: their write failed (logged; the next start tries again). */
  failed: number;
}

/** The ids of the keys a rotation retired (none before the first rotation). */
export async function retiredKeks(store: Store): Promise<string[]> {
  return (await store.get<KekRecord>('ca', 'kek'))?.retired ?? [];
}

/** Throws when the ring's current key was retired by a rotation (a manager started with its file unedited). */
export async function assertNotRetired(store: Store, kek: KeyRing): Promise<void> {
  if ((await retiredKeks(store)).includes(kek.id))
    throw new KekError(`this manager's key-encryption key ${kek.id} (the first line of its file) was retired by a rotation: put the new key first in its file and restart it (docs/security.md, "Rotating the KEK")`);
}

/** Counts the sealed keys and which key of the ring sealed them (for `convoy cluster ca`). */
export function countSealed(kek: KeyRing, ca: CaRecord | undefined, objects: Iterable<{ kind: Kind; obj: { id: string; dataKey: string } }>): SealedCount {
  const out: SealedCount = { total: 0, current: 0, unopenable: 0 };
  for (const [sealed, aad] of sealedKeys(ca, objects)) {
    out.total++;
    const by = kek.sealedBy(sealed, aad);
    if (by === kek.current) out.current++;
    else if (!by) out.unopenable++;
  }
  return out;
}

/** [sealed, aad] of the CA key and of every data key (objects without one hold nothing sealed). */
function* sealedKeys(ca: CaRecord | undefined, objects: Iterable<{ kind: Kind; obj: { id: string; dataKey: string } }>): Generator<[string, string]> {
  if (ca?.sealedKey) yield [ca.sealedKey, CA_KEY_AAD];
  for (const { kind, obj } of objects) if (obj.dataKey) yield [obj.dataKey, dataKeyAad(key(kind, obj.id))];
}

/**
 * Seals under the ring's current key every sealed key a previous key of the
 * ring sealed, one guarded write per object (a concurrent change wins and is
 * looked at again; a write that fails is counted in `failed` and the rest go
 * on). What no key of the ring opens is left alone and counted
 * (`unopenable`): a manager given the wrong file must not destroy anything.
 * The previous keys it re-wrapped away from are recorded as retired. With a
 * ring of one key there is nothing to do and nothing is read.
 */
export async function rewrapSealed(store: Store, kek: KeyRing, log?: Logger): Promise<RewrapResult> {
  const out: RewrapResult = { total: 0, current: 0, unopenable: 0, rewrapped: 0, failed: 0 };
  if (kek.keys.length === 1) return out;
  const retiring = new Set<string>();
  /** One object: re-sealed under the current key when a previous key sealed it. */
  const one = async <T extends CaRecord | SealedObject>(kind: Kind, obj: T, sealedOf: (o: T) => string, aad: string, resealed: (o: T, sealed: string) => T) => {
    const sealed = sealedOf(obj);
    if (!sealed) return;
    out.total++;
    const by = kek.sealedBy(sealed, aad);
    if (by === kek.current) return void out.current++;
    if (!by) return void out.unopenable++;
    try {
      let wrote = false;
      await store.update<T>(kind, obj.id, (cur) => {
        wrote = false;
        if (!cur) return undefined;
        const plain = kek.open(sealedOf(cur), aad);
        try {
          if (kek.sealedUnderCurrent(sealedOf(cur), aad)) return undefined;
          wrote = true;
          return resealed(cur, kek.seal(plain, aad));
        } finally {
          plain.fill(0);
        }
      });
      retiring.add(kekId(by));
      if (wrote) out.rewrapped++;
      out.current++;
    } catch (e) {
      out.failed++;
      log?.warn('key-encryption key: re-wrapping an object failed; the next start tries again', { kind, id: obj.id, err: errMsg(e) });
    }
  };
  const ca = await store.get<CaRecord>('ca', 'root');
  if (ca) await one('ca', ca, (o) => o.sealedKey, CA_KEY_AAD, (o, sealedKey) => ({ ...o, sealedKey }));
  for (const kind of VALUE_KINDS) {
    for (const obj of (await store.list<SealedObject>(kind)).items) {
      await one(kind, obj, (o) => o.dataKey, dataKeyAad(key(kind, obj.id)), (o, dataKey) => ({ ...o, dataKey }));
    }
  }
  if (retiring.size) {
    await store.update<KekRecord>('ca', 'kek', (cur) => {
      const retired = [...new Set([...(cur?.retired ?? []), ...retiring])].filter((id) => id !== kek.id);
      return { id: 'kek', meta: cur?.meta ?? null, retired };
    });
  }
  if (out.rewrapped || out.unopenable || out.failed) log?.info('key-encryption key: sealed keys re-wrapped under the current key', { kek: kek.id, rewrapped: out.rewrapped, total: out.total, unopenable: out.unopenable, failed: out.failed, retired: [...retiring].join(',') });
  if (out.unopenable) log?.warn('key-encryption key: some sealed keys open under no key of this manager (a manager holds a key this one lacks?)', { unopenable: out.unopenable, kek: kek.id });
  return out;
}
