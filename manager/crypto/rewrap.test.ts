// KEK rotation on a MemoryStore: the CA's key and every secret's and
// config's data key move to the current key; values stay byte for byte;
// what no key of the ring opens is left alone.
import { strict as assert } from 'node:assert';
import * as crypto from 'node:crypto';
import type { Config, Secret } from '../../proto/mod';
import { CA_KEY_AAD, ClusterCa } from '../ca/ca';
import { MemoryStore } from '../store/memory-store';
import { key, type CaRecord } from '../store/store';
import { KeyRing } from './kek';
import { countSealed, rewrapSealed } from './rewrap';
import { openValue, sealValue } from './values';

const newKey = () => crypto.randomBytes(32);

async function putFile(store: MemoryStore, kind: 'secrets' | 'configs', id: string, kek: KeyRing, value: string): Promise<void> {
  const obj = { id, meta: null, spec: { name: `n-${id}`, labels: {} }, version: 1, ...sealValue(kek, Buffer.from(value), key(kind, id)), size: value.length, digest: '' };
  await store.put(kind, obj as Secret & Config, true);
}

async function cluster(kek: KeyRing): Promise<MemoryStore> {
  const store = new MemoryStore();
  await ClusterCa.loadOrCreate({ store, kek, cluster: 'c1', revoked: new Set(), defaultTtl: () => 3600_000 });
  await putFile(store, 'secrets', 's1', kek, 'db-password');
  await putFile(store, 'secrets', 's2', kek, 'api-token');
  await putFile(store, 'configs', 'c1', kek, 'app.conf body');
  return store;
}

async function sealedObjects(store: MemoryStore) {
  const secrets = (await store.list<Secret>('secrets')).items.map((obj) => ({ kind: 'secrets' as const, obj }));
  const configs = (await store.list<Config>('configs')).items.map((obj) => ({ kind: 'configs' as const, obj }));
  return [...secrets, ...configs];
}

describe('KEK rotation: re-wrapping what a previous key sealed', () => {
  it('moves the CA key and every data key to the current key; the values stay as they were; the old key then opens nothing', async () => {
    const [oldK, newK] = [newKey(), newKey()];
    const store = await cluster(new KeyRing([oldK]));
    const before = await sealedObjects(store);
    const ring = new KeyRing([newK, oldK]);
    assert.deepEqual(countSealed(ring, await store.get<CaRecord>('ca', 'root'), before), { total: 4, current: 0, unopenable: 0 });

    const r = await rewrapSealed(store, ring);
    assert.deepEqual(r, { total: 4, current: 4, unopenable: 0, rewrapped: 4 });

    const onlyNew = new KeyRing([newK]);
    const onlyOld = new KeyRing([oldK]);
    const after = await sealedObjects(store);
    for (const { kind, obj } of after) {
      const was = before.find((b) => b.obj.id === obj.id)!.obj;
      assert.equal(obj.data, was.data, `${obj.id}: the value sealed under its data key is unchanged`);
      assert.notEqual(obj.dataKey, was.dataKey, `${obj.id}: its data key is sealed anew`);
      assert.throws(() => openValue(onlyOld, obj, key(kind, obj.id)), /does not open/);
    }
    assert.deepEqual(after.map(({ kind, obj }) => openValue(onlyNew, obj, key(kind, obj.id)).toString()).sort(), ['api-token', 'app.conf body', 'db-password']);
    // A manager with only the new key loads the CA, and it is the same CA.
    const ca = await ClusterCa.loadOrCreate({ store, kek: onlyNew, cluster: 'c1', revoked: new Set(), defaultTtl: () => 3600_000 });
    assert.equal(ca.created, false);
    await assert.rejects(ClusterCa.loadOrCreate({ store, kek: onlyOld, cluster: 'c1', revoked: new Set(), defaultTtl: () => 3600_000 }), /does not open/);
    assert.doesNotMatch(JSON.stringify(await store.get<CaRecord>('ca', 'root')), /PRIVATE KEY/);
    assert.deepEqual(countSealed(onlyNew, await store.get<CaRecord>('ca', 'root'), after), { total: 4, current: 4, unopenable: 0 });

    const again = await rewrapSealed(store, ring);
    assert.equal(again.rewrapped, 0, 'a second run has nothing to do');
    assert.equal(again.current, 4);
  });

  it('with a ring of one key reads and writes nothing', async () => {
    const k = new KeyRing([newKey()]);
    const store = await cluster(k);
    const rev = (await store.list('secrets')).revision;
    assert.deepEqual(await rewrapSealed(store, k), { total: 0, current: 0, unopenable: 0, rewrapped: 0 });
    assert.equal((await store.list('secrets')).revision, rev);
  });

  it('leaves alone, and counts, what no key of the ring opens (a wrong file destroys nothing)', async () => {
    const [a, b, stranger] = [newKey(), newKey(), newKey()];
    const store = await cluster(new KeyRing([a]));
    await putFile(store, 'secrets', 's9', new KeyRing([stranger]), 'sealed elsewhere');
    const s9 = (await store.get<Secret>('secrets', 's9'))!;
    const r = await rewrapSealed(store, new KeyRing([b, a]));
    assert.deepEqual(r, { total: 5, current: 4, unopenable: 1, rewrapped: 4 });
    assert.deepEqual(await store.get<Secret>('secrets', 's9'), s9, 'untouched');
    assert.equal(openValue(new KeyRing([stranger]), s9, key('secrets', 's9')).toString(), 'sealed elsewhere');
    // A ring that lacks the key sealing the CA leaves the CA record as it was.
    const caBefore = await store.get<CaRecord>('ca', 'root');
    await rewrapSealed(store, new KeyRing([newKey(), stranger]));
    assert.deepEqual(await store.get<CaRecord>('ca', 'root'), caBefore);
    assert.ok(new KeyRing([b]).sealedUnderCurrent(caBefore!.sealedKey, CA_KEY_AAD));
  });
});
