// convoy manager: serves the Control and Dispatcher APIs until SIGINT/SIGTERM.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Command } from 'commander';
// The manager's modules load when `convoy manager` runs, not for every CLI verb.
import type { ManagerOptions } from '../../manager/mod';
import { createLogger } from '../../common/logger';
import { CliError, guarded, type CliIO } from '../client';
import { parseDuration } from '../flags';
import { DEFAULT_MANAGER_DATA_DIR, DEFAULT_MANAGER_LISTEN, DEFAULT_MANAGER_METRICS, JOIN_PORT, MAX_CERT_EXPIRY_MS, MIN_CERT_EXPIRY_MS, TOKEN_ENV } from '../../proto/defaults';

export { DEFAULT_MANAGER_DATA_DIR };
export { DEFAULT_MANAGER_LISTEN };
export { DEFAULT_MANAGER_METRICS };

export interface ManagerFlags {
  id?: string;
  listen: string;
  advertiseAddr?: string;
  etcd?: string;
  etcdCacert?: string;
  etcdCert?: string;
  etcdKey?: string;
  nats?: string;
  natsPort?: string;
  dataDir: string;
  metricsListen: string;
  metricsTls?: boolean;
  clusterCidr?: string;
  vipCidr?: string;
  heartbeatPeriod?: string;
  socket?: string;
  kekFile?: string;
  token?: string;
  join?: string;
  joinListen?: string;
  dashboardPort?: string;
  certExpiry?: string;
}

/**
 * Options documented for the manager that ManagerOptions may not declare yet;
 * passed along so they take effect as soon as the manager reads them.
 */
export interface PendingManagerOptions {
  metricsListen?: string;
  clusterCidr?: string;
  vipCidr?: string;
}

function hostPort(v: string, flag: string): string {
  if (!/^(\[[0-9a-fA-F:.]+\]|[^:\s]+):\d{1,5}$/.test(v)) throw new CliError(`${flag}: "${v}" is not host:port`);
  return v;
}

/** A PEM file's text, or one line naming the flag. */
function pemFile(p: string, flag: string): string {
  let text: string;
  try {
    text = fs.readFileSync(p, 'utf8');
  } catch (e) {
    throw new CliError(`${flag}: cannot read ${p} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  if (!text.includes('-----BEGIN ')) throw new CliError(`${flag}: ${p} is not a PEM file`);
  return text;
}

function cidr(v: string, flag: string): string {
  if (!/^\d{1,3}(\.\d{1,3}){3}\/\d{1,2}$/.test(v)) throw new CliError(`${flag}: "${v}" is not an IPv4 CIDR`);
  return v;
}

/** Flags → startManager's options. `--nats none` = no NATS (''), no --nats = the embedded default. */
export function managerOptions(f: ManagerFlags, env: NodeJS.ProcessEnv = {}): ManagerOptions & PendingManagerOptions {
  const opts: ManagerOptions & PendingManagerOptions = {
    dataDir: path.resolve(f.dataDir),
    listen: hostPort(f.listen, '--listen'),
  };
  if (f.id) opts.id = f.id;
  if (f.advertiseAddr) opts.advertiseAddr = hostPort(f.advertiseAddr.includes(':') ? f.advertiseAddr : `${f.advertiseAddr}:${f.listen.split(':').pop()}`, '--advertise-addr');
  if (f.etcd) {
    const eps = f.etcd
      .split(',')
      .map((e) => e.trim())
      .filter(Boolean);
    for (const e of eps) if (!/^https:\/\/[^\s]+$/.test(e) && !/^[^\s/]+:\d+$/.test(e)) throw new CliError(`--etcd: "${e}" is not an https etcd URL (https://host:2379; etcd is spoken to over TLS only)`);
    opts.etcdEndpoints = eps.map((e) => (e.includes('://') ? e : `https://${e}`));
    const missing = (['etcdCacert', 'etcdCert', 'etcdKey'] as const).filter((k) => !f[k]).map((k) => `--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`);
    if (missing.length) throw new CliError(`--etcd: ${missing.join(', ')} required (etcd is spoken to over TLS with a client certificate; see docs/etcd.md)`);
    opts.etcdTls = { ca: pemFile(f.etcdCacert!, '--etcd-cacert'), cert: pemFile(f.etcdCert!, '--etcd-cert'), key: pemFile(f.etcdKey!, '--etcd-key') };
  } else {
    for (const k of ['etcdCacert', 'etcdCert', 'etcdKey'] as const) if (f[k]) throw new CliError(`--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}: only with --etcd (the embedded etcd makes its own)`);
  }
  if (f.nats !== undefined) opts.natsUrl = f.nats === 'none' ? '' : f.nats;
  if (f.natsPort !== undefined) {
    if (!/^\d{1,5}$/.test(f.natsPort) || Number(f.natsPort) < 1 || Number(f.natsPort) > 65535) throw new CliError(`--nats-port: "${f.natsPort}" is not a port (1-65535)`);
    if (opts.natsUrl !== undefined && opts.natsUrl !== 'embedded') throw new CliError('--nats-port: only for the embedded NATS (no --nats, or --nats embedded)');
    opts.natsPort = Number(f.natsPort);
  }
  if (f.metricsListen !== 'none') opts.metricsListen = hostPort(f.metricsListen, '--metrics-listen');
  if (f.metricsTls) {
    if (f.metricsListen === 'none') throw new CliError('--metrics-tls: metrics are off (--metrics-listen none)');
    opts.metricsMutualTls = true;
  }
  if (f.clusterCidr) opts.clusterCidr = cidr(f.clusterCidr, '--cluster-cidr');
  if (f.vipCidr) opts.vipCidr = cidr(f.vipCidr, '--vip-cidr');
  if (f.socket !== undefined) {
    if (f.socket !== 'none' && !path.isAbsolute(f.socket)) throw new CliError(`--socket: "${f.socket}" is not an absolute path (or "none")`);
    opts.socket = f.socket === 'none' ? '' : f.socket;
  }
  if (f.heartbeatPeriod) opts.heartbeatPeriodMs = parseDuration(f.heartbeatPeriod, '--heartbeat-period');
  if (f.kekFile) opts.kekFile = path.resolve(f.kekFile);
  if (f.joinListen) opts.joinListen = hostPort(f.joinListen, '--join-listen');
  if (f.dashboardPort !== undefined) {
    if (f.dashboardPort === 'none') opts.dashboardListen = '';
    else {
      const p = /^\d{1,5}$/.test(f.dashboardPort) ? Number(f.dashboardPort) : NaN;
      if (!(p >= 0 && p <= 65535)) throw new CliError(`--dashboard-port: "${f.dashboardPort.slice(0, 40)}" is not a port (0-65535) or "none"`);
      opts.dashboardListen = `${opts.listen.slice(0, opts.listen.lastIndexOf(':'))}:${p}`;
    }
  }
  if (f.certExpiry !== undefined) {
    const ms = parseDuration(f.certExpiry, '--cert-expiry');
    if (ms < MIN_CERT_EXPIRY_MS || ms > MAX_CERT_EXPIRY_MS) throw new CliError(`--cert-expiry: "${f.certExpiry}" is outside ${MIN_CERT_EXPIRY_MS / 1000}s .. 10 years`);
    opts.certExpiryMs = ms;
  }
  // The environment's token only with --join (an agent's CONVOY_JOIN_TOKEN in a first manager's environment is no join).
  const token = f.token ?? (f.join ? env[TOKEN_ENV] : undefined);
  if (token) opts.joinToken = token;
  if (f.join) opts.join = hostPort(f.join.includes(':') ? f.join : `${f.join}:${JOIN_PORT}`, '--join');
  if (opts.joinToken && !opts.join) throw new CliError('--join: the join address of a running manager (host:7423) is needed with --token');
  return opts;
}

/** Resolves when one of `signals` arrives (and stops listening for them). */
export function untilSignal(signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM']): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const on = (s: NodeJS.Signals) => {
      for (const x of signals) process.off(x, on);
      resolve(s);
    };
    for (const s of signals) process.on(s, on);
  });
}

export function managerCommand(io: CliIO): Command {
  return new Command('manager')
    .description('Run a manager: Control API (CLI) and Dispatcher API (agents); with no --etcd it starts its own etcd')
    .option('--id <id>', 'manager id (default: kept in the data dir)')
    .option('--listen <host:port>', 'gRPC address (Control + Dispatcher)', DEFAULT_MANAGER_LISTEN)
    .option('--advertise-addr <host[:port]>', 'address agents and other managers reach this manager at')
    .option('--etcd <urls>', 'etcd endpoints (https://host:2379), comma-separated (default: a local etcd in the data dir)')
    .option('--etcd-cacert <file>', 'with --etcd: CA certificate (PEM) that signed the etcd server certificates')
    .option('--etcd-cert <file>', "with --etcd: this manager's etcd client certificate (PEM)")
    .option('--etcd-key <file>', "with --etcd: this manager's etcd client key (PEM)")
    .option('--nats <url>', 'NATS URL, "embedded" (run one, also with --etcd) or "none" (default: a local nats-server without --etcd)')
    .option('--nats-port <port>', 'port of the embedded NATS, on the --listen host (default: a free one)')
    .option('--data-dir <dir>', 'state directory', DEFAULT_MANAGER_DATA_DIR)
    .option('--metrics-listen <host:port>', 'Prometheus /metrics address (plaintext unless --metrics-tls), or "none"', DEFAULT_MANAGER_METRICS)
    .option('--metrics-tls', "serve /metrics with mutual TLS only (the manager's certificate; scrapers present a cluster certificate)")
    .option('--socket <path>', 'root-only unix socket serving the Control API to local root as admin, or "none" (default <data dir>/convoy.sock)')
    .option('--cluster-cidr <cidr>', 'task addresses, one /24 per node (when the cluster is created)')
    .option('--vip-cidr <cidr>', 'service virtual IPs (when the cluster is created)')
    .option('--heartbeat-period <duration>', 'how often agents heartbeat (1s)')
    .option('--kek-file <file>', 'key-encryption key sealing the CA key and secrets in etcd (0600; default <data-dir>/kek, created if absent): the same file on every manager, or join with --token; one base64 key per line, the first seals (a rotation: docs/security.md)')
    .option('--token <token>', `manager join token, to be handed the key-encryption key (or ${TOKEN_ENV})`)
    .option('--join <host[:port]>', 'join listener of a running manager, with --token (port 7423)')
    .option('--join-listen <host:port>', 'where nodes join (default: the --listen host, port + 3)')
    .option('--dashboard-port <port>', 'port of the web dashboard on the --listen host: HTTPS, cluster client certificates only; "none" = off (default: the gRPC port + 4; docs/dashboard.md)')
    .option('--cert-expiry <duration>', 'lifetime of node certificates when this manager creates the cluster (default 90 days; later: convoy cluster update --cert-expiry)')
    .action(async (f: ManagerFlags) =>
      guarded(io, async () => {
        const log = createLogger('manager');
        const { startManager } = await import('../../manager/mod');
        const handle = await startManager({ ...managerOptions(f, io.env), logger: log });
        log.info('manager running', { 'manager.id': handle.id, addr: handle.grpcAddr, etcd: handle.etcdEndpoints.join(',') });
        const sig = await untilSignal();
        log.info('stopping', { signal: sig });
        await handle.stop();
      }),
    );
}
