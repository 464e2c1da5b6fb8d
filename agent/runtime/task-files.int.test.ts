// A task's secrets and configs on its node (needs root: it mounts): one
// tmpfs per task with each file at its mode, uid and gid, nothing under the
// agent's state dir, bind mounts read-only at the targets, unmounted on
// teardown; a value that was not delivered fails the task naming it.
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { FileReference, Task } from '../../proto/mod';
import { FileValues } from '../files/values';
import { ExecutorError } from '../executor';
import { TaskFiles } from './task-files';
import { makeTask } from './testing/fixtures';

const mounted = (dir: string) => fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').find((l) => l.split(' ')[4] === dir);
const ref = (id: string, over: Partial<FileReference> = {}): FileReference => ({ id, name: `n-${id}`, target: `/run/secrets/n-${id}`, uid: 0, gid: 0, mode: 0o444, ...over });

describe('task secrets and configs on tmpfs (integration, mounts)', function () {
  this.timeout(30_000);
  let root = '';
  beforeEach(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'convoy-task-files-'));
  });
  afterEach(async () => {
    for (const d of fs.existsSync(root) ? fs.readdirSync(root) : []) await new TaskFiles(undefined, root).teardown(d).catch(() => undefined);
    fs.rmSync(root, { recursive: true, force: true });
  });

  it('writes each value on a tmpfs of the task, with its mode and owner, and removes it on teardown', async () => {
    const values = new FileValues();
    values.replace([
      { kind: 'secret', id: 's1', name: 'n-s1', version: 1, data: Buffer.from('top-secret') },
      { kind: 'config', id: 'c1', name: 'n-c1', version: 1, data: Buffer.from('conf') },
    ]);
    const files = new TaskFiles(values, root);
    const task: Task = makeTask('task1', {});
    task.spec!.container!.secrets = [ref('s1', { uid: 1000, gid: 1001, mode: 0o400 })];
    task.spec!.container!.configs = [ref('c1', { target: '/etc/app.conf', mode: 0 })];
    const mounts = await files.setup(task);
    const dir = path.join(root, 'task1');
    const line = mounted(dir);
    assert.ok(line, 'the task dir is a mount point');
    assert.match(line!, / - tmpfs /, 'of a tmpfs');
    assert.match(line!, /nosuid/);
    assert.deepEqual(
      mounts.map((m) => [m.type, m.target, m.readOnly]),
      [
        ['bind', '/run/secrets/n-s1', true],
        ['bind', '/etc/app.conf', true],
      ],
    );
    const s = fs.statSync(mounts[0].source!);
    assert.equal(fs.readFileSync(mounts[0].source!, 'utf8'), 'top-secret');
    assert.deepEqual([s.mode & 0o7777, s.uid, s.gid], [0o400, 1000, 1001]);
    assert.equal(fs.statSync(mounts[1].source!).mode & 0o7777, 0o444, 'default mode');
    assert.ok(!mounts.some((m) => m.source!.includes('n-s1')), 'host file names are not user-given');
    // Idempotent (a prepare again after an agent restart).
    await files.setup(task);
    await files.teardown('task1');
    assert.equal(mounted(dir), undefined, 'unmounted');
    assert.ok(!fs.existsSync(dir));
  });

  it('fails a task whose value was not delivered, naming it, and refuses a hostile task id', async () => {
    const files = new TaskFiles(new FileValues(), root);
    const task: Task = makeTask('task2', {});
    task.spec!.container!.secrets = [ref('missing')];
    await assert.rejects(files.setup(task), (e: unknown) => e instanceof ExecutorError && /secret "n-missing" \(missing\) was not delivered to this node/.test(e.message));
    assert.equal(mounted(path.join(root, 'task2')), undefined, 'nothing mounted');
    assert.throws(() => files.dirOf('../../etc'), /invalid task id/);
    // A task with no secret or config mounts nothing.
    assert.deepEqual(await files.setup(makeTask('task3', {})), []);
    assert.ok(!fs.existsSync(path.join(root, 'task3')));
  });
});
