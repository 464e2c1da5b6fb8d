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
import { freePort } from '../common/net';
import { ContainerExecutor } from '../agent/runtime/executor';
import { SAMPLE_REUSE_MS } from '../agent/metrics/metrics';
import { FastStats } from '../agent/metrics/fast-stats';
import { startSingleNode } from './single-node';
import { arg, median } from './support';
import { eventually } from '../common/eventually';

const BENCH_DIR = '/tmp/convoy-bench-metrics';
const WAIT_MS = 300_000;

const until = (what: string, cond: () => Promise<boolean>) => eventually(cond, what, { timeoutMs: WAIT_MS, pollMs: 200, prefix: 'bench: gave up waiting for' });

async function main(): Promise<void> {
  const tasks = arg('tasks', 100);
  const scrapes = arg('scrapes', 30);
  const metricsAddr = `127.0.0.1:${await freePort()}`;
  const node = await startSingleNode({ dir: BENCH_DIR, metricsListen: metricsAddr });
  const { api, image, agent } = node;
  try {
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
  } finally {
    await node.stop('bench-metrics');
  }
}

main().catch((e) => {
  process.stderr.write(`bench:metrics failed: ${e instanceof Error ? e.stack : String(e)}\n`);
  process.exit(1);
});
