// The status coalescer on a MemoryStore and a real StateCache: calls of
// several nodes in one commit, the forward-only and own-task rules kept per
// call, a task reported twice committed once with the newer state, a store
// refusal reaching every caller of that commit.
import { strict as assert } from 'node:assert';
import type { Task } from '../../proto/mod';
import { contractTask } from '../../proto/testing/dispatcher-contract';
import { nullLogger } from '../../common/logger';
import { StateCache } from '../state/cache';
import { MemoryStore } from '../store/memory-store';
import { StoreUnavailableError, type Store, type Write } from '../store/store';
import { StatusCoalescer } from './status';

const st = (state: NonNullable<Task['status']>['state'], message = '') => ({ state, timestamp: 1, message, err: '', exitCode: 0, pid: 0, health: '' });

describe('StatusCoalescer (MemoryStore)', () => {
  let store: MemoryStore;
  let cache: StateCache;
  let batches: Write[][];
  let refuse: boolean;
  let counting: Store;

  beforeEach(async () => {
    store = new MemoryStore();
    cache = new StateCache(store, nullLogger);
    await cache.start();
    batches = [];
    refuse = false;
    counting = new Proxy<Store>(store, {
      get(target, prop) {
        if (prop === 'batch')
          return (ws: Write[]) => {
            batches.push(ws);
            if (refuse) return Promise.reject(new StoreUnavailableError('etcd: too many requests'));
            return target.batch(ws);
          };
        const v: unknown = Reflect.get(target, prop);
        return typeof v === 'function' ? v.bind(target) : v;
      },
    });
  });
  afterEach(async () => {
    await cache.close();
    await store.close();
  });

  const put = async (t: Task) => cache.waitFor(await store.put('tasks', t, true));
  const state = async (id: string) => (await store.get<Task>('tasks', id))?.status?.state;

  it('commits the calls that arrive during a commit together, keeping each rule per task', async () => {
    await put(contractTask('a1', 'node-a'));
    await put(contractTask('a2', 'node-a'));
    await put(contractTask('b1', 'node-b'));
    await put(contractTask('done', 'node-b', 'FAILED'));
    const c = new StatusCoalescer(counting, cache);
    // The first call starts a commit; the others arrive while it is in flight and share the next one.
    const first = c.submit('node-a', [{ taskId: 'a1', status: st('ACCEPTED') }]);
    const rest = [
      c.submit('node-a', [{ taskId: 'a1', status: st('STARTING') }, { taskId: 'a2', status: st('RUNNING') }]),
      c.submit('node-a', [{ taskId: 'a1', status: st('RUNNING') }]),
      // Not node-b's task: ignored. A terminal task does not go back to RUNNING.
      c.submit('node-b', [{ taskId: 'a2', status: st('FAILED') }, { taskId: 'b1', status: st('RUNNING') }, { taskId: 'done', status: st('RUNNING') }]),
    ];
    assert.deepEqual(await first, { applied: 1, ignored: 0 });
    const [r1, r2, r3] = await Promise.all(rest);
    assert.equal(batches.length, 2, 'one commit for the first call, one for the three that came during it');
    assert.deepEqual(batches[1].map((w) => w.obj.id).sort(), ['a1', 'a2', 'b1'], 'a1 written once in the second commit');
    assert.equal(await state('a1'), 'RUNNING', 'the newest report of a1 wins');
    assert.equal(await state('a2'), 'RUNNING', "node-b's report on node-a's task is ignored");
    assert.equal(await state('b1'), 'RUNNING');
    assert.equal(await state('done'), 'FAILED', 'never backwards');
    assert.deepEqual(r1, { applied: 2, ignored: 0 }, 'a1 superseded by a newer report that landed counts as applied');
    assert.deepEqual(r2, { applied: 1, ignored: 0 });
    assert.deepEqual(r3, { applied: 1, ignored: 2 });
  });

  it('a store refusal reaches every call of that commit; the next calls commit again', async () => {
    await put(contractTask('a1', 'node-a'));
    await put(contractTask('b1', 'node-b'));
    const c = new StatusCoalescer(counting, cache);
    refuse = true;
    const calls = [c.submit('node-a', [{ taskId: 'a1', status: st('RUNNING') }]), c.submit('node-b', [{ taskId: 'b1', status: st('RUNNING') }])];
    for (const p of calls) await assert.rejects(p, StoreUnavailableError);
    refuse = false;
    assert.deepEqual(await c.submit('node-b', [{ taskId: 'b1', status: st('RUNNING') }]), { applied: 1, ignored: 0 });
    assert.equal(await state('a1'), 'ASSIGNED');
    assert.equal(await state('b1'), 'RUNNING');
  });

  it('cuts what one commit takes at its limit, in whole calls', async () => {
    for (let i = 0; i < 6; i++) await put(contractTask(`t${i}`, 'node-a'));
    const c = new StatusCoalescer(counting, cache, 2);
    const calls = [0, 1, 2].map((k) => c.submit('node-a', [{ taskId: `t${2 * k}`, status: st('RUNNING') }, { taskId: `t${2 * k + 1}`, status: st('RUNNING') }]));
    await Promise.all(calls);
    assert.deepEqual(batches.map((b) => b.length), [2, 2, 2]);
    for (let i = 0; i < 6; i++) assert.equal(await state(`t${i}`), 'RUNNING');
  });
});
