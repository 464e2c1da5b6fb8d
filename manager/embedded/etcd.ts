// The embedded default: when a manager is given no etcd endpoints it starts a
// local etcd of its own (Debian's etcd-server) in its data dir, and stops it
// (by pid) when it stops. Also used by tests for throwaway instances.
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';

export interface EmbeddedEtcd {
  endpoint: string;
  pid: number;
  stop(): Promise<void>;
}

/** Stops a child we started: SIGTERM, then SIGKILL after `graceMs`; resolves once it has exited. */
export async function stopChild(child: ChildProcess, exited: Promise<void>, graceMs = 5000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  const t = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(t);
}

export async function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, host, () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

/** Convoy batches task writes into large transactions: raise etcd's per-txn limits. */
export const ETCD_MAX_TXN_OPS = 2048;
const ETCD_MAX_REQUEST_BYTES = 16 * 1024 * 1024;

/**
 * History kept by etcd's own auto-compaction: periodic, by time, not by
 * revision count. The StateCache watches from a revision and reloads (a full
 * list) when that revision was compacted; a time window keeps "a manager cut
 * off for a few minutes resumes its watch" true at any write rate, where a
 * revision count is minutes when idle but seconds under a rollout's churn.
 * The space it costs is bounded by the write rate times the window.
 */
export const ETCD_AUTO_COMPACTION_RETENTION = '5m';
/**
 * The database size at which etcd raises NOSPACE and refuses writes: etcd's
 * default (2 GiB), set explicitly so the manager's maintenance and the docs
 * name one figure. Convoy's live state is far below it (100,000 tasks are
 * ~150 MB); what fills it is history and free pages, which compaction and
 * defragmentation bound.
 */
export const ETCD_QUOTA_BACKEND_BYTES = 2 * 1024 * 1024 * 1024;

/** The flags of Convoy's etcd (embedded here, and the lab's); docs/etcd.md gives them for an external etcd. */
export function etcdArgs(o: { quotaBackendBytes?: number; autoCompactionRetention?: string } = {}): string[] {
  return [
    `--max-txn-ops=${ETCD_MAX_TXN_OPS}`,
    `--max-request-bytes=${ETCD_MAX_REQUEST_BYTES}`,
    '--auto-compaction-mode=periodic',
    `--auto-compaction-retention=${o.autoCompactionRetention ?? ETCD_AUTO_COMPACTION_RETENTION}`,
    `--quota-backend-bytes=${o.quotaBackendBytes ?? ETCD_QUOTA_BACKEND_BYTES}`,
  ];
}

export async function startEtcd(opts: {
  dataDir: string;
  clientPort?: number;
  peerPort?: number;
  host?: string;
  /** Tests and benchmarks: a tiny quota (NOSPACE within seconds), a short compaction window (an hour compressed into minutes). */
  quotaBackendBytes?: number;
  autoCompactionRetention?: string;
}): Promise<EmbeddedEtcd> {
  const host = opts.host ?? '127.0.0.1';
  const clientPort = opts.clientPort ?? (await freePort(host));
  const peerPort = opts.peerPort ?? (await freePort(host));
  fs.mkdirSync(opts.dataDir, { recursive: true });
  const client = `http://${host}:${clientPort}`;
  const peer = `http://${host}:${peerPort}`;
  const logFile = fs.openSync(path.join(opts.dataDir, 'etcd.log'), 'a');
  const child: ChildProcess = spawn(
    'etcd',
    [
      '--name=convoy',
      `--data-dir=${path.join(opts.dataDir, 'data')}`,
      `--listen-client-urls=${client}`,
      `--advertise-client-urls=${client}`,
      `--listen-peer-urls=${peer}`,
      `--initial-advertise-peer-urls=${peer}`,
      `--initial-cluster=convoy=${peer}`,
      ...etcdArgs(opts),
      '--log-level=warn',
    ],
    { stdio: ['ignore', logFile, logFile], detached: false },
  );
  fs.closeSync(logFile);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let dead = false;
  child.once('exit', () => (dead = true));
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (dead) throw new Error(`etcd exited at start; see ${path.join(opts.dataDir, 'etcd.log')}`);
    try {
      const res = await fetch(`${client}/health`);
      if (res.ok) break;
    } catch {
      /* not up yet */
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`etcd did not become healthy on ${client}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    endpoint: client,
    pid: child.pid!,
    stop: () => stopChild(child, exited),
  };
}
