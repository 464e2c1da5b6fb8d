// Converges this host to each NetworkState: overlay peers (host.ts), the
// nftables table (nft.ts, one atomic `nft -f -` transaction, skipped when
// the rendered text did not change) and the DNS records (dns.ts). Local
// task changes (attach/detach) re-apply the last state, so host-mode ports
// and the DNS view of a starting container are right before it runs.
import type { NetworkState } from '../../proto/mod';
import type { Logger } from '../../common/logger';
import { errMsg, nullLogger } from '../../common/logger';
import type { NetworkProgrammer } from '../executor';
import { DnsTable, type DnsServer, type DnsService } from './dns';
import type { HostNetwork } from './host';
import type { LocalTask, LocalTasks } from './local-tasks';
import { diffText, renderBridge, renderRuleset, type RenderStats, type Ruleset } from './nft';
import { ensureForwardAccept } from './forward';
import { type Sh, hostSh } from './sh';
import { DEFAULT_CLUSTER_CIDR, DEFAULT_VIP_CIDR } from '../../proto/defaults';

export { DEFAULT_CLUSTER_CIDR };
export { DEFAULT_VIP_CIDR };

export interface ProgrammerOptions {
  host: HostNetwork;
  local: LocalTasks;
  /** Started on the bridge address once the node subnet is known. */
  dns?: DnsServer;
  /** This host's node, found in state.nodes by id (when known) or by underlay address. */
  nodeId?: () => string | undefined;
  underlayAddr: string;
  sh?: Sh;
  logger?: Logger;
}

/** Timing of the last apply, for logs and benchmarks. */
export interface ApplyReport {
  version: number;
  nftMs: number;
  changed: boolean;
  /** How nftables was updated: a diff transaction, the whole table, a failed diff then the whole table, or not at all. */
  mode: 'diff' | 'full' | 'diff-failed' | 'none';
  stats: RenderStats;
}

export class Programmer implements NetworkProgrammer {
  private readonly sh: Sh;
  private readonly log: Logger;
  private last: NetworkState | undefined;
  private lastRules = '';
  private lastRuleset: Ruleset | undefined;
  private chain: Promise<unknown> = Promise.resolve();
  /** Bumped by every apply(): a queued apply that is not the newest has nothing to do (the newest covers it). */
  private gen = 0;
  private closed = false;
  lastReport: ApplyReport | undefined;

  constructor(private readonly opts: ProgrammerOptions) {
    this.sh = opts.sh ?? hostSh;
    this.log = opts.logger ?? nullLogger;
    opts.local.onChange(() => {
      if (!this.last) return;
      return this.apply(this.last).catch((e) => this.log.warn('network re-apply failed', { err: errMsg(e) }));
    });
  }

  /** Applies state; calls are serialised, so a later snapshot always lands last. */
  apply(state: NetworkState): Promise<void> {
    this.last = state;
    const gen = ++this.gen;
    const run = this.chain.then(() => this.applyNow(state, gen));
    this.chain = run.catch(() => undefined);
    this.newest = run;
    // A skipped apply is done when the newer one that covers it is.
    return run.then((skipped) => (skipped ? this.newest.then(() => undefined) : undefined));
  }

  private newest: Promise<boolean> = Promise.resolve(false);
  private bridgeText = '';
  private forwardCidr = '';

  /** True when skipped because a newer apply covers it. */
  private async applyNow(state: NetworkState, gen: number): Promise<boolean> {
    // A newer apply is queued (a new snapshot, or local tasks changed again, as when 30 containers start at once).
    if (this.closed) return false;
    if (gen !== this.gen) return true;
    const id = this.opts.nodeId?.();
    const self = state.nodes.find((n) => (id && n.nodeId === id) || n.addr === this.opts.underlayAddr);
    const subnet = self?.subnet || this.opts.host.nodeSubnet || this.opts.local.all()[0]?.addresses[0];
    if (subnet) await this.opts.host.ensure(subnet.includes('/') ? subnet : `${subnet}/24`);
    await this.opts.host.syncPeers(state.nodes.map((n) => ({ subnet: n.subnet, addr: n.addr })));
    const local = this.opts.local.all();
    const { ruleset, text, stats } = renderRuleset({
      state,
      local,
      defaultClusterCidr: DEFAULT_CLUSTER_CIDR,
      defaultVipCidr: DEFAULT_VIP_CIDR,
      underlayAddr: this.opts.underlayAddr,
      gateway: this.opts.host.gateway,
    });
    // On a host whose iptables FORWARD drops (Docker's), Convoy's ranges need accept rules there too.
    const cluster = state.clusterCidr || DEFAULT_CLUSTER_CIDR;
    if (cluster !== this.forwardCidr) {
      await ensureForwardAccept(this.sh, cluster, this.log);
      this.forwardCidr = cluster;
    }
    const t0 = performance.now();
    // A small transaction for what changed when the base is the same; the whole table otherwise
    // (first apply, networks or ranges changed, or a failed diff).
    const prev = this.lastRuleset;
    const diff = prev && prev.head === ruleset.head ? diffText(prev, ruleset) : undefined;
    const changed = diff === undefined ? text !== this.lastRules : diff !== '';
    let mode: ApplyReport['mode'] = changed ? (diff ? 'diff' : 'full') : 'none';
    if (diff) {
      await this.sh.run('nft', ['-f', '-'], diff).catch(async (e) => {
        this.log.warn('nftables diff failed, rewriting the table', { err: errMsg(e) });
        mode = 'diff-failed';
        await this.sh.run('nft', ['-f', '-'], text);
      });
    } else if (changed) await this.sh.run('nft', ['-f', '-'], text);
    this.lastRules = text;
    this.lastRuleset = ruleset;
    const btext = renderBridge(this.opts.host.gateway, local);
    if (btext !== this.bridgeText) {
      await this.sh.run('nft', ['-f', '-'], btext);
      this.bridgeText = btext;
    }
    this.lastReport = { version: state.version, nftMs: performance.now() - t0, changed, mode, stats };
    if (changed) this.log.debug('nftables applied', { version: state.version, ms: Math.round(this.lastReport.nftMs), services: stats.services, endpoints: stats.endpoints });
    const dns = this.opts.dns;
    if (dns) {
      dns.setTable(dnsTable(state, local));
      const gw = this.opts.host.gateway;
      if (gw) await dns.listen(gw).catch((e) => this.log.warn('dns listen failed', { err: errMsg(e), addr: gw }));
    }
    return false;
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.chain;
    await this.opts.dns?.close();
  }
}

/** DNS records of a state: services by name, and each task address's networks. */
export function dnsTable(state: NetworkState, local: LocalTask[]): DnsTable {
  const services: DnsService[] = [];
  const sourceNets = new Map<string, Set<string>>();
  const addNets = (addr: string, nets: string[]) => {
    let s = sourceNets.get(addr);
    if (!s) sourceNets.set(addr, (s = new Set()));
    for (const n of nets) s.add(n);
  };
  for (const s of state.services) {
    services.push({
      name: s.serviceName,
      mode: s.mode === 'DNSRR' ? 'DNSRR' : 'VIP',
      networks: s.networks,
      vips: s.virtualIps.map((v) => ({ networkId: v.networkId, addr: v.addr })),
      readyAddrs: s.tasks.filter((t) => t.ready).flatMap((t) => t.addresses.slice(0, 1)),
      aliases: (s.aliases ?? []).map((a) => ({ networkId: a.network, names: a.aliases })),
    });
    for (const t of s.tasks) for (const a of t.addresses) addNets(a, s.networks);
  }
  for (const t of local) for (const a of t.addresses) addNets(a, t.networks);
  // --dns of local tasks: their other names relayed there, as Docker's embedded DNS (docs/container-options.md).
  const upstreams = new Map<string, string[]>();
  for (const t of local) if (t.dnsServers?.length) for (const a of t.addresses) upstreams.set(a, t.dnsServers);
  return new DnsTable(services, sourceNets, upstreams);
}
