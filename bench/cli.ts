// CLI latency on a 2-host lab (issue 11): how long an operator waits for
// `convoy service ls` and `convoy service scale`, start-up included, as the
// command on the PATH runs them (bin/convoy: the bundled CLI with its code
// cache), next to the unbundled dist/cli/main.js in the same run.
//
//   npm run bench:cli [-- --runs 40 --baseline /other/checkout/bin/convoy]
//
// --baseline: another build's bin/convoy (its own dist/ beside it), timed
// interleaved with this one against the same lab, for before/after figures.
//
// Last line: cli_ls_ms=<median> cli_ls_p99_ms= cli_scale_ms= cli_scale_p99_ms=
// unbundled_ls_ms= ... cli_ls_cpu_ms= (CPU time, mean: steadier than wall time on a
// shared machine). Target (issue 11): cli_ls_ms <= 150. Never fails on time.
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { startLab } from '../e2e/support/lab';
import { arg, median, onInterrupt, quantile } from './support';

const ROOT = path.join(__dirname, '..', '..');
const BIN = path.join(ROOT, 'bin', 'convoy');
const MAIN = path.join(ROOT, 'dist', 'cli', 'main.js');

/** CPU time (user + system) of this process's waited-for children so far, ms (/proc/self/stat cutime + cstime, clock ticks of 10 ms). */
function childrenCpuMs(): number {
  const stat = fs.readFileSync('/proc/self/stat', 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // Fields 16 and 17 of stat(5), counted from the state field (3).
  return (Number(f[13]) + Number(f[14])) * 10;
}

/** CPU time of each run, ms (10 ms ticks: a mean over the runs is the figure). */
const cpu = new Map<string, number[]>();

/** Wall time of one CLI run, ms; throws if it failed. Its CPU time goes to cpu[key]. */
function timed(file: string, args: string[], env: NodeJS.ProcessEnv, key = ''): Promise<number> {
  const c0 = childrenCpuMs();
  const t0 = process.hrtime.bigint();
  return new Promise((resolve, reject) =>
    execFile(process.execPath, [file, ...args], { env, timeout: 30_000, encoding: 'utf8' }, (e, _out, err) => {
      if (e) return reject(new Error(`convoy ${args.join(' ')}: ${err.trim() || e.message}`));
      const wall = Number(process.hrtime.bigint() - t0) / 1e6;
      if (key) cpu.set(key, [...(cpu.get(key) ?? []), childrenCpuMs() - c0]);
      resolve(wall);
    }),
  );
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);

const fmt = (xs: number[]) => `median ${median(xs).toFixed(0)} ms, p99 ${quantile(xs, 0.99).toFixed(0)} ms, min ${Math.min(...xs).toFixed(0)} ms`;

async function main(): Promise<void> {
  const runs = arg('runs', 40);
  const bi = process.argv.indexOf('--baseline');
  const baseline = bi >= 0 ? path.resolve(process.argv[bi + 1] ?? '') : undefined;
  const lab = await startLab({ hosts: 2 });
  const offInterrupt = onInterrupt(() => lab.stop());
  try {
    await lab.convoy('service', 'create', '-d', '--name', 'web', '--replicas', '2', '--limit-memory', '16M', lab.image, 'sleep', '3600');
    const env = lab.cliEnv;
    // Warm: the first start writes the code cache; the lab's manager has served a call.
    await timed(BIN, ['service', 'ls'], env);
    await timed(MAIN, ['service', 'ls'], env);
    if (baseline) await timed(baseline, ['service', 'ls'], env);
    const ls: number[] = [];
    const lsBaseline: number[] = [];
    const lsUnbundled: number[] = [];
    const scale: number[] = [];
    // Interleaved, so both ways see the same machine.
    for (let i = 0; i < runs; i++) {
      ls.push(await timed(BIN, ['service', 'ls'], env, 'ls'));
      lsUnbundled.push(await timed(MAIN, ['service', 'ls'], env, 'unbundled'));
      scale.push(await timed(BIN, ['service', 'scale', '-d', `web=${2 + (i % 2)}`], env, 'scale'));
      if (baseline) lsBaseline.push(await timed(baseline, ['service', 'ls'], env, 'baseline'));
    }
    // The manager's share: the same call from a client that is already connected.
    const warm: number[] = [];
    for (let i = 0; i < runs; i++) {
      const t0 = process.hrtime.bigint();
      await lab.api.listServices({});
      warm.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
    const nodeAlone: number[] = [];
    for (let i = 0; i < 10; i++) {
      const c0 = childrenCpuMs();
      const t0 = process.hrtime.bigint();
      await new Promise<void>((resolve, reject) => execFile(process.execPath, ['-e', '0'], (e) => (e ? reject(e) : resolve())));
      nodeAlone.push(Number(process.hrtime.bigint() - t0) / 1e6);
      cpu.set('node', [...(cpu.get('node') ?? []), childrenCpuMs() - c0]);
    }
    const cpuOf = (k: string) => mean(cpu.get(k) ?? []).toFixed(0);
    console.log(`${runs} runs each, against the lab's manager over its usual link:`);
    console.log(`  convoy service ls           (bin/convoy)       ${fmt(ls)}`);
    console.log(`  convoy service ls           (dist/cli/main.js) ${fmt(lsUnbundled)}`);
    console.log(`  convoy service scale web=N  (bin/convoy)       ${fmt(scale)}`);
    if (baseline) console.log(`  convoy service ls           (--baseline)       ${fmt(lsBaseline)}; CPU ${cpuOf('baseline')} ms`);
    console.log(`  node -e 0 (the floor)                          ${fmt(nodeAlone)}`);
    console.log(`  ListServices on a connected client (manager)   ${fmt(warm)}`);
    console.log(`CPU time (user + system, mean): service ls ${cpuOf('ls')} ms (unbundled ${cpuOf('unbundled')} ms), scale ${cpuOf('scale')} ms, node -e 0 ${cpuOf('node')} ms`);
    console.log(`bundled vs unbundled service ls: ${(median(ls) / median(lsUnbundled)).toFixed(2)}x; target cli_ls_ms <= 150: ${median(ls) <= 150 ? 'met' : 'not met'}`);
    console.log(
      `cli_ls_ms=${median(ls).toFixed(0)} cli_ls_p99_ms=${quantile(ls, 0.99).toFixed(0)} cli_scale_ms=${median(scale).toFixed(0)} cli_scale_p99_ms=${quantile(scale, 0.99).toFixed(0)} unbundled_ls_ms=${median(lsUnbundled).toFixed(0)} node_ms=${median(nodeAlone).toFixed(0)} warm_call_ms=${median(warm).toFixed(1)} cli_ls_cpu_ms=${cpuOf('ls')} cli_scale_cpu_ms=${cpuOf('scale')} node_cpu_ms=${cpuOf('node')}`,
    );
  } finally {
    await offInterrupt();
    await lab.stop();
  }
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
