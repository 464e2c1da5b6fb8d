// The executor's use of the cluster's registry credentials a task brought
// (--with-registry-auth): available to the puller for that registry only,
// and only while the task's pull runs; missing or malformed ones fail the
// task naming them.
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Task } from '../../proto/mod';
import { FileValues } from '../files/values';
import { ContainerExecutor } from './executor';
import type { RegistryCredentials } from './image/registry';
import { makeTask } from './testing/fixtures';

type Lookup = (host: string) => RegistryCredentials | undefined;

describe('executor: registry credentials of a task', () => {
  let dir = '';
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'convoy-regauth-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('lends them to the puller for their registry during the pull only', async () => {
    const files = new FileValues();
    files.replace([{ kind: 'secret', id: 'r1', name: 'registry-auth-reg.example.com', version: 1, data: Buffer.from(JSON.stringify({ registry: 'reg.example.com', username: 'u', password: 'p' })) }]);
    const ex = new ContainerExecutor({ stateDir: dir, files, credentials: { 'own.example.com': { username: 'agent', password: 'x' } } });
    try {
      const lookup = (ex.images.client as unknown as { opts: { credentials: Lookup } }).opts.credentials;
      const use = (t: Task) => (ex as unknown as { useRegistryAuth(t: Task): () => void }).useRegistryAuth(t);
      const task = makeTask('t1', { image: 'reg.example.com/app:1', registryAuth: { id: 'r1', name: 'registry-auth-reg.example.com', target: '', uid: 0, gid: 0, mode: 0 } });
      assert.equal(lookup('reg.example.com'), undefined, 'before the pull');
      const release = use(task);
      assert.deepEqual(lookup('reg.example.com'), { username: 'u', password: 'p' });
      assert.equal(lookup('other.example.com'), undefined, 'another registry');
      assert.deepEqual(lookup('own.example.com'), { username: 'agent', password: 'x' }, "the agent's own still apply");
      release();
      assert.equal(lookup('reg.example.com'), undefined, 'after the pull');
      // Not delivered, or not registry credentials: the task fails naming them.
      assert.throws(() => use(makeTask('t2', { image: 'x', registryAuth: { id: 'nope', name: 'registry-auth-x', target: '', uid: 0, gid: 0, mode: 0 } })), /registry credentials "registry-auth-x" were not delivered/);
      files.replace([{ kind: 'secret', id: 'bad', name: 'bad', version: 1, data: Buffer.from('not json') }]);
      assert.throws(() => use(makeTask('t3', { image: 'x', registryAuth: { id: 'bad', name: 'bad', target: '', uid: 0, gid: 0, mode: 0 } })), /are not what registry login stores/);
      assert.doesNotThrow(() => use(makeTask('t4', { image: 'x' }))(), 'a task without them');
    } finally {
      await ex.close();
    }
  });
});
