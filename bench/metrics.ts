// Cost of a /metrics scrape on an agent holding 100 real tasks.
//
// A real manager (embedded etcd, no NATS) and a real agent (ContainerExecutor,
// /metrics on loopback) in this process; a service of --tasks replicas of
// busybox `sleep` from a local registry. Once every task runs, --scrapes
// sequential GETs of /metrics, each after SAMPLE_REUSE_MS so every one reads
// every task's cgroup and /proc/<pid>/net/dev afresh (the real collection
// path, no cache), then the same number of back-to-back scrapes (which reuse
// the last sample, as when Prometheus and the stats loop meet).
//
//   npm run bench:metrics [-- --tasks 100 --scrapes 30]
//
// Last line: scrape_ms (median, fresh collection), collect_ms (median time of
// the collection itself), cached_scrape_ms, series, bytes. Never fails on time.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { startRegistry } from '../e2e/support/registry';
import { pushBusyboxImage } from '../e2e/support/images';
import { Agent } from '../agent/agent';
import { freePort, startManager, type ManagerHandle } from '../manager/mod';
import { connectControl, type ConnectedApi } from '../cli/client';
import { nullLogger } from '../proto/common/logger';
import { ContainerExecutor } from '../agent/runtime/executor';
import { SAMPLE_REUSE_MS } from '../agent/metrics/metrics';
import { FastStats } from '../agent/metrics/fast-stats';

const BENCH_DIR = '/tmp/convoy-bench-metrics';
const WAIT_MS = 300_000;

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

async function until(what: string, cond: () => Promise<boolean>): Promise<void> {
  const end = Date.now() + WAIT_MS;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`bench: gave up waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function main(): Promise<void> {
  const tasks = arg('tasks', 100);
  const scrapes = arg('scrapes', 30);
  fs.rmSync(BENCH_DIR, { recursive: true, force: true });
  fs.mkdirSync(BENCH_DIR, { recursive: true });
  const registry = await startRegistry();
  let manager: ManagerHandle | undefined;
  let agent: Agent | undefined;
  let conn: ConnectedApi | undefined;
  try {
    const image = (await pushBusyboxImage(registry.host)).ref;
    manager = await startManager({ dataDir: path.join(BENCH_DIR, 'manager'), listen: `127.0.0.1:${await freePort()}`, natsUrl: '', logger: nullLogger });
    conn = connectControl(manager.grpcAddr);
    const api = conn.api;
    const metricsAddr = `127.0.0.1:${await freePort()}`;
    agent = new Agent({
      managers: [manager.grpcAddr],
      joinToken: (await api.getJoinTokens({})).worker,
      stateDir: path.join(BENCH_DIR, 'agent'),
      advertiseAddr: '127.0.0.1',
      executor: 'container',
      runtime: { insecureRegistries: [registry.host] },
      metricsListen: metricsAddr,
      runDir: '',
      logger: nullLogger,
    });
    await agent.start();
    await api.createService({ spec: { name: 'bench-metrics', replicas: tasks, container: { image, command: ['sleep', '3600'], stopGracePeriodMs: 100 } } });
    await until(`${tasks} tasks running`, async () => (await api.listTasks({ service: 'bench-metrics', states: ['RUNNING'] })).tasks.length === tasks);
    process.stderr.write(`${tasks} tasks running; scraping\n`);

    const url = `http://${metricsAddr}/metrics`;
    const scrape = async () => {
      const t0 = performance.now();
      const body = await (await fetch(url)).text();
      return { ms: performance.now() - t0, body };
    };
    const fresh: number[] = [];
    const collect: number[] = [];
    let body = '';
    for (let i = 0; i < scrapes; i++) {
      await new Promise((r) => setTimeout(r, SAMPLE_REUSE_MS + 50));
      const r = await scrape();
      fresh.push(r.ms);
      body = r.body;
      const m = /^convoy_agent_stats_collect_duration_seconds (\S+)$/m.exec(r.body);
      if (m) collect.push(Number(m[1]) * 1000);
    }
    const cached: number[] = [];
    for (let i = 0; i < scrapes; i++) cached.push((await scrape()).ms);
    // The fast path reads the same files as the runtime's stats(): they must agree.
    let agree = 0;
    let compared = 0;
    if (agent.executor instanceof ContainerExecutor) {
      const ex = agent.executor;
      const fast = new FastStats(ex);
      for (const t of (await api.listTasks({ service: 'bench-metrics', states: ['RUNNING'] })).tasks) {
        const [a, b] = [await fast.stats(t.id), await ex.stats(t.id)];
        if (!a || !b) continue;
        compared++;
        if (a.pids === b.pids && a.memoryLimitBytes === b.memoryLimitBytes && Math.abs(a.cpuSeconds - b.cpuSeconds) < 0.05 && Math.abs(a.memoryBytes - b.memoryBytes) <= 0.1 * b.memoryBytes + 65536) agree++;
      }
      process.stdout.write(`fast path vs runtime stats: ${agree}/${compared} tasks agree\n`);
    }
    const series = body.split('\n').filter((l) => l.startsWith('convoy_task_')).length;
    const taskSeries = body.split('\n').filter((l) => l.startsWith('convoy_task_memory_usage_bytes{')).length;
    process.stdout.write(`tasks=${tasks} scrapes=${scrapes} task_series_per_metric=${taskSeries} convoy_task_lines=${series} body_bytes=${body.length}\n`);
    process.stdout.write(`fresh scrape ms: median ${median(fresh).toFixed(2)} min ${Math.min(...fresh).toFixed(2)} max ${Math.max(...fresh).toFixed(2)}\n`);
    if (collect.length) process.stdout.write(`collection ms: median ${median(collect).toFixed(2)}\n`);
    process.stdout.write(`cached scrape ms: median ${median(cached).toFixed(2)}\n`);
    process.stdout.write(
      `scrape_ms=${median(fresh).toFixed(2)} collect_ms=${collect.length ? median(collect).toFixed(2) : 'na'} cached_scrape_ms=${median(cached).toFixed(2)} agree=${agree}/${compared} tasks=${tasks} series=${series} bytes=${body.length}\n`,
    );
    await api.removeService({ service: 'bench-metrics' }).catch(() => undefined);
    const ex = agent.executor;
    if (ex instanceof ContainerExecutor) await until('containers removed', async () => (await ex.runtime.list()).length === 0).catch(() => undefined);
  } finally {
    await agent?.stop().catch(() => undefined);
    if (agent?.executor instanceof ContainerExecutor) {
      for (const c of await agent.executor.runtime.list()) await agent.executor.runtime.remove(c.id).catch(() => undefined);
    }
    conn?.close();
    await manager?.stop().catch(() => undefined);
    await registry.stop().catch(() => undefined);
    fs.rmSync(BENCH_DIR, { recursive: true, force: true });
  }
}

main().catch((e) => {
  process.stderr.write(`bench:metrics failed: ${e instanceof Error ? e.stack : String(e)}\n`);
  process.exit(1);
});
