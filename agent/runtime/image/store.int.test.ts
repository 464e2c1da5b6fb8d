// The image store against a real registry (docker-registry on a free
// loopback port) serving what it should not: blobs longer or shorter than
// their descriptors, manifests and configs over the limits, a gzip bomb; and
// the modes of what the store and the runtime leave on disk, checked as an
// unprivileged user would meet them.
import * as assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { gzipSync } from 'node:zlib';
import { pushBusyboxImage, pushDerivedImage, type TestImage } from '../../../lab/images';
import { startRegistry, type TestRegistry } from '../../../lab/registry';
import { ContainerExecutor } from '../executor';
import { findHelper } from '../native';
import { makeTask } from '../testing/fixtures';
import { MEDIA } from './oci';
import { assembleImage, pushImage, type BuiltLayer } from './push';
import { ImageError, sha256 } from './registry';
import { ImageStore, type ImageLimits } from './store';
import { tarOf } from './testing/tar-writer';

const STATE_DIR = '/tmp/convoy-test-store';
const PREFIX = 'convoy-test-store-';
const MiB = 1024 * 1024;

const mode = (p: string) => fs.statSync(p).mode & 0o7777;

/** Whether user nobody can list `dir` (runuser drops root for one command). */
function nobodyCanList(dir: string): boolean {
  return spawnSync('runuser', ['-u', 'nobody', '--', 'ls', dir], { stdio: 'ignore' }).status === 0;
}

describe('image store (integration)', function () {
  this.timeout(60_000);
  let reg: TestRegistry;
  let base: TestImage;
  let n = 0;
  const stateDir = () => path.join(STATE_DIR, `s${++n}`);
  const store = (dir: string, limits?: ImageLimits) => new ImageStore({ stateDir: dir, registry: { insecureRegistries: [reg.host] }, helperPath: findHelper(), limits });

  before(async () => {
    fs.rmSync(STATE_DIR, { recursive: true, force: true });
    fs.mkdirSync(STATE_DIR, { recursive: true });
    reg = await startRegistry();
    base = await pushBusyboxImage(reg.host);
  });
  after(async () => {
    await reg?.stop();
    fs.rmSync(STATE_DIR, { recursive: true, force: true });
  });

  /** Pushes base + one small layer, then replaces that layer's blob in the registry's storage. */
  async function tamperedImage(repo: string, tamper: (blob: Buffer) => Buffer): Promise<TestImage> {
    const img = await pushDerivedImage(reg.host, base, { files: { 'etc/x': randomBytes(8).toString('hex') }, repo });
    const file = reg.blobPath(img.layers[1].digest);
    fs.writeFileSync(file, tamper(fs.readFileSync(file)));
    return img;
  }

  async function refused(dir: string, ref: string, limits: ImageLimits | undefined, kind: string, message: RegExp): Promise<void> {
    const s = store(dir, limits);
    await assert.rejects(s.pull(ref), (e: unknown) => {
      assert.ok(e instanceof ImageError, String(e));
      assert.equal(e.kind, kind);
      assert.match(e.message, message);
      return true;
    });
    assert.equal(await s.get(ref), undefined);
    const tmp = path.join(dir, 'tmp');
    assert.deepEqual(fs.existsSync(tmp) ? fs.readdirSync(tmp) : [], [], 'leftovers in tmp/');
  }

  it('refuses a blob longer than its descriptor, stopping at the first byte past it', async () => {
    const img = await tamperedImage('convoy-test/longer', (b) => Buffer.concat([b, Buffer.alloc(10 * MiB)]));
    await refused(stateDir(), img.ref, undefined, 'invalid', new RegExp(`layer ${img.layers[1].digest} .*refused: more than the ${img.layers[1].size} bytes its descriptor says`));
  });

  it('refuses a blob shorter than its descriptor', async () => {
    const img = await tamperedImage('convoy-test/shorter', (b) => b.subarray(0, b.length - 5));
    await refused(stateDir(), img.ref, undefined, 'digest-mismatch', new RegExp(`is ${img.layers[1].size - 5} bytes but its descriptor says ${img.layers[1].size}`));
  });

  it('refuses manifests and configs over their limits', async () => {
    await refused(stateDir(), base.ref, { maxManifestBytes: 100 }, 'invalid', /manifest of .* over the limit of 100/);
    await refused(stateDir(), base.ref, { maxConfigBytes: 50 }, 'invalid', /blob sha256:[0-9a-f]+ of convoy-test\/busybox is over 50 bytes/);
  });

  it('refuses a gzip bomb at the layer cap and keeps nothing', async () => {
    const tar = tarOf([{ name: 'zeros', type: '0', data: Buffer.alloc(32 * MiB) }]);
    const gz = gzipSync(tar);
    const bomb: BuiltLayer = { digest: sha256(gz), diffId: sha256(tar), size: gz.length, mediaType: MEDIA.ociLayerGzip, data: gz };
    assert.ok(gz.length < 64 * 1024, `the bomb is ${gz.length} bytes`);
    const ref = `${reg.host}/convoy-test/bomb:1`;
    await pushImage(assembleImage([...base.layers, bomb]), ref, { insecureRegistries: [reg.host] });
    const dir = stateDir();
    await refused(dir, ref, { maxLayerBytes: 4 * MiB }, 'invalid', /could not be unpacked: tar entry "zeros": layer is larger than 4194304 bytes uncompressed/);
    assert.ok(!fs.existsSync(path.join(dir, 'layers', bomb.diffId.slice(7))));
  });

  it("keeps layers, containers, upper dirs, volumes and specs out of unprivileged users' reach", async () => {
    const dir = stateDir();
    const setuid = await pushDerivedImage(reg.host, base, { repo: 'convoy-test/setuid' });
    const ex = new ContainerExecutor({ stateDir: dir, insecureRegistries: [reg.host] });
    const id = `${PREFIX}${randomBytes(3).toString('hex')}`;
    try {
      const task = makeTask(id, {
        image: setuid.ref,
        command: ['sh', '-c', 'cp /bin/busybox /suid && chmod 4755 /suid && echo v > /data/v'],
        mounts: [{ type: 'VOLUME', source: 'convoy-test-store-vol', target: '/data', readOnly: false, tmpfsSizeBytes: 0 }],
      });
      await ex.prepare(task);
      await ex.start(task);
      assert.equal((await ex.wait(id)).exitCode, 0);
      for (const d of ['layers', 'images', 'tmp', 'containers', 'volumes', 'logs']) assert.equal(mode(path.join(dir, d)), 0o700, `${d}/`);
      const c = path.join(dir, 'containers', id);
      assert.equal(mode(path.join(c, 'state.json')), 0o600, 'state.json');
      for (const f of fs.readdirSync(path.join(dir, 'images'))) assert.equal(mode(path.join(dir, 'images', f)), 0o600, `images/${f}`);
      for (const l of fs.readdirSync(path.join(dir, 'layers'))) assert.equal(mode(path.join(dir, 'layers', l, 'meta.json')), 0o600, `layers/${l}/meta.json`);
      // the container's setuid copy of busybox is in its upper dir: root can see it, nobody cannot reach it
      assert.equal(mode(path.join(c, 'upper', 'suid')), 0o4755);
      for (const d of ['layers', 'containers', 'volumes', `containers/${id}/upper`]) assert.ok(!nobodyCanList(path.join(dir, d)), `nobody can list ${d}`);
      assert.ok(nobodyCanList('/tmp'), 'runuser works here (sanity check of the check)');
      // an older state dir with 0755 directories is tightened on the next pull / create
      execFileSync('chmod', ['0755', path.join(dir, 'layers'), path.join(dir, 'containers')]);
      await ex.images.pull(base.ref);
      assert.equal(mode(path.join(dir, 'layers')), 0o700);
    } finally {
      await ex.remove(id).catch(() => undefined);
      await ex.close();
    }
  });
});
