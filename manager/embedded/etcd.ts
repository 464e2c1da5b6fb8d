// The embedded default: when a manager is given no etcd endpoints it starts a
// local etcd of its own (Debian's etcd-server) in its data dir, and stops it
// (by pid) when it stops. Also used by tests for throwaway instances.
//
// It always serves TLS with client-certificate authentication, on loopback:
// its own CA, server certificate and the manager's client certificate sit in
// <dataDir>/tls (0600 files, ./pki.ts; why not the cluster CA: docs/security.md).
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as https from 'node:https';
import * as path from 'node:path';
import type { TlsBundle } from '../../common/identity';
import { freePort, stopChild } from '../../common/net';
import { ensureEtcdPki, type EtcdPkiFiles } from './pki';

export interface EmbeddedEtcd {
  /** https://127.0.0.1:<port> */
  endpoint: string;
  pid: number;
  /** The client bundle that etcd admits (its CA, a client certificate): give it to EtcdStore.connect. */
  clientTls: TlsBundle;
  stop(): Promise<void>;
}

/** Addresses the embedded etcd may listen on: it is this manager's alone. */
const LOOPBACK = /^(127\.\d{1,3}\.\d{1,3}\.\d{1,3}|::1|localhost)$/;

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
export function etcdArgs(o: {
  name: string;
  dataDir: string;
  clientUrl: string;
  peerUrl: string;
  quotaBackendBytes?: number;
  autoCompactionRetention?: string;
  /** Serve client and peer URLs over TLS, admitting only certificates `caFile` signed (https:// URLs). */
  tls?: EtcdPkiFiles;
}): string[] {
  const tls = o.tls
    ? [
        `--cert-file=${o.tls.certFile}`,
        `--key-file=${o.tls.keyFile}`,
        `--trusted-ca-file=${o.tls.caFile}`,
        '--client-cert-auth',
        `--peer-cert-file=${o.tls.certFile}`,
        `--peer-key-file=${o.tls.keyFile}`,
        `--peer-trusted-ca-file=${o.tls.caFile}`,
        '--peer-client-cert-auth',
        // TLS 1.2+ only, modern suites (etcd 3.4 takes no --tls-min-version).
        '--cipher-suites=TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305',
      ]
    : [];
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
    ...tls,
  ];
}

/** GET <url>/health with a client certificate: whether etcd reports healthy. */
export function etcdHealthy(url: string, tls: TlsBundle): Promise<boolean> {
  return new Promise((resolve) => {
    const req = https.get(`${url}/health`, { ca: tls.ca, cert: tls.cert, key: tls.key, timeout: 2_000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('error', () => resolve(false));
    req.on('timeout', () => req.destroy());
  });
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
  if (!LOOPBACK.test(host)) throw new Error(`embedded etcd: host "${host}" is not a loopback address (it serves this manager only; give --etcd for a shared etcd)`);
  const clientPort = opts.clientPort ?? (await freePort(host));
  const peerPort = opts.peerPort ?? (await freePort(host));
  fs.mkdirSync(opts.dataDir, { recursive: true, mode: 0o700 });
  const pki = await ensureEtcdPki(path.join(opts.dataDir, 'tls'), { hosts: [host] });
  const client = `https://${host}:${clientPort}`;
  const peer = `https://${host}:${peerPort}`;
  const logFile = fs.openSync(path.join(opts.dataDir, 'etcd.log'), 'a');
  const child: ChildProcess = spawn(
    'etcd',
    etcdArgs({ name: 'convoy', dataDir: path.join(opts.dataDir, 'data'), clientUrl: client, peerUrl: peer, quotaBackendBytes: opts.quotaBackendBytes, autoCompactionRetention: opts.autoCompactionRetention, tls: pki.server }),
    { stdio: ['ignore', logFile, logFile], detached: false },
  );
  fs.closeSync(logFile);
  let dead = false;
  child.once('exit', () => (dead = true));
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (dead) throw new Error(`etcd exited at start; see ${path.join(opts.dataDir, 'etcd.log')}`);
    if (await etcdHealthy(client, pki.client)) break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`etcd did not become healthy on ${client}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    endpoint: client,
    pid: child.pid!,
    clientTls: pki.client,
    stop: () => stopChild(child),
  };
}
