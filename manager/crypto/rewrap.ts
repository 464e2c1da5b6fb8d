// After a KEK rotation: what a previous key sealed is sealed again under the
// current one. Only the small sealed keys change: the CA's private key and
// each secret's and config's data key; the values (sealed under their data
// keys) stay as they are. Every manager runs this at start, so once each one
// has been restarted with the new key first, nothing is left under the old
// key and its line can go (docs/security.md, "Rotating the KEK").
//
//   const r = await rewrapSealed(store, kek);   // { rewrapped, total, unopenable }
import { CA_KEY_AAD } from '../ca/ca';
import type { Logger } from '../../common/logger';
import type { Config, Secret } from '../../proto/mod';
import { key, type CaRecord, type Kind, type Store } from '../store/store';
import type { KeyRing } from './kek';
import { dataKeyAad, rewrapValue } from './values';

/** What holds a sealed data key: secrets and configs (their `dataKey`, sealed to `<etcd key>#data-key`). */
const VALUE_KINDS: Kind[] = ['secrets', 'configs'];

/** A secret or a config: both carry `dataKey` and `data`. */
type SealedObject = Secret | Config;

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
}

/** Counts the sealed keys and which key of the ring sealed them (for `convoy cluster ca`). */
export function countSealed(kek: KeyRing, ca: CaRecord | undefined, objects: Iterable<{ kind: Kind; obj: { id: string; dataKey: string } }>): SealedCount {
  const out: SealedCount = { total: 0, current: 0, unopenable: 0 };
  const one = (sealed: string, aad: string) => {
    out.total++;
    if (kek.sealedUnderCurrent(sealed, aad)) out.current++;
    else if (!opens(kek, sealed, aad)) out.unopenable++;
  };
  if (ca?.sealedKey) one(ca.sealedKey, CA_KEY_AAD);
  for (const { kind, obj } of objects) if (obj.dataKey) one(obj.dataKey, dataKeyAad(key(kind, obj.id)));
  return out;
}

function opens(kek: KeyRing, sealed: string, aad: string): boolean {
  try {
    kek.open(sealed, aad).fill(0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Seals under the ring's current key every sealed key a previous key of the
 * ring sealed, one guarded write per object (a concurrent change wins and is
 * looked at again). What no key of the ring opens is left alone and counted
 * (`unopenable`): a manager given the wrong file must not destroy anything.
 * With a ring of one key there is nothing to do and nothing is read.
 */
export async function rewrapSealed(store: Store, kek: KeyRing, log?: Logger): Promise<RewrapResult> {
  const out: RewrapResult = { total: 0, current: 0, unopenable: 0, rewrapped: 0 };
  if (kek.keys.length === 1) return out;
  const ca = await store.get<CaRecord>('ca', 'root');
  if (ca) {
    out.total++;
    let wrote = false;
    await store.update<CaRecord>('ca', 'root', (cur) => {
      wrote = false;
      if (!cur || kek.sealedUnderCurrent(cur.sealedKey, CA_KEY_AAD) || !opens(kek, cur.sealedKey, CA_KEY_AAD)) return undefined;
      const pem = kek.open(cur.sealedKey, CA_KEY_AAD);
      try {
        wrote = true;
        return { ...cur, sealedKey: kek.seal(pem, CA_KEY_AAD) };
      } finally {
        pem.fill(0);
      }
    });
    tally(out, kek, wrote, (await store.get<CaRecord>('ca', 'root'))?.sealedKey, CA_KEY_AAD);
  }
  for (const kind of VALUE_KINDS) {
    for (const obj of (await store.list<SealedObject>(kind)).items) {
      const aad = key(kind, obj.id);
      out.total++;
      let wrote = false;
      const after = await store.update<SealedObject>(kind, obj.id, (cur) => {
        wrote = false;
        if (!cur || !opens(kek, cur.dataKey, dataKeyAad(aad))) return undefined;
        const v = rewrapValue(kek, { dataKey: cur.dataKey, data: cur.data }, aad);
        if (!v) return undefined;
        wrote = true;
        return { ...cur, dataKey: v.dataKey };
      });
      tally(out, kek, wrote, (after ?? (await store.get<SealedObject>(kind, obj.id)))?.dataKey, dataKeyAad(aad));
    }
  }
  if (out.rewrapped || out.unopenable) log?.info('key-encryption key: sealed keys re-wrapped under the current key', { kek: kek.id, rewrapped: out.rewrapped, total: out.total, unopenable: out.unopenable });
  if (out.unopenable) log?.warn('key-encryption key: some sealed keys open under no key of this manager (a manager holds a key this one lacks?)', { unopenable: out.unopenable, kek: kek.id });
  return out;
}

function tally(out: RewrapResult, kek: KeyRing, wrote: boolean, sealed: string | undefined, aad: string): void {
  if (wrote) out.rewrapped++;
  if (sealed === undefined) {
    out.total--; // removed meanwhile
    return;
  }
  if (kek.sealedUnderCurrent(sealed, aad)) out.current++;
  else if (!opens(kek, sealed, aad)) out.unopenable++;
}
