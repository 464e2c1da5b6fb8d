// convoy agent: joins the cluster and runs tasks until SIGINT/SIGTERM.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Command } from 'commander';
// The agent's modules load when `convoy agent` runs, not for every CLI verb (they double its start-up time).
import type { AgentOptions } from '../../agent/mod';
import { createLogger } from '../../common/logger';
import { CliError, guarded, resolveHost, type CliIO } from '../client';
import { collect, parseInteger, parseKv, parseSize } from '../flags';
import * as imageLimits from '../../agent/runtime/image/limits';
import { DEFAULT_AGENT_METRICS, DEFAULT_STATE_DIR, JOIN_PORT, TOKEN_ENV } from '../../proto/defaults';

export { DEFAULT_AGENT_METRICS };
export { TOKEN_ENV };

export interface AgentFlags {
  manager?: string;
  token?: string;
  joinAddr?: string;
  stateDir?: string;
  hostname?: string;
  advertiseAddr?: string;
  label?: string[];
  executor: string;
  metricsListen: string;
  metricsTls?: boolean;
  /** NATS URL instead of the one the managers advertise. */
  nats?: string;
  insecureRegistry?: string[];
  /** false with --no-network: containers get no network namespace wiring from Convoy. */
  network?: boolean;
  imageMaxLayerBytes?: string;
  imageMaxLayerEntries?: string;
  imageMaxHeaderBytes?: string;
  imageMaxMetadataBytes?: string;
  imageMaxManifestBytes?: string;
  imageMaxConfigBytes?: string;
}

/** --image-max-* flags → ImageLimits (only the ones given: the others keep their defaults). */
function imageLimitOptions(f: AgentFlags): imageLimits.ImageLimits {
  const out: imageLimits.ImageLimits = {};
  const size = (v: string | undefined, flag: string) => (v === undefined ? undefined : Math.max(1, parseSize(v, flag)));
  const set = <K extends keyof imageLimits.ImageLimits>(k: K, v: number | undefined) => {
    if (v !== undefined) out[k] = v;
  };
  set('maxLayerBytes', size(f.imageMaxLayerBytes, '--image-max-layer-bytes'));
  set('maxEntries', f.imageMaxLayerEntries === undefined ? undefined : parseInteger(f.imageMaxLayerEntries, '--image-max-layer-entries', 1));
  set('maxHeaderBytes', size(f.imageMaxHeaderBytes, '--image-max-header-bytes'));
  set('maxMetadataBytes', size(f.imageMaxMetadataBytes, '--image-max-metadata-bytes'));
  set('maxManifestBytes', size(f.imageMaxManifestBytes, '--image-max-manifest-bytes'));
  set('maxConfigBytes', size(f.imageMaxConfigBytes, '--image-max-config-bytes'));
  return out;
}

const mib = (n: number) => (n >= 1024 ** 3 ? `${n / 1024 ** 3}G` : `${n / 1024 ** 2}M`);

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
  const stateDir = f.stateDir ?? DEFAULT_STATE_DIR;
  // A joined node authenticates with its certificate (<state dir>/tls): the token is needed once.
  if (!joinToken && !fs.existsSync(path.join(stateDir, 'tls', 'cert.pem')))
    throw new CliError(`--token: a join token is required to join (convoy cluster join-token worker; or set ${TOKEN_ENV})`);
  if (f.executor !== 'container' && f.executor !== 'hollow') throw new CliError(`--executor: "${f.executor}" is not container or hollow`);
  const opts: AgentOptions = {
    managers,
    joinToken,
    ...(f.joinAddr ? { joinAddr: /:\d+$/.test(f.joinAddr) ? f.joinAddr : `${f.joinAddr}:${JOIN_PORT}` } : {}),
    advertiseAddr: f.advertiseAddr || defaultAdvertiseAddr(),
    executor: f.executor,
    labels: parseKv(f.label ?? [], '--label'),
  };
  if (f.stateDir) opts.stateDir = f.stateDir;
  if (f.hostname) opts.hostname = f.hostname;
  if (f.metricsListen !== 'none') opts.metricsListen = f.metricsListen;
  if (f.metricsTls) {
    if (f.metricsListen === 'none') throw new CliError('--metrics-tls: metrics are off (--metrics-listen none)');
    opts.metricsMutualTls = true;
  }
  if (f.nats) opts.natsUrl = f.nats;
  if (f.insecureRegistry?.length) opts.runtime = { insecureRegistries: f.insecureRegistry };
  const limits = imageLimitOptions(f);
  if (Object.keys(limits).length) opts.runtime = { ...opts.runtime, imageLimits: limits };
  return opts;
}

export function agentCommand(io: CliIO): Command {
  return new Command('agent')
    .description('Run an agent: joins the cluster through a manager and runs its tasks')
    .option('--manager <host:port,...>', 'manager addresses (the others are failover targets)')
    .option('--token <token>', `join token, needed once: the node keeps its certificate in <state-dir>/tls (or ${TOKEN_ENV})`)
    .option('--join-addr <host:port>', "a manager's join listener (default: the first --manager's host, its port + 3)")
    .option('--state-dir <dir>', `node identity, images and containers (default ${DEFAULT_STATE_DIR})`)
    .option('--hostname <name>', 'node hostname (default: this host)')
    .option('--advertise-addr <ip>', 'address other nodes reach this one at (default: first non-loopback IPv4)')
    .option('-l, --label <k=v>', 'node engine label (repeatable)', collect)
    .option('--executor <kind>', 'container (real containers) | hollow (pretend, for scale tests)', 'container')
    .option('--metrics-listen <host:port>', 'Prometheus /metrics address (plaintext unless --metrics-tls), or "none"', DEFAULT_AGENT_METRICS)
    .option('--metrics-tls', "serve /metrics with mutual TLS only (the node's certificate; scrapers present a cluster certificate)")
    .option('--nats <url>', 'NATS URL for events, stats and logs (default: the one the managers advertise)')
    .option('--insecure-registry <host:port>', 'registry spoken to over plain HTTP (repeatable)', collect)
    .option('--no-network', 'do not program host networking (bridge, overlay, nftables, DNS)')
    .option('--image-max-layer-bytes <size>', `uncompressed size of one image layer (default ${mib(imageLimits.DEFAULT_MAX_LAYER_BYTES)})`)
    .option('--image-max-layer-entries <n>', `entries in one image layer (default ${imageLimits.DEFAULT_MAX_LAYER_ENTRIES})`)
    .option('--image-max-header-bytes <size>', `one PAX header or long name in a layer (default ${mib(imageLimits.DEFAULT_MAX_HEADER_BYTES)})`)
    .option('--image-max-metadata-bytes <size>', `all PAX headers and long names of one layer (default ${mib(imageLimits.DEFAULT_MAX_METADATA_BYTES)})`)
    .option('--image-max-manifest-bytes <size>', `one image manifest or index (default ${mib(imageLimits.DEFAULT_MAX_MANIFEST_BYTES)})`)
    .option('--image-max-config-bytes <size>', `one image config (default ${mib(imageLimits.DEFAULT_MAX_CONFIG_BYTES)})`)
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
