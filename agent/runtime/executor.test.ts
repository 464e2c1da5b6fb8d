import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ExecutorError } from '../executor';
import { bindAdmission, LABEL_TASK_ID, taskToConfig } from './executor';
import type { ImageRecord } from './image/store';
import { DEFAULT_CAPABILITIES, RuntimeError } from './runtime';
import { makeTask } from './testing/fixtures';

const image: ImageRecord = {
  ref: 'r/x:1',
  manifestDigest: 'sha256:m',
  configDigest: 'sha256:c',
  config: {
    architecture: 'amd64',
    os: 'linux',
    rootfs: { type: 'layers', diff_ids: ['sha256:l'] },
    config: { Entrypoint: ['/entry'], Cmd: ['serve', '--port=80'], Env: ['PATH=/bin', 'MODE=prod'], WorkingDir: '/app', User: 'www', StopSignal: 'SIGQUIT' },
  },
  layers: ['sha256:l'],
  layerSizes: [1],
  pulledAt: '',
};

describe('task to container config', () => {
  it("uses the image's entrypoint, cmd, env, working dir, user and stop signal", () => {
    const c = taskToConfig(makeTask('task-abcdefghijklmnop', { image: 'r/x:1' }), image, image.layers);
    assert.deepEqual(c.args, ['/entry', 'serve', '--port=80']);
    assert.deepEqual(c.env, ['PATH=/bin', 'MODE=prod', 'HOSTNAME=task-abcdefg']);
    assert.equal(c.cwd, '/app');
    assert.equal(c.user, 'www');
    assert.equal(c.stopSignal, 'SIGQUIT');
    assert.equal(c.hostname, 'task-abcdefg');
    assert.equal(c.labels?.[LABEL_TASK_ID], 'task-abcdefghijklmnop');
  });

  it('lets the spec override them (a new entrypoint drops the image cmd, as docker run --entrypoint)', () => {
    const t = makeTask(
      't1',
      {
        image: 'r/x:1',
        command: ['/bin/sh', '-c'],
        env: ['MODE=dev', 'X=1'],
        dir: '/w',
        user: '1000:1000',
        hostname: 'h',
        stopSignal: 'SIGINT',
        mounts: [
          { type: 'VOLUME', source: 'data', target: '/data', readOnly: false, tmpfsSizeBytes: 0 },
          { type: 'TMPFS', source: '', target: '/tmp', readOnly: false, tmpfsSizeBytes: 1024 },
        ],
      },
      { memoryBytes: 1 << 26, nanoCpus: 5e8, pids: 64 },
    );
    const c = taskToConfig(t, image, image.layers, { netnsPath: '/run/netns/x', resolvConf: 'nameserver 1.1.1.1\n' });
    assert.deepEqual(c.args, ['/bin/sh', '-c']);
    assert.deepEqual(c.env, ['PATH=/bin', 'MODE=dev', 'X=1', 'HOSTNAME=h']);
    assert.equal(c.cwd, '/w');
    assert.equal(c.user, '1000:1000');
    assert.equal(c.stopSignal, 'SIGINT');
    assert.deepEqual(c.mounts, [
      { type: 'volume', source: 'data', target: '/data', readOnly: false, tmpfsSizeBytes: undefined },
      { type: 'tmpfs', source: '', target: '/tmp', readOnly: false, tmpfsSizeBytes: 1024 },
    ]);
    assert.deepEqual(c.resources, { memoryBytes: 1 << 26, nanoCpus: 5e8, pids: 64 });
    assert.equal(c.netnsPath, '/run/netns/x');
    assert.equal(c.resolvConf, 'nameserver 1.1.1.1\n');
    const withArgs = taskToConfig(makeTask('t2', { image: 'r/x:1', args: ['status'] }), image, image.layers);
    assert.deepEqual(withArgs.args, ['/entry', 'status']);
  });

  it("maps cap_add/cap_drop to capability numbers as Docker, and read_only to a read-only root", () => {
    const caps = (capAdd: string[], capDrop: string[]) => taskToConfig(makeTask('t4', { image: 'r/x:1', capAdd, capDrop }), image, image.layers).capabilities;
    assert.equal(caps([], []), undefined); // the runtime's default: Docker's set
    assert.deepEqual(DEFAULT_CAPABILITIES, [0, 1, 3, 4, 5, 6, 7, 8, 10, 13, 18, 27, 29, 31]);
    assert.deepEqual(caps(['net_admin'], ['CAP_CHOWN']), [1, 3, 4, 5, 6, 7, 8, 10, 12, 13, 18, 27, 29, 31]);
    assert.deepEqual(caps(['SYS_TIME'], ['ALL']), [25]);
    assert.deepEqual(caps([], ['all']), []);
    assert.equal(caps(['ALL'], ['SYS_ADMIN'])?.length, 40);
    assert.deepEqual(caps(['CHOWN'], ['CHOWN']), DEFAULT_CAPABILITIES); // dropped from the defaults, then added
    assert.throws(() => caps(['NOPE'], []), (e: unknown) => e instanceof ExecutorError && !e.retryable && /unknown capability "NOPE"/.test(e.message));
    assert.equal(taskToConfig(makeTask('t5', { image: 'r/x:1', readOnly: true }), image, image.layers).readonlyRootfs, true);
    assert.equal(taskToConfig(makeTask('t6', { image: 'r/x:1' }), image, image.layers).readonlyRootfs, undefined);
  });

  it('refuses a task with nothing to run', () => {
    const bare = { ...image, config: { ...image.config, config: {} } };
    assert.throws(() => taskToConfig(makeTask('t3', { image: 'r/x:1' }), bare, bare.layers), (e: unknown) => e instanceof ExecutorError && !e.retryable);
  });
});

describe('bind mount admission at mount time (resolved on disk)', () => {
  let root: string;
  before(() => {
    root = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'convoy-bind-')));
    fs.mkdirSync(path.join(root, 'allowed/data'), { recursive: true });
    fs.mkdirSync(path.join(root, 'other'));
    fs.mkdirSync(path.join(root, 'state'));
    fs.symlinkSync('/etc', path.join(root, 'allowed/etc-link'));
    fs.symlinkSync(path.join(root, 'other'), path.join(root, 'allowed/out'));
    fs.symlinkSync(path.join(root, 'state'), path.join(root, 'allowed/state-link'));
    fs.symlinkSync(path.join(root, 'allowed'), path.join(root, 'allowed-link'));
  });
  after(() => fs.rmSync(root, { recursive: true, force: true }));

  const refusal = async (p: Promise<string>): Promise<RuntimeError> => {
    const e = await p.then(
      () => undefined,
      (err: unknown) => err,
    );
    assert.ok(e instanceof RuntimeError, `admitted: ${String(e)}`);
    return e;
  };

  it('mounts the resolved path of a source under an allowed prefix', async () => {
    const admit = bindAdmission(path.join(root, 'state'), () => [path.join(root, 'allowed')]);
    assert.equal(await admit(path.join(root, 'allowed/data')), path.join(root, 'allowed/data'));
    // The allowed prefix reached through a symlink resolves to the same directory.
    assert.equal(await admit(path.join(root, 'allowed-link/data')), path.join(root, 'allowed/data'));
  });

  it('refuses a symlink under an allowed prefix that leads out of it, to /etc, or to the state dir', async () => {
    const admit = bindAdmission(path.join(root, 'state'), () => [path.join(root, 'allowed')]);
    assert.match((await refusal(admit(path.join(root, 'allowed/out')))).message, /\(.*\/other\): .* is not under a path the cluster allows/);
    assert.match((await refusal(admit(path.join(root, 'allowed/etc-link')))).message, /\(\/etc\): "\/etc" is never mounted/);
    const anywhere = bindAdmission(path.join(root, 'state'), () => ['/']);
    assert.match((await refusal(anywhere(path.join(root, 'allowed/state-link')))).message, /cluster's own state/);
  });

  it('refuses, retryably, while the allow list has not arrived; without a list only the refused paths apply', async () => {
    const e = await refusal(bindAdmission(path.join(root, 'state'), () => undefined)(path.join(root, 'allowed/data')));
    assert.equal(e.retryable, true);
    const noList = bindAdmission(path.join(root, 'state'));
    assert.equal(await noList(path.join(root, 'other')), path.join(root, 'other'));
    await refusal(noList(path.join(root, 'allowed/etc-link')));
    await refusal(noList(path.join(root, 'state')));
  });
});
