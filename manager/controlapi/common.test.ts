// The Control API's read barrier: reads from the cache as fresh as the store,
// a burst of reads sharing one sync.
import { strict as assert } from 'node:assert';
import { service } from '../orchestrator/testing/fixtures';
import { nullLogger } from '../../common/logger';
import { StateCache } from '../state/cache';
import { MemoryStore } from '../store/memory-store';
import { ReadBarrier } from './common';

describe('ReadBarrier', () => {
  let store: MemoryStore;
  let cache: StateCache;
  beforeEach(async () => {
    store = new MemoryStore();
    cache = new StateCache(store, nullLogger);
    await cache.start();
  });
  afterEach(async () => {
    await cache.close();
  });

  it('a read sees every write that completed before it, by any writer', async () => {
    const reads = new ReadBarrier(store, cache, 'm1');
    await store.forcePut('services', { ...service('s1'), meta: null, spec: null });
    await reads.fresh();
    assert.ok(cache.services.has('s1'));
  });

  it('a burst of reads shares syncs: one in flight, at most one queued behind it', async () => {
    let syncs = 0;
    const counting = new Proxy(store, {
      get(target, prop) {
        if (prop === 'syncRevision')
          return (who: string) => {
            syncs++;
            return target.syncRevision(who);
          };
        const v: unknown = Reflect.get(target, prop);
        return typeof v === 'function' ? v.bind(target) : v;
      },
    });
    const reads = new ReadBarrier(counting, cache, 'm1');
    await Promise.all(Array.from({ length: 50 }, () => reads.fresh()));
    assert.ok(syncs <= 2, `${syncs} syncs for 50 concurrent reads`);
  });

  it('fails UNAVAILABLE-style when the store is out of reach', async () => {
    const reads = new ReadBarrier(store, cache, 'm1');
    store.unavailable = true;
    await assert.rejects(reads.fresh(), { name: 'StoreUnavailableError' });
    store.unavailable = false;
    await reads.fresh();
  });
});
