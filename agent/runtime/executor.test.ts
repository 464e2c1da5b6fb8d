import * as assert from 'node:assert/strict';
import { ExecutorError } from '../executor';
import { LABEL_TASK_ID, taskToConfig } from './executor';
import type { ImageRecord } from './image/store';
import { DEFAULT_CAPABILITIES } from './runtime';
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
