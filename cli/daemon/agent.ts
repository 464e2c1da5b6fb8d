// convoy agent: joins the cluster and runs tasks until SIGINT/SIGTERM.
import * as os from 'node:os';
import { Command } from 'commander';
// The agent's modules load when `convoy agent` runs, not for every CLI verb (they double its start-up time).
import type { AgentOptions } from '../../agent/mod';
import { createLogger } from '../../common/logger';
import { CliError, guarded, resolveHost, type CliIO } from '../client';
import { collect, parseKv } from '../flags';
import { DEFAULT_AGENT_METRICS, DEFAULT_STATE_DIR, TOKEN_ENV } from '../../proto/defaults';

export { DEFAULT_AGENT_METRICS };
export { TOKEN_ENV };

export interface AgentFlags {
  manager?: string;
  token?: string;
  stateDir?: string;
  hostname?: string;
  advertiseAddr?: string;
  label?: string[];
  executor: string;
  metricsListen: string;
  /** NATS URL instead of the one the managers advertise. */
  nats?: string;
  insecureRegistry?: string[];
  /** false with --no-network: containers get no network namespace wiring from Convoy. */
  network?: boolean;
}

/** First non-internal IPv4 address of this host, for --advertise-addr's default. */
export function defaultAdvertiseAddr(ifaces: NodeJS.Dict<os.NetworkInterfaceInfo[]> = os.networkInterfaces()): string {
  for (const list of Object.values(ifaces)) for (const i of list ?? []) if (i.family === 'IPv4' && !i.internal) return i.address;
  return '127.0.0.1';
}

export function agentOptions(f: AgentFlags, env: NodeJS.ProcessEnv): AgentOptions {
  const managers = (f.manager ?? env.CONVOY_MANAGER ?? '')
    .split(',')
    .map((m) => m.trim())
    .filter(Boolean)
    .map((m) => resolveHost(m, {}));
  if (!managers.length) throw new CliError('--manager: at least one manager address (host:port) is required');
  const joinToken = f.token ?? env[TOKEN_ENV] ?? '';
  if (!joinToken) throw new CliError(`--token: a join token is required (convoy cluster join-token worker; or set ${TOKEN_ENV})`);
  if (f.executor !== 'container' && f.executor !== 'hollow') throw new CliError(`--executor: "${f.executor}" is not container or hollow`);
  const opts: AgentOptions = {
    managers,
    joinToken,
    advertiseAddr: f.advertiseAddr || defaultAdvertiseAddr(),
    executor: f.executor,
    labels: parseKv(f.label ?? [], '--label'),
  };
  if (f.stateDir) opts.stateDir = f.stateDir;
  if (f.hostname) opts.hostname = f.hostname;
  if (f.metricsListen !== 'none') opts.metricsListen = f.metricsListen;
  if (f.nats) opts.natsUrl = f.nats;
  if (f.insecureRegistry?.length) opts.runtime = { insecureRegistries: f.insecureRegistry };
  return opts;
}

export function agentCommand(io: CliIO): Command {
  return new Command('agent')
    .description('Run an agent: joins the cluster through a manager and runs its tasks')
    .option('--manager <host:port,...>', 'manager addresses (the others are failover targets)')
    .option('--token <token>', `join token (or ${TOKEN_ENV})`)
    .option('--state-dir <dir>', `node identity, images and containers (default ${DEFAULT_STATE_DIR})`)
    .option('--hostname <name>', 'node hostname (default: this host)')
    .option('--advertise-addr <ip>', 'address other nodes reach this one at (default: first non-loopback IPv4)')
    .option('-l, --label <k=v>', 'node engine label (repeatable)', collect)
    .option('--executor <kind>', 'container (real containers) | hollow (pretend, for scale tests)', 'container')
    .option('--metrics-listen <host:port>', 'Prometheus /metrics address, or "none"', DEFAULT_AGENT_METRICS)
    .option('--nats <url>', 'NATS URL for events, stats and logs (default: the one the managers advertise)')
    .option('--insecure-registry <host:port>', 'registry spoken to over plain HTTP (repeatable)', collect)
    .option('--no-network', 'do not program host networking (bridge, overlay, nftables, DNS)')
    .action(async (f: AgentFlags) =>
      guarded(io, async () => {
        const opts = agentOptions(f, io.env);
        const { runAgentDaemon } = await import('../../agent/mod');
        const { checkDefaultRanges, createHostNetworking } = await import('../../agent/network/mod');
        if (opts.executor === 'container' && f.network !== false) {
          // Refuse default ranges that collide with this host's routes or resolver before touching anything.
          checkDefaultRanges();
          opts.network = createHostNetworking({ underlayAddr: opts.advertiseAddr, logger: createLogger('agent') });
        }
        // The programmer's DNS server holds sockets: close it once the agent stopped, or the process never exits.
        const code = await runAgentDaemon(opts).finally(() => opts.network?.programmer.close());
        if (code) io.setExitCode(code);
      }),
    );
}
