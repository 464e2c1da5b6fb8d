// The NetworkState a node's DNS, load balancer and overlay are programmed
// from: every service's endpoints and every node's underlay address.
import { isTerminal, type NetworkState, type Node, type Service, type Task } from '../../proto/mod';
import { contains, parseCidr } from '../../common/cidr';
import { DEFAULT_NETWORK } from '../allocator/allocator';
import type { StateCache } from '../state/cache';

/** The service's tasks as endpoints; ready = running (and healthy when it has a health check). */
export function buildNetworkState(cache: StateCache, version: number): NetworkState {
  const byService = new Map<string, Task[]>();
  for (const t of cache.tasks.values()) {
    if (t.desiredState !== 'RUNNING' || isTerminal(t.status?.state ?? 'NEW') || !t.networks?.length) continue;
    const list = byService.get(t.serviceId);
    if (list) list.push(t);
    else byService.set(t.serviceId, [t]);
  }
  const netByName = new Map<string, string>();
  for (const n of cache.networks.values()) netByName.set(n.spec?.name ?? '', n.id);
  const services: NetworkState['services'] = [];
  for (const s of cache.services.values()) {
    if (!s.spec) continue;
    services.push({
      serviceId: s.id,
      serviceName: s.spec.name,
      mode: s.spec.endpoint?.mode ?? 'VIP',
      virtualIps: s.endpoint?.virtualIps ?? [],
      ports: (s.endpoint?.ports ?? []).filter((p) => p.publishMode !== 'HOST'),
      networks: serviceNetworks(s, netByName),
      aliases: (s.spec.networkAliases ?? []).map((a) => ({ network: netByName.get(a.network) ?? '', aliases: a.aliases })).filter((a) => a.network && a.aliases.length),
      tasks: (byService.get(s.id) ?? []).map((t) => ({
        taskId: t.id,
        nodeId: t.nodeId,
        addresses: t.networks.flatMap((a) => a.addresses.map((x) => x.split('/')[0])),
        ready: t.status?.state === 'RUNNING' && t.status.health !== 'unhealthy' && t.status.health !== 'starting',
        slot: t.slot,
      })),
    });
  }
  const ranges = [cache.cluster?.clusterCidr, cache.cluster?.vipCidr].filter((c): c is string => !!c).map(parseCidr);
  const inCluster = (a: string) => ranges.some((r) => contains(r, a));
  return {
    version,
    services,
    nodes: [...cache.nodes.values()].map((n) => ({ nodeId: n.id, addr: n.status?.addr ?? '', subnet: n.subnet, up: cache.alive.has(n.id), addresses: otherAddresses(n, inCluster) })),
    networks: [...cache.networks.values()],
    clusterCidr: cache.cluster?.clusterCidr ?? '',
    vipCidr: cache.cluster?.vipCidr ?? '',
    bindAllow: cache.cluster?.bindAllow ?? [],
  };
}

/** A node's IPv4 addresses besides its underlay one, without the cluster's own ranges (its bridge address is a task gateway, handled by each node). */
function otherAddresses(n: Node, inCluster: (a: string) => boolean): string[] {
  return (n.description?.addresses ?? []).filter((a) => a !== n.status?.addr && !a.startsWith('127.') && !inCluster(a));
}

function serviceNetworks(s: Service, byName: Map<string, string>): string[] {
  const names = s.spec?.networks?.length ? s.spec.networks : [DEFAULT_NETWORK];
  return names.map((n) => byName.get(n) ?? '').filter(Boolean);
}
