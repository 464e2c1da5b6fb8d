// The StateCache applies a large watch batch in slices: the event loop turns
// between them, and no one (waiters, listeners) is told of half a batch.
import { strict as assert } from 'node:assert';
import { nullLogger } from '../../common/logger';
import type { Task } from '../../proto/mod';
import { MemoryStore } from '../store/memory-store';
import type { Write } from '../store/store';
import { APPLY_SLICE_EVENTS, StateCache, type Change } from './cache';

const N = 5 * APPLY_SLICE_EVENTS + 7;

function taskWrite(i: number): Write {
  const t = { id: `t${i}`, meta: null, serviceId: 'svc', nodeId: `n${i % 10}`, slot: i, desiredState: 'RUNNING', status: { state: 'ASSIGNED' } } as unknown as Task;
  return { op: 'create', kind: 'tasks', obj: t };
}

describe('StateCache', () => {
  let cache: StateCache | undefined;
  afterEach(async () => {
    await cache?.close();
    cache = undefined;
  });

  it('applies one large watch batch in slices, telling waiters and listeners only of the whole batch', async () => {
    const store = new MemoryStore();
    let turns = 0;
    /** Seen at every turn of the loop the cache gives back: how far the batch is applied, and what the cache claims. */
    const during: { tasks: number; revision: number }[] = [];
    cache = new StateCache(store, nullLogger, async () => {
      turns++;
      during.push({ tasks: c.tasks.size, revision: c.revision });
      await new Promise<void>((r) => setImmediate(r));
    });
    const c = cache;
    await c.start();
    const rev0 = c.revision;
    const seen: { tasks: number; changed: number }[] = [];
    c.onChange((ch: Change) => seen.push({ tasks: c.tasks.size, changed: ch.tasks.size }));
    const r = await store.batch(Array.from({ length: N }, (_, i) => taskWrite(i)));
    assert.equal(r.committed, N);
    assert.equal(await c.waitFor(r.revision), true);
    const settledAt = c.tasks.size;

    assert.ok(turns >= Math.ceil(N / APPLY_SLICE_EVENTS) - 1, `the loop turned between slices (${turns} turns)`);
    assert.ok(during.some((d) => d.tasks > 0 && d.tasks < N), 'the batch was applied in parts');
    for (const d of during) assert.equal(d.revision, rev0, 'the revision moves only with the whole batch');
    assert.equal(settledAt, N, 'waitFor resolved on the whole batch');
    assert.deepEqual(seen, [{ tasks: N, changed: N }], 'one notification, of the whole batch');
    assert.equal([...c.tasksOnNode('n3')].length, Math.floor((N - 4) / 10) + 1, 'the node index holds the whole batch');
  });

  it('applies batches in order, a later one after the earlier one is whole', async () => {
    const store = new MemoryStore();
    cache = new StateCache(store, nullLogger);
    const c = cache;
    await c.start();
    const order: number[] = [];
    c.onChange(() => order.push(c.revision));
    const r1 = await store.batch(Array.from({ length: 3 * APPLY_SLICE_EVENTS }, (_, i) => taskWrite(i)));
    const r2 = await store.batch([{ op: 'delete', kind: 'tasks', obj: { ...(taskWrite(0).obj as Task), meta: { version: r1.revision, createdAt: 0, updatedAt: 0 } } }]);
    assert.equal(r2.committed, 1);
    assert.equal(await c.waitFor(r2.revision), true);
    await c.settled();
    assert.deepEqual(order, [r1.revision, r2.revision]);
    assert.equal(c.tasks.has('t0'), false);
    assert.equal(c.tasks.size, 3 * APPLY_SLICE_EVENTS - 1);
  });

  it('settled() resolves at the boundary of the batches received before it, while more keep coming', async () => {
    const store = new MemoryStore();
    cache = new StateCache(store, nullLogger);
    const c = cache;
    await c.start();
    const n1 = 3 * APPLY_SLICE_EVENTS;
    await store.batch(Array.from({ length: n1 }, (_, i) => taskWrite(i)));
    // The batch is delivered (a microtask of the store), then a second one follows before the first is applied.
    await Promise.resolve();
    const settled = c.settled().then(() => c.tasks.size);
    await store.batch(Array.from({ length: n1 }, (_, i) => taskWrite(n1 + i)));
    assert.equal(await settled, n1, 'the first batch whole, nothing of the second');
    await c.settled();
    assert.equal(c.tasks.size, 2 * n1);
  });
});
