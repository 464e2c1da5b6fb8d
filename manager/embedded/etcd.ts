// The embedded default: when a manager is given no etcd endpoints it starts a
// local etcd of its own (Debian's etcd-server) in its data dir, and stops it
// (by pid) when it stops. Also used by tests for throwaway instances.
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { freePort, stopChild } from '../../common/net';

export interface EmbeddedEtcd {
  endpoint: string;
  pid: number;
  stop(): Promise<void>;
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

/**
 * The flags of a single-member etcd that Convoy's managers can use: every etcd
 * Convoy starts (this embedded default, the lab's shared one) runs with these,
 * so that none refuses the leader's large transactions and history stays
 * bounded; docs/etcd.md gives them for an external etcd.
 */
export function etcdArgs(o: { name: string; dataDir: string; clientUrl: string; peerUrl: string; quotaBackendBytes?: number; autoCompactionRetention?: string }): string[] {
  return [
    `--name=${o.name}`,
    `--data-dir=${o.dataDir}`,
    `--listen-client-urls=${o.clientUrl}`,
    `--advertise-client-urls=${o.clientUrl}`,
    `--listen-peer-urls=${o.peerUrl}`,
    `--initial-advertise-peer-urls=${o.peerUrl}`,
    `--initial-cluster=${o.name}=${o.peerUrl}`,
    `--max-txn-ops=${ETCD_MAX_TXN_OPS}`,
    `--max-request-bytes=${ETCD_MAX_REQUEST_BYTES}`,
    '--auto-compaction-mode=periodic',
    `--auto-compaction-retention=${o.autoCompactionRetention ?? ETCD_AUTO_COMPACTION_RETENTION}`,
    `--quota-backend-bytes=${o.quotaBackendBytes ?? ETCD_QUOTA_BACKEND_BYTES}`,
    '--log-level=warn',
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
    etcdArgs({ name: 'convoy', dataDir: path.join(opts.dataDir, 'data'), clientUrl: client, peerUrl: peer, quotaBackendBytes: opts.quotaBackendBytes, autoCompactionRetention: opts.autoCompactionRetention }),
    { stdio: ['ignore', logFile, logFile], detached: false },
  );
  fs.closeSync(logFile);
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
    stop: () => stopChild(child),
  };
}
