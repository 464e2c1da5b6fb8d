// Autoscaler reaction time: from the load starting to the new replicas running.
//
// A real manager (embedded etcd, NATS from Debian's nats-server) and a real
// agent (ContainerExecutor) in this process; a busybox service reserving 0.1
// CPU (limited to 0.3) whose tasks burn CPU while a file exists in a bind
// mount, autoscaled on CPU 50% between 1 and --max replicas with a 3 s
// scale-down window. Each run: create the file (t0), wait for the replicas the
// autoscaler first sets (decide_s: t0 → spec.replicas raised; first_scale_s:
// t0 → those running), then for all --max replicas to run (react_s); remove the file, wait for the service to be
// back at 1 replica; --runs times.
//
// The path measured: agent stats interval (2 s) → NATS → leader tick (≤ 2 s)
// → decision → scheduling → image already present → container start.
//
//   npm run bench:autoscale [-- --runs 3 --max 4]
//
// Last line: react_s, first_scale_s, decide_s (medians), runs, max. Never fails on time.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { startSingleNode } from './single-node';
import { arg, median } from './support';
import { eventually } from '../common/eventually';

const BENCH_DIR = '/tmp/convoy-bench-autoscale';
const WAIT_MS = 120_000;

const until = (what: string, cond: () => Promise<boolean>) => eventually(cond, what, { timeoutMs: WAIT_MS, pollMs: 50, prefix: 'bench: gave up waiting for' });

async function main(): Promise<void> {
  const runs = arg('runs', 3);
  const max = arg('max', 4);
  const node = await startSingleNode({ dir: BENCH_DIR, nats: true, heartbeatMs: 500 });
  const { api, image } = node;
  const ctl = path.join(BENCH_DIR, 'ctl');
  fs.mkdirSync(ctl, { recursive: true });
  try {
    const burn = 'while true; do if [ -f /ctl/burn ]; then i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; else sleep 0.1; fi; done';
    await api.updateCluster({ bindAllow: [ctl], setBindAllow: true });
    await api.createService({
      spec: {
        name: 'bench-autoscale',
        replicas: 1,
        container: { image, command: ['sh', '-c', burn], mounts: [{ type: 'BIND', source: ctl, target: '/ctl', readOnly: true }], stopGracePeriodMs: 100 },
        resources: { reservations: { nanoCpus: 1e8 }, limits: { nanoCpus: 3e8 } },
        autoscale: { enabled: true, minReplicas: 1, maxReplicas: max, targetCpuPercent: 50, scaleDownStabilizationMs: 3_000 },
      },
    });
    const replicas = async () => Number((await api.getService({ service: 'bench-autoscale' })).service?.spec?.replicas ?? 0);
    const runningCount = async () => (await api.listTasks({ service: 'bench-autoscale', states: ['RUNNING'], desiredStates: ['RUNNING'] })).tasks.length;
    await until('1 task running', async () => (await runningCount()) === 1 && (await replicas()) === 1);
    // Let the agent publish a couple of idle samples first.
    await new Promise((r) => setTimeout(r, 4_500));

    const react: number[] = [];
    const decide: number[] = [];
    const firsts: number[] = [];
    for (let i = 0; i < runs; i++) {
      const t0 = performance.now();
      fs.writeFileSync(path.join(ctl, 'burn'), '');
      let decidedAt = 0;
      let target = 0;
      await until('a scale-up', async () => {
        target = await replicas();
        if (target > 1 && !decidedAt) decidedAt = performance.now();
        return target > 1;
      });
      await until(`${target} replicas running`, async () => (await runningCount()) >= target);
      const first = (performance.now() - t0) / 1000;
      // The load asks for more than max: wait for all `max` replicas to run.
      await until(`${max} replicas running`, async () => (await replicas()) === max && (await runningCount()) === max);
      const r = (performance.now() - t0) / 1000;
      react.push(r);
      firsts.push(first);
      decide.push((decidedAt - t0) / 1000);
      process.stdout.write(`run ${i + 1}: first decision ${decide[i].toFixed(2)} s (to ${target}), those running ${first.toFixed(2)} s, all ${max} running ${r.toFixed(2)} s\n`);
      fs.rmSync(path.join(ctl, 'burn'));
      await until('back to 1 replica', async () => (await replicas()) === 1 && (await runningCount()) === 1);
      await new Promise((r) => setTimeout(r, 4_500));
    }
    process.stdout.write(`react_s=${median(react).toFixed(2)} first_scale_s=${median(firsts).toFixed(2)} decide_s=${median(decide).toFixed(2)} runs=${runs} max=${max}\n`);
  } finally {
    await node.stop('bench-autoscale');
  }
}

main().catch((e) => {
  process.stderr.write(`bench:autoscale failed: ${e instanceof Error ? e.stack : String(e)}\n`);
  process.exit(1);
});
