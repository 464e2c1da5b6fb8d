// Bind mount admission at mount time with real containers: the agent resolves
// the source on its disk, so a symlink under an allowed prefix that leads out
// of it (to /etc, or to another directory) fails the task's start with a
// clear message, and an allowed directory reached through a symlink mounts
// its resolved path. Real namespaces and a registry: run under the kernel lock.
import * as assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { startRegistry, type TestRegistry } from '../../lab/registry';
import { pushBusyboxImage, type TestImage } from '../../lab/images';
import { ContainerExecutor } from './executor';
import { makeTask, stdoutLines } from './testing/fixtures';

const PREFIX = 'convoy-test-bind-';
const STATE_DIR = '/tmp/convoy-test-bind-state';
const HOST = '/tmp/convoy-test-bind-host';

describe('bind mount admission at mount time (integration)', function () {
  this.timeout(60_000);
  let reg: TestRegistry;
  let base: TestImage;
  let ex: ContainerExecutor;
  const ids: string[] = [];

  before(async () => {
    fs.rmSync(STATE_DIR, { recursive: true, force: true });
    fs.rmSync(HOST, { recursive: true, force: true });
    fs.mkdirSync(path.join(HOST, 'allowed/data'), { recursive: true });
    fs.mkdirSync(path.join(HOST, 'outside'));
    fs.writeFileSync(path.join(HOST, 'allowed/data/hello'), 'hello\n');
    fs.writeFileSync(path.join(HOST, 'outside/secret'), 'secret\n');
    fs.symlinkSync('/etc', path.join(HOST, 'allowed/etc'));
    fs.symlinkSync(path.join(HOST, 'outside'), path.join(HOST, 'allowed/out'));
    fs.symlinkSync(path.join(HOST, 'allowed'), path.join(HOST, 'allowed-link'));
    reg = await startRegistry();
    base = await pushBusyboxImage(reg.host);
    ex = new ContainerExecutor({ stateDir: STATE_DIR, insecureRegistries: [reg.host], bindAllow: () => [path.join(HOST, 'allowed')] });
  });
  after(async () => {
    for (const id of ids) await ex?.remove(id).catch(() => undefined);
    await ex?.runtime.cleanupAll(PREFIX).catch(() => undefined);
    await ex?.close();
    await reg?.stop();
    fs.rmSync(STATE_DIR, { recursive: true, force: true });
    fs.rmSync(HOST, { recursive: true, force: true });
  });

  const start = async (source: string) => {
    const id = `${PREFIX}${randomBytes(3).toString('hex')}`;
    ids.push(id);
    const task = makeTask(id, { image: base.ref, command: ['cat', '/data/hello'], mounts: [{ type: 'BIND', source, target: '/data', readOnly: true, tmpfsSizeBytes: 0 }] });
    await ex.prepare(task);
    await ex.start(task);
    return id;
  };

  it('mounts an allowed directory, also through a symlink to it', async () => {
    for (const src of [path.join(HOST, 'allowed/data'), path.join(HOST, 'allowed-link/data')]) {
      const id = await start(src);
      assert.equal((await ex.wait(id)).exitCode, 0);
      assert.deepEqual(stdoutLines(ex.logPath(id)), ['hello']);
    }
  });

  it('refuses at start a symlink under the allowed prefix that leads to /etc or out of it', async () => {
    await assert.rejects(start(path.join(HOST, 'allowed/etc')), /\(\/etc\): "\/etc" is never mounted: \/etc is the host's configuration/);
    await assert.rejects(start(path.join(HOST, 'allowed/out')), /outside\): .*is not under a path the cluster allows/);
  });

  it('refuses a source swapped for a symlink after the agent admitted it (the helper mounts only a symlink-free path)', async () => {
    // The race, made certain: the admission hook checks and returns the
    // resolved path, and only then (as a local user racing the agent would)
    // the directory is replaced by a symlink to /etc. What the helper mounts
    // must not be /etc.
    const dir = path.join(HOST, 'allowed/swap');
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'hello'), 'swap\n');
    const opts = (ex.runtime as unknown as { opts: { bindSource: (s: string) => Promise<string> } }).opts;
    const admit = opts.bindSource;
    opts.bindSource = async (source) => {
      const admitted = await admit(source);
      fs.renameSync(dir, `${dir}.moved`);
      fs.symlinkSync('/etc', dir);
      return admitted;
    };
    try {
      let id: string | undefined;
      const started = await start(dir).then(
        (x) => ((id = x), undefined),
        (e: Error) => e,
      );
      if (started === undefined) {
        // Started anyway: it must not have seen /etc.
        await ex.wait(id!);
        assert.notDeepEqual(stdoutLines(ex.logPath(id!)), [fs.readFileSync('/etc/hostname', 'utf8').trim()]);
        assert.fail('a source swapped for a symlink was mounted');
      }
      assert.match(started.message, /a symlink on its path \(changed after the agent admitted it\)/);
    } finally {
      opts.bindSource = admit;
    }
  });
});
