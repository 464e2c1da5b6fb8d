// The Store contract on the in-memory store, with a fake clock for leases.
import { strict as assert } from 'node:assert';
import { StoreUnavailableError } from './errors';
import { MemoryStore } from './memory-store';
import { storeContract, task } from './testing/contract';
import { encodeObject, encodeSpecOnce } from './store';

storeContract('MemoryStore', async () => {
  let now = 1_000_000;
  const store = new MemoryStore({ now: () => now });
  return {
    store,
    async lapse(_leaseId, ttlS) {
      now += ttlS * 1000 + 1;
      store.expireLeases();
    },
    close: () => store.close(),
  };
});

describe('MemoryStore', () => {
  it('lapses a lease only after its TTL from the last keepalive', async () => {
    let now = 0;
    const s = new MemoryStore({ now: () => now });
    const l = await s.grantLease(3);
    await l.put('alive', 'n1', 'x');
    now = 2_500;
    await l.keepAlive();
    now = 5_000; // 2.5 s after the keepalive: still alive
    assert.ok(s.leaseAlive(l.id));
    now = 5_501;
    assert.ok(!s.leaseAlive(l.id));
    assert.deepEqual([...(await s.aliveNodeIds())], []);
  });

  it('the unavailable switch fails every call with StoreUnavailableError', async () => {
    const s = new MemoryStore();
    s.unavailable = true;
    await assert.rejects(s.put('tasks', task('t'), true), StoreUnavailableError);
    await assert.rejects(s.batch([]), StoreUnavailableError);
  });
});

describe('encodeObject with a spec shared by many objects (encodeSpecOnce)', () => {
  const task = (id: string, spec: object) => ({ id, meta: { version: 3, createdAt: 100, updatedAt: 100 }, serviceId: 's1', slot: 1, spec, status: { state: 'PENDING' } });

  it('writes the same object as the plain encoding, the spec encoded once', () => {
    const spec = { container: { image: 'busybox', command: ['httpd', '-f'], env: ['A="quoted"\n'] }, networks: ['default'], ports: [] };
    const plain = JSON.parse(encodeObject(task('t1', { ...spec }), 500));
    encodeSpecOnce(spec);
    const a = encodeObject(task('t1', spec), 500);
    assert.deepEqual(JSON.parse(a), plain);
    assert.equal(JSON.parse(a).meta.updatedAt, 500);
    // Each object keeps its own fields around the shared spec.
    const b = JSON.parse(encodeObject(task('t2', spec), 600));
    assert.equal(b.id, 't2');
    assert.deepEqual(b.spec, spec);
    // Encoded once: what it was when shared (the contract is that nobody changes it after).
    spec.networks.push('other');
    assert.deepEqual(JSON.parse(encodeObject(task('t4', spec))).spec.networks, ['default']);
  });

  it('encodes a spec that was not shared as it is now', () => {
    const spec = { container: { image: 'a' } };
    const t = task('t3', spec);
    spec.container.image = 'b';
    assert.equal(JSON.parse(encodeObject(t)).spec.container.image, 'b');
  });
});
