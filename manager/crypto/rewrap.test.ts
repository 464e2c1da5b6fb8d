// KEK rotation on a MemoryStore: the CA's key and every secret's and
// config's data key move to the current key; values stay byte for byte;
// what no key of the ring opens is left alone.
import { strict as assert } from 'node:assert';
import * as crypto from 'node:crypto';
import type { Config, Secret } from '../../proto/mod';
import { CA_KEY_AAD, ClusterCa } from '../ca/ca';
import { MemoryStore } from '../store/memory-store';
import { key, type CaRecord } from '../store/store';
import { KeyRing, kekId } from './kek';
import { assertNotRetired, countSealed, retiredKeks, rewrapSealed } from './rewrap';
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
    assert.deepEqual(r, { total: 4, current: 4, unopenable: 0, rewrapped: 4, failed: 0 });
    assert.deepEqual(await retiredKeks(store), [kekId(oldK)], 'the old key is recorded as retired');

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
    assert.deepEqual(await rewrapSealed(store, k), { total: 0, current: 0, unopenable: 0, rewrapped: 0, failed: 0 });
    assert.deepEqual(await retiredKeks(store), []);
    assert.equal((await store.list('secrets')).revision, rev);
  });

  it('leaves alone, and counts, what no key of the ring opens (a wrong file destroys nothing)', async () => {
    const [a, b, stranger] = [newKey(), newKey(), newKey()];
    const store = await cluster(new KeyRing([a]));
    await putFile(store, 'secrets', 's9', new KeyRing([stranger]), 'sealed elsewhere');
    const s9 = (await store.get<Secret>('secrets', 's9'))!;
    const r = await rewrapSealed(store, new KeyRing([b, a]));
    assert.deepEqual(r, { total: 5, current: 4, unopenable: 1, rewrapped: 4, failed: 0 });
    assert.deepEqual(await store.get<Secret>('secrets', 's9'), s9, 'untouched');
    assert.equal(openValue(new KeyRing([stranger]), s9, key('secrets', 's9')).toString(), 'sealed elsewhere');
    // A ring that lacks the key sealing the CA leaves the CA record as it was.
    const caBefore = await store.get<CaRecord>('ca', 'root');
    await rewrapSealed(store, new KeyRing([newKey(), stranger]));
    assert.deepEqual(await store.get<CaRecord>('ca', 'root'), caBefore);
    assert.ok(new KeyRing([b]).sealedUnderCurrent(caBefore!.sealedKey, CA_KEY_AAD));
  });

  it('a manager whose first key was retired is refused (its file not edited), and cannot turn the rotation back', async () => {
    const [oldK, newK] = [newKey(), newKey()];
    const store = await cluster(new KeyRing([oldK]));
    await rewrapSealed(store, new KeyRing([newK, oldK]));
    const unedited = new KeyRing([oldK, newK]);
    await assert.rejects(assertNotRetired(store, unedited), new RegExp(`key-encryption key ${kekId(oldK)} \\(the first line of its file\\) was retired by a rotation: put the new key first`));
    await assertNotRetired(store, new KeyRing([newK]));
    // Had it re-wrapped anyway, the old key would seal again: rewrapSealed itself never un-retires a key.
    await rewrapSealed(store, new KeyRing([newK, oldK]));
    assert.deepEqual(await retiredKeks(store), [kekId(oldK)]);
  });

  it('one object that cannot be written is counted as failed, and the others are still re-wrapped', async () => {
    const [oldK, newK] = [newKey(), newKey()];
    const store = await cluster(new KeyRing([oldK]));
    const update = store.update.bind(store);
    // A store whose write of one secret always fails (etcd refusing it, a conflict that never ends).
    store.update = (async (kind: string, id: string, mutate: never, attempts?: number) => {
      if (kind === 'secrets' && id === 's1') throw new Error('etcd: request timed out');
      return update(kind as never, id, mutate, attempts);
    }) as typeof store.update;
    const ring = new KeyRing([newK, oldK]);
    const r = await rewrapSealed(store, ring);
    assert.deepEqual(r, { total: 4, current: 3, unopenable: 0, rewrapped: 3, failed: 1 });
    const s1 = (await store.get<Secret>('secrets', 's1'))!;
    assert.equal(ring.sealedUnderCurrent(s1.dataKey, `${key('secrets', 's1')}#data-key`), false, 's1 still under the old key (and still opens: the old key stays in the ring)');
    assert.equal(openValue(ring, s1, key('secrets', 's1')).toString(), 'db-password');
    store.update = update;
    assert.deepEqual(await rewrapSealed(store, ring), { total: 4, current: 4, unopenable: 0, rewrapped: 1, failed: 0 }, 'the next start finishes it');
  });
});
