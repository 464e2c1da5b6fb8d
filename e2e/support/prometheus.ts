// A real Prometheus server (Debian's `prometheus`) for tests: loopback only,
// a generated scrape configuration, storage in a temp dir under a
// `convoy-test-prometheus-` prefix so a crashed run's leftovers are found.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { freePort, stopChild } from '../../common/net';
import { eventually } from '../../common/eventually';

export const PROMETHEUS_BINARY = '/usr/bin/prometheus';
const DIR_PREFIX = 'convoy-test-prometheus-';

export interface PromSample {
  metric: Record<string, string>;
  value: [number, string];
}

export interface TestPrometheus {
  url: string;
  pid: number;
  /** Instant query; the vector result. */
  query(expr: string): Promise<PromSample[]>;
  stop(): Promise<void>;
}

/** Prometheus servers of a crashed earlier run (their config lives under our prefix). */
export function killOrphanedPrometheus(): number {
  let killed = 0;
  for (const p of fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const cmd = fs.readFileSync(`/proc/${p}/cmdline`, 'utf8');
      if (cmd.startsWith(PROMETHEUS_BINARY) && cmd.includes(DIR_PREFIX)) {
        process.kill(Number(p), 'SIGKILL');
        killed++;
      }
    } catch {
      /* gone */
    }
  }
  for (const d of fs.readdirSync(os.tmpdir()).filter((d) => d.startsWith(DIR_PREFIX))) fs.rmSync(path.join(os.tmpdir(), d), { recursive: true, force: true });
  return killed;
}

/** Files of a scraper's client bundle (a viewer certificate of the cluster CA), for /metrics served with --metrics-tls. */
export interface ScrapeTls {
  caFile: string;
  certFile: string;
  keyFile: string;
}

/**
 * Scrape configuration: one job per entry, targets host:port, every
 * `intervalS` seconds; with `tls`, https and a client certificate (what a
 * deployment with --metrics-tls needs: docs/security.md, "Metrics").
 */
export function scrapeConfig(jobs: Record<string, string[]>, intervalS = 1, tls?: ScrapeTls): string {
  const lines = ['global:', `  scrape_interval: ${intervalS}s`, `  scrape_timeout: ${intervalS}s`, 'scrape_configs:'];
  for (const [job, targets] of Object.entries(jobs)) {
    lines.push(`  - job_name: ${job}`);
    if (tls) lines.push('    scheme: https', '    tls_config:', `      ca_file: ${tls.caFile}`, `      cert_file: ${tls.certFile}`, `      key_file: ${tls.keyFile}`);
    lines.push('    static_configs:', `      - targets: [${targets.map((t) => `'${t}'`).join(', ')}]`);
  }
  return `${lines.join('\n')}\n`;
}

export async function startPrometheus(jobs: Record<string, string[]>, tls?: ScrapeTls): Promise<TestPrometheus> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), DIR_PREFIX));
  const config = path.join(dir, 'prometheus.yml');
  fs.writeFileSync(config, scrapeConfig(jobs, 1, tls));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const log = fs.openSync(path.join(dir, 'prometheus.log'), 'a');
  const child = spawn(
    PROMETHEUS_BINARY,
    [`--config.file=${config}`, `--storage.tsdb.path=${path.join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn'],
    { stdio: ['ignore', log, log] },
  );
  fs.closeSync(log);
  const stop = async () => {
    await stopChild(child);
    fs.rmSync(dir, { recursive: true, force: true });
  };
  try {
    await eventually(async () => (await fetch(`${url}/-/ready`)).ok, `prometheus ready on ${url}`, 30_000);
  } catch (e) {
    const tail = fs.existsSync(path.join(dir, 'prometheus.log')) ? fs.readFileSync(path.join(dir, 'prometheus.log'), 'utf8').slice(-2000) : '';
    await stop();
    throw new Error(`${e instanceof Error ? e.message : String(e)}: ${tail}`);
  }
  return {
    url,
    pid: child.pid!,
    async query(expr) {
      const r = await fetch(`${url}/api/v1/query?query=${encodeURIComponent(expr)}`);
      const body = (await r.json()) as { status: string; error?: string; data?: { resultType: string; result: PromSample[] } };
      if (body.status !== 'success') throw new Error(`prometheus query ${expr}: ${body.error ?? r.status}`);
      return body.data?.result ?? [];
    },
    stop,
  };
}
