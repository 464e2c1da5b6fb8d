// Host networking of an agent: what startAgent's `network` option takes.
//
//   const net = createHostNetworking({ underlayAddr: '10.41.0.11' });
//   startAgent({ ..., network: net });   // attacher → runtime, programmer ← NetworkState
//   ...
//   await net.programmer.close(); await net.cleanup();   // only when leaving the cluster
import * as fs from 'node:fs';
import type { Logger } from '../../common/logger';
import { nullLogger } from '../../common/logger';
import { Attacher } from './attacher';
import { DnsServer } from './dns';
import { HostNetwork } from './host';
import { LocalTasks } from './local-tasks';
import { Programmer } from './programmer';
import { checkRanges, parseResolvConf, readHostNetworkFacts } from '../../common/ranges';
import { type Sh, hostSh } from './sh';

export { Attacher, taskNetnsName, vethName, removeTaskLeftovers } from './attacher';
export { DnsServer, DnsTable } from './dns';
export { HostNetwork, removeHostNetworking, BRIDGE, VXLAN, NFT_TABLE } from './host';
export { LocalTasks } from './local-tasks';
export { Programmer, DEFAULT_CLUSTER_CIDR, DEFAULT_VIP_CIDR } from './programmer';
import { DEFAULT_CLUSTER_CIDR, DEFAULT_VIP_CIDR } from './programmer';
export { checkRanges, readHostNetworkFacts, RangeConflictError } from '../../common/ranges';
export { hostSh, netnsSh, type Sh } from './sh';

/**
 * Throws RangeConflictError when the cluster or VIP range overlaps a route of
 * this host (other than Convoy's own links) or contains its resolver.
 */
export function checkDefaultRanges(clusterCidr = DEFAULT_CLUSTER_CIDR, vipCidr = DEFAULT_VIP_CIDR): void {
  checkRanges(
    [
      { name: 'cluster CIDR', cidr: clusterCidr },
      { name: 'VIP range', cidr: vipCidr },
    ],
    readHostNetworkFacts(),
  );
}

export interface HostNetworkingOptions {
  /** This host's underlay address (the agent's --advertise-addr). */
  underlayAddr: string;
  /** The agent's node id once registered; identifies this host in NetworkState.nodes. */
  nodeId?: () => string | undefined;
  /** Resolvers for names outside the cluster; default: /etc/resolv.conf's nameservers. */
  upstreams?: string[];
  sh?: Sh;
  logger?: Logger;
}

export interface HostNetworking {
  attacher: Attacher;
  programmer: Programmer;
  host: HostNetwork;
  local: LocalTasks;
  dns: DnsServer;
  /** Removes the bridge, VXLAN device, nftables table and task namespaces of this host. */
  cleanup(): Promise<void>;
}

export function createHostNetworking(o: HostNetworkingOptions): HostNetworking {
  const sh = o.sh ?? hostSh;
  const logger = (o.logger ?? nullLogger).child({ component: 'network' });
  let upstreams = o.upstreams;
  if (!upstreams) {
    try {
      upstreams = parseResolvConf(fs.readFileSync('/etc/resolv.conf', 'utf8'));
    } catch {
      upstreams = [];
    }
  }
  const host = new HostNetwork({ underlayAddr: o.underlayAddr, sh, logger });
  const local = new LocalTasks();
  const dns = new DnsServer({ upstreams, logger });
  const attacher = new Attacher({ host, local, sh, logger });
  const programmer = new Programmer({ host, local, dns, nodeId: o.nodeId, underlayAddr: o.underlayAddr, sh, logger });
  return {
    attacher,
    programmer,
    host,
    local,
    dns,
    async cleanup() {
      await programmer.close();
      for (const t of local.all()) await attacher.detach(t.taskId);
      await host.cleanup();
    },
  };
}
