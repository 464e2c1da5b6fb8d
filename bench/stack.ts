// Stack deploy on a 3-host lab (issue 13): a 20-service stack (one network,
// one replica each) from `convoy stack deploy` until every task runs, then a
// redeploy of the same file (the diff: nothing to write, no task restarted).
//
//   npm run bench:stack [-- --services 20]
//
// Last line: services= seconds= noop_seconds= restarted=. Target (issue 13):
// noop_seconds under 1 with restarted=0. Never fails on time.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { startLab } from '../e2e/support/lab';
import { arg, onInterrupt, until } from './support';

async function main(): Promise<void> {
  const n = arg('services', 20);
  const lab = await startLab({ hosts: 3 });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'convoy-bench-stack-'));
  const cleanup = async () => {
    fs.rmSync(dir, { recursive: true, force: true });
    await lab.stop();
  };
  const offInterrupt = onInterrupt(cleanup);
  try {
    lab.cliEnv.CONVOY_INSECURE_REGISTRIES = lab.image.split('/')[0];
    const services = Array.from({ length: n }, (_, i) => `  s${i}:\n    image: ${lab.image}\n    command: ["sleep", "3600"]\n    networks: [net]\n    deploy:\n      resources: {limits: {memory: 16M}}\n`).join('');
    const file = path.join(dir, 'stack.yml');
    fs.writeFileSync(file, `services:\n${services}networks:\n  net: {}\n`);
    const runningIds = async () =>
      (await lab.api.listTasks({})).tasks.filter((t) => t.serviceName.startsWith('bench_') && t.desiredState === 'RUNNING' && t.status?.state === 'RUNNING').map((t) => t.id);

    const t0 = performance.now();
    await lab.convoy('stack', 'deploy', '-d', '-c', file, 'bench');
    await until(`${n} tasks running`, async () => (await runningIds()).length === n, 300_000, 200);
    const seconds = (performance.now() - t0) / 1000;
    const before = new Set(await runningIds());

    const t1 = performance.now();
    const out = await lab.convoy('stack', 'deploy', '-d', '-c', file, 'bench');
    const noop = (performance.now() - t1) / 1000;
    const after = await runningIds();
    const restarted = after.filter((id) => !before.has(id)).length + [...before].filter((id) => !after.includes(id)).length;
    console.log(`deploy of ${n} services to all tasks running: ${seconds.toFixed(2)} s`);
    console.log(`redeploy, nothing changed: ${noop.toFixed(2)} s (${out.trim()}); tasks restarted: ${restarted}; target under 1 s with 0 restarted: ${noop < 1 && restarted === 0 ? 'met' : 'not met'}`);
    console.log(`services=${n} seconds=${seconds.toFixed(2)} noop_seconds=${noop.toFixed(2)} restarted=${restarted}`);
  } finally {
    await offInterrupt();
    await cleanup();
  }
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
