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
 * The flags of a single-member etcd that Convoy's managers can use: every etcd
 * Convoy starts (this embedded default, the lab's shared one) runs with these,
 * so that none refuses the leader's large transactions.
 */
export function etcdArgs(o: { name: string; dataDir: string; clientUrl: string; peerUrl: string }): string[] {
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
    '--log-level=warn',
  ];
}

export async function startEtcd(opts: { dataDir: string; clientPort?: number; peerPort?: number; host?: string }): Promise<EmbeddedEtcd> {
  const host = opts.host ?? '127.0.0.1';
  const clientPort = opts.clientPort ?? (await freePort(host));
  const peerPort = opts.peerPort ?? (await freePort(host));
  fs.mkdirSync(opts.dataDir, { recursive: true });
  const client = `http://${host}:${clientPort}`;
  const peer = `http://${host}:${peerPort}`;
  const logFile = fs.openSync(path.join(opts.dataDir, 'etcd.log'), 'a');
  const child: ChildProcess = spawn('etcd', etcdArgs({ name: 'convoy', dataDir: path.join(opts.dataDir, 'data'), clientUrl: client, peerUrl: peer }), {
    stdio: ['ignore', logFile, logFile],
    detached: false,
  });
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
