// The Store contract on the in-memory store, with a fake clock for leases.
import { strict as assert } from 'node:assert';
import { StoreUnavailableError } from './errors';
import { MemoryStore } from './memory-store';
import { storeContract, task } from './testing/contract';

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
