// Container start benchmark: start-to-exit of /bin/true with every namespace
// and a cgroup, Convoy's runtime against `runc run` (Debian's runc) on the same
// busybox root filesystem, alternating, N runs each; then how many containers
// per second the runtime starts when 100 are started at once.
//
//   npm run bench:start [-- --runs 50 --burst 100]
//
// Last line: key=value pairs (convoy_median_ms, runc_median_ms, ratio, starts_per_s, ...).
// Never fails on time. Needs root, the native helper built, runc and docker-registry.
import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { startRegistry } from '../e2e/support/registry';
import { pushBusyboxImage } from '../e2e/support/images';
import { ImageStore } from '../agent/runtime/image/store';
import { Runtime, type ContainerConfig } from '../agent/runtime/runtime';
import { findHelper } from '../agent/runtime/native';

const BENCH_DIR = '/tmp/convoy-bench-start';
const PREFIX = 'convoy-bench-';

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
}

function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))];
}

const fmt = (n: number) => n.toFixed(2);

function runOnce(cmd: string, args: string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'inherit'] });
    child.on('error', reject);
    child.on('exit', (code) => {
      if (code !== 0) reject(new Error(`${cmd} ${args.join(' ')} exited ${code}`));
      else resolve(Number(process.hrtime.bigint() - t0) / 1e6);
    });
  });
}

async function main(): Promise<void> {
  const runs = arg('runs', 50);
  const burst = arg('burst', 100);
  fs.rmSync(BENCH_DIR, { recursive: true, force: true });
  const stateDir = path.join(BENCH_DIR, 'state');
  const reg = await startRegistry();
  let runcRootfs = '';
  const rt0 = new Runtime({ stateDir, layersRoot: path.join(stateDir, 'layers') });
  await rt0.cleanupAll(PREFIX);
  try {
    const image = await pushBusyboxImage(reg.host);
    const store = new ImageStore({ stateDir, registry: { insecureRegistries: [reg.host] }, helperPath: findHelper() });
    const img = await store.pull(image.ref);
    const rt = new Runtime({ stateDir, layersRoot: store.layersRoot });
    const config = (id: string): ContainerConfig => ({ id, image: img.ref, layers: img.layers, args: ['/bin/true'], env: ['PATH=/bin'], hostname: 'bench' });

    // runc: a bundle whose root is an overlay of the same layer, mounted once
    const bundle = path.join(BENCH_DIR, 'bundle');
    runcRootfs = path.join(bundle, 'rootfs');
    for (const d of ['rootfs', 'upper', 'work']) fs.mkdirSync(path.join(bundle, d), { recursive: true });
    execFileSync('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${store.layerDir(img.layers[0])},upperdir=${path.join(bundle, 'upper')},workdir=${path.join(bundle, 'work')}`, runcRootfs]);
    execFileSync('runc', ['spec'], { cwd: bundle });
    const spec = JSON.parse(fs.readFileSync(path.join(bundle, 'config.json'), 'utf8')) as {
      process: { terminal: boolean; args: string[] };
      root: { path: string; readonly: boolean };
      hostname: string;
      linux: { namespaces: { type: string }[]; cgroupsPath?: string };
    };
    spec.process.terminal = false;
    spec.process.args = ['/bin/true'];
    spec.root = { path: 'rootfs', readonly: false };
    spec.hostname = 'bench';
    if (!spec.linux.namespaces.some((n) => n.type === 'cgroup')) spec.linux.namespaces.push({ type: 'cgroup' });
    const runcState = path.join(BENCH_DIR, 'runc-state');
    const runcOnce = async (i: number) => {
      spec.linux.cgroupsPath = `/convoy/${PREFIX}runc-${i}`;
      fs.writeFileSync(path.join(bundle, 'config.json'), JSON.stringify(spec));
      return runOnce('runc', ['--root', runcState, 'run', '--bundle', bundle, `${PREFIX}runc-${i}`]);
    };
    const convoyOnce = async (i: number) => {
      const id = `${PREFIX}${i}`;
      const t0 = process.hrtime.bigint();
      await rt.create(config(id));
      await rt.start(id);
      const exit = await rt.wait(id);
      await rt.remove(id);
      if (exit.exitCode !== 0) throw new Error(`convoy container exited: ${exit.reason}`);
      return Number(process.hrtime.bigint() - t0) / 1e6;
    };

    // warm-up (page cache, first spawn)
    await convoyOnce(-1);
    await runcOnce(-1);
    const convoy: number[] = [];
    const runc: number[] = [];
    for (let i = 0; i < runs; i++) {
      convoy.push(await convoyOnce(i));
      runc.push(await runcOnce(i));
    }

    // burst: `burst` containers started at once (sleeping, so they all run together)
    const ids = Array.from({ length: burst }, (_, i) => `${PREFIX}burst-${i}`);
    const tb = process.hrtime.bigint();
    await Promise.all(
      ids.map(async (id) => {
        await rt.create({ ...config(id), args: ['sleep', '5'] });
        await rt.start(id);
      }),
    );
    const burstMs = Number(process.hrtime.bigint() - tb) / 1e6;
    await Promise.all(ids.map((id) => rt.remove(id)));

    const cm = quantile(convoy, 0.5);
    const rm = quantile(runc, 0.5);
    console.log(`convoy: median ${fmt(cm)} ms, p99 ${fmt(quantile(convoy, 0.99))} ms over ${runs} runs (create+start+wait+remove)`);
    console.log(`runc:   median ${fmt(rm)} ms, p99 ${fmt(quantile(runc, 0.99))} ms over ${runs} runs (runc run)`);
    console.log(`burst:  ${burst} containers started in ${fmt(burstMs)} ms`);
    console.log(
      [
        `convoy_median_ms=${fmt(cm)}`,
        `convoy_p99_ms=${fmt(quantile(convoy, 0.99))}`,
        `runc_median_ms=${fmt(rm)}`,
        `runc_p99_ms=${fmt(quantile(runc, 0.99))}`,
        `ratio=${(cm / rm).toFixed(3)}`,
        `starts_per_s=${(burst / (burstMs / 1000)).toFixed(1)}`,
        `runs=${runs}`,
        `burst=${burst}`,
      ].join(' '),
    );
  } finally {
    if (runcRootfs) {
      try {
        execFileSync('umount', ['-l', runcRootfs]);
      } catch {
        // not mounted
      }
    }
    await rt0.cleanupAll(PREFIX).catch(() => undefined);
    await reg.stop();
    fs.rmSync(BENCH_DIR, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
