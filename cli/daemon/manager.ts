// convoy manager: serves the Control and Dispatcher APIs until SIGINT/SIGTERM.
import * as path from 'node:path';
import { Command } from 'commander';
// The manager's modules load when `convoy manager` runs, not for every CLI verb.
import type { ManagerOptions } from '../../manager/mod';
import { createLogger } from '../../common/logger';
import { CliError, guarded, type CliIO } from '../client';
import { parseDuration } from '../flags';
import { DEFAULT_MANAGER_DATA_DIR, DEFAULT_MANAGER_LISTEN, DEFAULT_MANAGER_METRICS } from '../../proto/defaults';

export { DEFAULT_MANAGER_DATA_DIR };
export { DEFAULT_MANAGER_LISTEN };
export { DEFAULT_MANAGER_METRICS };

export interface ManagerFlags {
  id?: string;
  listen: string;
  advertiseAddr?: string;
  etcd?: string;
  nats?: string;
  dataDir: string;
  metricsListen: string;
  clusterCidr?: string;
  vipCidr?: string;
  heartbeatPeriod?: string;
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

function cidr(v: string, flag: string): string {
  if (!/^\d{1,3}(\.\d{1,3}){3}\/\d{1,2}$/.test(v)) throw new CliError(`${flag}: "${v}" is not an IPv4 CIDR`);
  return v;
}

/** Flags → startManager's options. `--nats none` = no NATS (''), no --nats = the embedded default. */
export function managerOptions(f: ManagerFlags): ManagerOptions & PendingManagerOptions {
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
    for (const e of eps) if (!/^https?:\/\/[^\s]+$/.test(e) && !/^[^\s/]+:\d+$/.test(e)) throw new CliError(`--etcd: "${e}" is not an etcd URL (http://host:2379)`);
    opts.etcdEndpoints = eps.map((e) => (e.includes('://') ? e : `http://${e}`));
  }
  if (f.nats !== undefined) opts.natsUrl = f.nats === 'none' ? '' : f.nats;
  if (f.metricsListen !== 'none') opts.metricsListen = hostPort(f.metricsListen, '--metrics-listen');
  if (f.clusterCidr) opts.clusterCidr = cidr(f.clusterCidr, '--cluster-cidr');
  if (f.vipCidr) opts.vipCidr = cidr(f.vipCidr, '--vip-cidr');
  if (f.heartbeatPeriod) opts.heartbeatPeriodMs = parseDuration(f.heartbeatPeriod, '--heartbeat-period');
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
    .option('--etcd <urls>', 'etcd endpoints, comma-separated (default: a local etcd in the data dir)')
    .option('--nats <url>', 'NATS URL, or "none" (default: a local nats-server)')
    .option('--data-dir <dir>', 'state directory', DEFAULT_MANAGER_DATA_DIR)
    .option('--metrics-listen <host:port>', 'Prometheus /metrics address, or "none"', DEFAULT_MANAGER_METRICS)
    .option('--cluster-cidr <cidr>', 'task addresses, one /24 per node (when the cluster is created)')
    .option('--vip-cidr <cidr>', 'service virtual IPs (when the cluster is created)')
    .option('--heartbeat-period <duration>', 'how often agents heartbeat (1s)')
    .action(async (f: ManagerFlags) =>
      guarded(io, async () => {
        const log = createLogger('manager');
        const { startManager } = await import('../../manager/mod');
        const handle = await startManager({ ...managerOptions(f), logger: log });
        log.info('manager running', { 'manager.id': handle.id, addr: handle.grpcAddr, etcd: handle.etcdEndpoints.join(',') });
        const sig = await untilSignal();
        log.info('stopping', { signal: sig });
        await handle.stop();
      }),
    );
}
