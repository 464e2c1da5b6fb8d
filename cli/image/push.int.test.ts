// `convoy image push` (the real binary) into a real registry: a root
// filesystem directory, and a tarball of one.
import { strict as assert } from 'node:assert';
import { execFile, execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { startRegistry, type TestRegistry } from '../../lab/registry';

const MAIN = path.join(__dirname, '..', 'main.js');

function convoy(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) =>
    execFile(process.execPath, [MAIN, ...args], (err, stdout, stderr) => resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr })),
  );
}

async function manifest(reg: TestRegistry, repo: string, tag: string): Promise<{ config: { digest: string }; layers: unknown[] }> {
  const r = await fetch(`${reg.url}/v2/${repo}/manifests/${tag}`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } });
  assert.equal(r.status, 200, `manifest ${repo}:${tag}`);
  return (await r.json()) as { config: { digest: string }; layers: unknown[] };
}

describe('convoy image push (integration: real registry)', function () {
  this.timeout(60_000);
  let reg: TestRegistry;
  let dir: string;

  before(async () => {
    reg = await startRegistry();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'convoy-push-int-'));
    fs.mkdirSync(path.join(dir, 'rootfs', 'bin'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'rootfs', 'bin', 'hello'), '#!/bin/sh\necho hello\n', { mode: 0o755 });
    execFileSync('tar', ['-czf', path.join(dir, 'rootfs.tar.gz'), '-C', path.join(dir, 'rootfs'), '.']);
  });
  after(async () => {
    await reg?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('pushes a root filesystem directory with its image config', async () => {
    const r = await convoy('image', 'push', path.join(dir, 'rootfs'), `${reg.host}/cli/hello:1`, '--insecure', '--cmd', '/bin/hello', '-e', 'GREETING=hi');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`^${reg.host}/cli/hello:1@sha256:[0-9a-f]{64} \\(2 blobs uploaded\\)\\n$`));
    const m = await manifest(reg, 'cli/hello', '1');
    assert.equal(m.layers.length, 1);
    const cfg = (await (await fetch(`${reg.url}/v2/cli/hello/blobs/${m.config.digest}`)).json()) as { config: { Cmd: string[]; Env: string[] } };
    assert.deepEqual(cfg.config.Cmd, ['/bin/hello']);
    assert.ok(cfg.config.Env.includes('GREETING=hi'));
  });

  it('pushes a tarball of a root filesystem', async () => {
    const r = await convoy('image', 'push', path.join(dir, 'rootfs.tar.gz'), `${reg.host}/cli/hello:tar`, '--insecure');
    assert.equal(r.code, 0, r.stderr);
    assert.equal((await manifest(reg, 'cli/hello', 'tar')).layers.length, 1);
  });

  it('refuses a missing source in one line', async () => {
    const r = await convoy('image', 'push', path.join(dir, 'nope'), `${reg.host}/cli/hello:1`, '--insecure');
    assert.equal(r.code, 1);
    assert.equal(r.stderr, `convoy: ${path.join(dir, 'nope')}: no such file or directory\n`);
  });
});
