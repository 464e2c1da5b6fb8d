// Tiny test images made from the host's static busybox, pushed to a registry
// (see registry.ts) without Docker.
//
//   const base = await pushBusyboxImage(reg.host);            // <host>/convoy-test/busybox:1
//   const web = await pushDerivedImage(reg.host, base, { files: { 'www/index.html': 'hi' } });
//
// The busybox image: /bin/busybox with a symlink per applet (sh, true, sleep,
// cat, wget, httpd, hostname, ...), /etc/passwd and /etc/group with root and
// nobody, /tmp (1777), empty /proc /sys /dev, Cmd ["sh"].
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { assembleImage, buildLayer, pushImage, type BuiltLayer, type ImageSpec } from '../agent/runtime/image/push';

export const BUSYBOX = '/bin/busybox';
export const BUSYBOX_REPO = 'convoy-test/busybox';

export interface TestImage {
  /** Full reference to use in specs: "<host>/convoy-test/busybox:1". */
  ref: string;
  digest: string;
  /** Layers bottom first; `layers[i].size` is what a pull downloads for it. */
  layers: BuiltLayer[];
}

/** Writes a busybox root filesystem into `dir` (created if needed). */
export function buildBusyboxRootfs(dir: string, busybox = BUSYBOX): void {
  for (const d of ['bin', 'etc', 'tmp', 'proc', 'sys', 'dev', 'root', 'home', 'var/run', 'usr/bin', 'www']) fs.mkdirSync(path.join(dir, d), { recursive: true });
  fs.chmodSync(path.join(dir, 'tmp'), 0o1777);
  fs.copyFileSync(busybox, path.join(dir, 'bin', 'busybox'));
  fs.chmodSync(path.join(dir, 'bin', 'busybox'), 0o755);
  const applets = execFileSync(busybox, ['--list']).toString().split('\n').filter((a) => a && a !== 'busybox');
  for (const a of applets) {
    const p = path.join(dir, 'bin', a);
    if (!fs.existsSync(p)) fs.symlinkSync('busybox', p);
  }
  fs.writeFileSync(path.join(dir, 'etc', 'passwd'), 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n');
  fs.writeFileSync(path.join(dir, 'etc', 'group'), 'root:x:0:\nnobody:x:65534:\n');
  fs.writeFileSync(path.join(dir, 'etc', 'hostname'), 'busybox\n');
}

let cachedBase: BuiltLayer | undefined;

/** The busybox layer, built once per process so every push shares its digest. */
export async function busyboxLayer(): Promise<BuiltLayer> {
  if (!cachedBase) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'convoy-test-rootfs-'));
    try {
      buildBusyboxRootfs(dir);
      cachedBase = await buildLayer(dir, { uid: 0, gid: 0, mtime: 0 });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }
  return cachedBase;
}

/** Pushes the busybox image as `<registryHost>/<repo>:<tag>`. */
export async function pushBusyboxImage(registryHost: string, opts: { repo?: string; tag?: string; spec?: ImageSpec } = {}): Promise<TestImage> {
  const layer = await busyboxLayer();
  const image = assembleImage([layer], { cmd: ['sh'], ...opts.spec });
  const ref = `${registryHost}/${opts.repo ?? BUSYBOX_REPO}:${opts.tag ?? '1'}`;
  const res = await pushImage(image, ref, { insecureRegistries: [registryHost] });
  return { ref, digest: res.digest, layers: [layer] };
}

/**
 * Pushes an image made of `base`'s layers plus one layer holding `files`
 * (path → content), as `<registryHost>/<repo>:<tag>`.
 */
export async function pushDerivedImage(
  registryHost: string,
  base: TestImage,
  opts: { files?: Record<string, string>; repo?: string; tag?: string; spec?: ImageSpec } = {},
): Promise<TestImage> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'convoy-test-layer-'));
  try {
    const files = opts.files ?? { 'etc/convoy-extra': 'extra layer\n' };
    for (const [p, content] of Object.entries(files)) {
      fs.mkdirSync(path.dirname(path.join(dir, p)), { recursive: true });
      fs.writeFileSync(path.join(dir, p), content);
    }
    const extra = await buildLayer(dir, { uid: 0, gid: 0, mtime: 0 });
    const image = assembleImage([...base.layers, extra], { cmd: ['sh'], ...opts.spec });
    const ref = `${registryHost}/${opts.repo ?? 'convoy-test/derived'}:${opts.tag ?? '1'}`;
    const res = await pushImage(image, ref, { insecureRegistries: [registryHost] });
    return { ref, digest: res.digest, layers: [...base.layers, extra] };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** Repository of the lab's image in the lab's registry. */
export const LAB_IMAGE_REPO = 'convoy-lab/busybox';

/** Pushes the busybox image to the lab's registry (`--demo`, e2e, benchmarks); returns its reference. */
export async function pushLabImage(st: { registry: string }): Promise<string> {
  return (await pushBusyboxImage(st.registry, { repo: LAB_IMAGE_REPO })).ref;
}
