// Secrets and configs in the assignment stream: a node gets a value only
// while one of its live tasks uses it, ahead of that task, a new version
// after a rotation, and a REMOVE when its last such task is gone; a node
// with no such task never sees it; a value that does not open is not sent.
import { strict as assert } from 'node:assert';
import * as crypto from 'node:crypto';
import type { FileReference, Secret, Task } from '../../proto/mod';
import { contractTask } from '../../proto/testing/dispatcher-contract';
import { nullLogger } from '../../common/logger';
import { sealValue } from '../crypto/values';
import { openFile, SECRETS } from '../controlapi/files';
import { StateCache } from '../state/cache';
import { MemoryStore } from '../store/memory-store';
import { key } from '../store/store';
import { AssignmentView, type AssignmentChange, type FileOpener } from './assignments';
import { KeyRing } from '../crypto/kek';

const kek = new KeyRing([crypto.randomBytes(32)]);
const opener: FileOpener = (noun, o) => openFile(kek, noun, o);

function secret(id: string, value: string, version = 1): Secret {
  return { id, meta: null, spec: { name: `s-${id}`, labels: {} }, version, ...sealValue(kek, Buffer.from(value), key('secrets', id)), size: value.length, digest: '' };
}
const ref = (id: string): FileReference => ({ id, name: `s-${id}`, target: `/run/secrets/s-${id}`, uid: 0, gid: 0, mode: 0o444 });
function taskWith(id: string, nodeId: string, secrets: string[]): Task {
  const t = contractTask(id, nodeId, 'ASSIGNED');
  return { ...t, spec: { container: { secrets: secrets.map(ref), configs: [] } as never, resources: null, restart: null, placement: null, networks: [], ports: [] } };
}
const secretsOf = (changes: AssignmentChange[]) => changes.filter((c) => c.secret).map((c) => `${c.action}:${c.secret!.id}:${c.secret!.version}:${c.secret!.data.toString()}`);

describe('assignments: secrets and configs', () => {
  let store: MemoryStore;
  let cache: StateCache;
  beforeEach(async () => {
    store = new MemoryStore();
    cache = new StateCache(store, nullLogger);
    await cache.start();
  });
  afterEach(async () => {
    await cache.close();
    await store.close();
  });
  const put = async (kind: 'tasks' | 'secrets', obj: Task | Secret) => {
    const cur = await store.get<Task | Secret>(kind, obj.id);
    await cache.waitFor(await store.put(kind, { ...obj, meta: cur?.meta ?? null }, !cur));
  };

  it('sends a secret only to the node whose task uses it, ahead of the task; rotation sends the new version; the last task gone removes it', async () => {
    await put('secrets', secret('a', 'alpha'));
    await put('secrets', secret('b', 'beta'));
    await put('tasks', taskWith('t1', 'n1', ['a']));
    await put('tasks', taskWith('t2', 'n2', []));
    const v1 = new AssignmentView('n1', opener);
    const v2 = new AssignmentView('n2', opener);
    const c1 = v1.complete(cache).changes;
    assert.deepEqual(secretsOf(c1), ['UPDATE:a:1:alpha']);
    assert.ok(c1.findIndex((c) => c.secret) < c1.findIndex((c) => c.task?.id === 't1'), 'secret before the task');
    assert.deepEqual(secretsOf(v2.complete(cache).changes), [], 'n2 runs no task using it');

    // Another task using it on the same node: not sent again.
    await put('tasks', taskWith('t3', 'n1', ['a']));
    assert.deepEqual(secretsOf(v1.incremental(cache)!.changes), []);
    // Rotation: the new version goes to n1 only.
    await put('secrets', secret('a', 'alpha-2', 2));
    assert.deepEqual(secretsOf(v1.incremental(cache)!.changes), ['UPDATE:a:2:alpha-2']);
    assert.equal(v2.incremental(cache), undefined);
    // One task shut down: still in use by the other. Both ended: removed.
    await put('tasks', { ...taskWith('t1', 'n1', ['a']), desiredState: 'SHUTDOWN', status: { ...contractTask('t1', 'n1').status!, state: 'SHUTDOWN' } });
    assert.deepEqual(secretsOf(v1.incremental(cache)!.changes), []);
    await store.batch([{ op: 'delete', kind: 'tasks', obj: (await store.get<Task>('tasks', 't3'))! }]).then((r) => cache.waitFor(r.revision));
    const last = v1.incremental(cache)!.changes;
    assert.deepEqual(secretsOf(last), ['REMOVE:a:0:']);
    // b was never sent anywhere.
    assert.ok(![...c1, ...last].some((c) => c.secret?.id === 'b'));
  });

  it('does not send a value that does not open (another KEK, tampered): the task goes alone and fails on its node', async () => {
    const s = secret('a', 'alpha');
    await put('secrets', { ...s, data: s.data.slice(0, -4) + 'AAAA' });
    await put('tasks', taskWith('t1', 'n1', ['a']));
    const failing: FileOpener = (noun, o) => {
      try {
        return openFile(kek, noun, o);
      } catch {
        return undefined;
      }
    };
    const c = new AssignmentView('n1', failing).complete(cache).changes;
    assert.deepEqual(secretsOf(c), []);
    assert.ok(c.some((x) => x.task?.id === 't1'));
    assert.equal(SECRETS.kind, 'secret');
  });

  it('sends registry credentials to the nodes that pull the service image, and only to them', async () => {
    await put('secrets', secret('r', '{"registry":"x","username":"u","password":"p"}'));
    const t = taskWith('t1', 'n1', []);
    t.spec!.container!.registryAuth = ref('r');
    await put('tasks', t);
    await put('tasks', taskWith('t2', 'n2', []));
    assert.deepEqual(secretsOf(new AssignmentView('n1', opener).complete(cache).changes).map((x) => x.split(':').slice(0, 2).join(':')), ['UPDATE:r']);
    assert.deepEqual(secretsOf(new AssignmentView('n2', opener).complete(cache).changes), []);
  });
});
