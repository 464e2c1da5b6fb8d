// The allocator: addresses and ports, derived every tick from the snapshot
// (never from memory), so a new leader continues without leaks or
// duplicates. What is in use is what the stored objects say is in use.
//
// Before the scheduler (allocateCluster):
//  - the "default" network exists (created when the cluster has none) and
//    every network has a VXLAN id (vni, from 4096 up, as Docker's overlay);
//  - every node has a /24 of the cluster CIDR, written on the node object
//    (node.subnet), lowest free first; a removed node frees its subnet;
//  - every service has its endpoint: one VIP per attached network from the
//    VIP CIDR (endpoint mode vip; none for dnsrr), and its ingress ports'
//    published_port (the one given, or the lowest free of the cluster's
//    ingress range).
// After the scheduler (allocateTasks), for tasks just placed:
//  - one address per attached network from the node's subnet (.1 is the
//    node's bridge; network and broadcast are skipped), next after the
//    highest in use so a just-released address is not reused at once;
//  - host-mode ports: the one given, or one from the host port range that no
//    other task on that node holds.
// A task releases its addresses and host ports when it ends (an ORPHANED
// task keeps them while its node is not ready: its container may still run).
import type { Network, Node, PortConfig, Task } from '../../proto/mod';
import { hasEnded, isUnassigned } from '../orchestrator/task';
import type { Working } from '../orchestrator/working';
import { cidrSize, formatCidr, intToIp, offsetIn, parseCidr, type Cidr } from '../../common/cidr';
import { DEFAULT_NETWORK, DEFAULT_CLUSTER_CIDR, DEFAULT_VIP_CIDR, DEFAULT_INGRESS_PORTS, DEFAULT_HOST_PORTS } from '../../proto/defaults';

export { DEFAULT_NETWORK };
/** First VXLAN id handed out (Docker's overlay driver starts at 4096 too). */
export const VNI_BASE = 4096;
export { DEFAULT_CLUSTER_CIDR };
export { DEFAULT_VIP_CIDR };
export { DEFAULT_INGRESS_PORTS };
export { DEFAULT_HOST_PORTS };
/** Every node gets a /24: 253 task addresses. */
export const NODE_SUBNET_PREFIX = 24;

export interface AllocatorOptions {
  hostPorts?: { min: number; max: number };
}

function sortById<T extends { id: string; meta: { createdAt: number } | null }>(xs: Iterable<T>): T[] {
  return [...xs].sort((a, b) => (a.meta?.createdAt ?? 0) - (b.meta?.createdAt ?? 0) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

/** Networks by name, with the default one created when missing. */
function ensureNetworks(w: Working): void {
  const used = new Set<number>();
  for (const n of w.networks.values()) if (n.vni) used.add(n.vni);
  let next = VNI_BASE;
  const nextVni = () => {
    while (used.has(next)) next++;
    used.add(next);
    return next;
  };
  if (![...w.networks.values()].some((n) => n.spec?.name === DEFAULT_NETWORK)) {
    const net: Network = {
      id: w.newId(),
      meta: { version: 0, createdAt: w.now, updatedAt: w.now },
      spec: { name: DEFAULT_NETWORK, subnet: '', labels: {}, internal: false },
      vni: nextVni(),
      subnet: w.cluster.clusterCidr || DEFAULT_CLUSTER_CIDR,
    };
    w.createNetwork(net);
  }
  for (const n of sortById(w.networks.values())) {
    if (n.vni && n.subnet) continue;
    w.updateNetwork({ ...n, vni: n.vni || nextVni(), subnet: n.subnet || n.spec?.subnet || w.cluster.clusterCidr || DEFAULT_CLUSTER_CIDR });
  }
}

function networkByName(w: Working): Map<string, Network> {
  const m = new Map<string, Network>();
  for (const n of w.networks.values()) if (n.spec?.name) m.set(n.spec.name, n);
  return m;
}

function allocateNodeSubnets(w: Working): void {
  let cidr: Cidr;
  try {
    cidr = parseCidr(w.cluster.clusterCidr || DEFAULT_CLUSTER_CIDR);
  } catch {
    return;
  }
  if (cidr.prefix > NODE_SUBNET_PREFIX) return;
  const step = 2 ** (32 - NODE_SUBNET_PREFIX);
  const count = cidrSize(cidr) / step;
  const used = new Set<number>();
  const missing: Node[] = [];
  for (const n of sortById(w.nodes.values())) {
    const off = n.subnet ? offsetIn(cidr, n.subnet) : -1;
    if (off >= 0 && n.subnet.endsWith(`/${NODE_SUBNET_PREFIX}`) && !used.has(off / step)) used.add(off / step);
    else missing.push(n);
  }
  let i = 0;
  for (const n of missing) {
    while (i < count && used.has(i)) i++;
    if (i >= count) return; // Cluster CIDR exhausted: the scheduler explains "no free address" for such nodes.
    used.add(i);
    w.updateNode({ ...n, subnet: formatCidr({ base: cidr.base + i * step, prefix: NODE_SUBNET_PREFIX }) });
  }
}

const portKey = (p: { protocol: string; publishedPort: number }) => `${p.protocol || 'tcp'}/${p.publishedPort}`;

function allocateEndpoints(w: Working): void {
  let vipCidr: Cidr | undefined;
  try {
    vipCidr = parseCidr(w.cluster.vipCidr || DEFAULT_VIP_CIDR);
  } catch {
    vipCidr = undefined;
  }
  const nets = networkByName(w);
  const services = sortById(w.services.values());
  // In use: what stored endpoints already hold (first service by age wins a clash).
  const vips = new Set<number>();
  const ingress = new Set<string>();
  const keep = new Map<string, { vips: Set<string>; ports: Set<string> }>();
  for (const s of services) {
    const k = { vips: new Set<string>(), ports: new Set<string>() };
    keep.set(s.id, k);
    if (vipCidr)
      for (const v of s.endpoint?.virtualIps ?? []) {
        const off = offsetIn(vipCidr, v.addr);
        if (off > 0 && off < cidrSize(vipCidr) - 1 && !vips.has(off)) {
          vips.add(off);
          k.vips.add(v.addr);
        }
      }
    for (const p of s.endpoint?.ports ?? []) {
      if (p.publishMode === 'HOST' || !p.publishedPort || ingress.has(portKey(p))) continue;
      ingress.add(portKey(p));
      k.ports.add(portKey(p));
    }
  }
  const range = {
    min: w.cluster.ingressPortMin || DEFAULT_INGRESS_PORTS.min,
    max: w.cluster.ingressPortMax || DEFAULT_INGRESS_PORTS.max,
  };
  let vipNext = 1;
  const nextVip = (): string | undefined => {
    if (!vipCidr) return undefined;
    const size = cidrSize(vipCidr);
    while (vipNext < size - 1 && vips.has(vipNext)) vipNext++;
    if (vipNext >= size - 1) return undefined;
    vips.add(vipNext);
    return intToIp(vipCidr.base + vipNext);
  };
  for (const s of services) {
    const spec = s.spec;
    if (!spec) continue;
    const k = keep.get(s.id)!;
    const names = spec.networks?.length ? spec.networks : [DEFAULT_NETWORK];
    const virtualIps: { networkId: string; addr: string }[] = [];
    if ((spec.endpoint?.mode ?? 'VIP') === 'VIP')
      for (const name of names) {
        const net = nets.get(name);
        if (!net) continue;
        const had = s.endpoint?.virtualIps?.find((v) => v.networkId === net.id && k.vips.has(v.addr));
        const addr = had?.addr ?? nextVip();
        if (addr) virtualIps.push({ networkId: net.id, addr });
      }
    const ports: PortConfig[] = [];
    for (const p of spec.endpoint?.ports ?? []) {
      const proto = p.protocol || 'tcp';
      if (p.publishMode === 'HOST') {
        ports.push({ ...p, protocol: proto });
        continue;
      }
      let published = 0;
      if (p.publishedPort) {
        const key = `${proto}/${p.publishedPort}`;
        if (k.ports.has(key) || !ingress.has(key)) {
          ingress.add(key);
          published = p.publishedPort;
        }
      } else {
        const had = s.endpoint?.ports?.find((q) => q.publishMode !== 'HOST' && (q.protocol || 'tcp') === proto && q.targetPort === p.targetPort && k.ports.has(portKey(q)));
        if (had) published = had.publishedPort;
        else
          for (let port = range.min; port <= range.max; port++) {
            if (ingress.has(`${proto}/${port}`)) continue;
            ingress.add(`${proto}/${port}`);
            published = port;
            break;
          }
      }
      ports.push({ ...p, protocol: proto, publishedPort: published });
    }
    const endpoint = { virtualIps, ports };
    if (JSON.stringify(endpoint) !== JSON.stringify({ virtualIps: s.endpoint?.virtualIps ?? [], ports: s.endpoint?.ports ?? [] }))
      w.updateService({ ...w.services.get(s.id)!, endpoint });
  }
}

/** Networks, VIPs, ingress ports and node subnets: before the scheduler needs them. */
export function allocateCluster(w: Working): void {
  ensureNetworks(w);
  allocateNodeSubnets(w);
  allocateEndpoints(w);
}

/** A task holds its addresses and host ports until it ends (orphans: until their node is back). */
function holdsAddresses(w: Working, t: Task): boolean {
  if (!t.nodeId) return false;
  if (!hasEnded(t)) return true;
  return t.status?.state === 'ORPHANED' && w.nodes.get(t.nodeId)?.status?.state !== 'NODE_READY' && w.nodes.has(t.nodeId);
}

function needsAllocation(t: Task): boolean {
  return !!t.nodeId && t.desiredState === 'RUNNING' && !hasEnded(t) && !isUnassigned(t) && t.networks.length === 0 && (t.endpointPorts?.length ?? 0) === 0;
}

/** Task addresses and host ports for tasks placed on a node that have none yet. */
export function* allocateTasks(w: Working, opts: AllocatorOptions = {}, candidates?: Iterable<Task>): Generator<void, number> {
  const todo: Task[] = [];
  for (const t of candidates ?? w.tasks.values()) {
    if (w.due()) yield;
    const cur = w.tasks.get(t.id);
    if (cur && needsAllocation(cur)) todo.push(cur);
  }
  if (!todo.length) return 0;
  const nodes = new Set(todo.map((t) => t.nodeId));
  const usedAddrs = new Map<string, Set<number>>();
  const usedPorts = new Map<string, Set<string>>();
  for (const n of nodes) {
    usedAddrs.set(n, new Set());
    // A port a process on the node listens on (its description) is never picked for a host-mode port.
    const d = w.nodes.get(n)?.description;
    usedPorts.set(n, new Set([...(d?.listeningTcp ?? []).map((p) => `tcp/${p}`), ...(d?.listeningUdp ?? []).map((p) => `udp/${p}`)]));
  }
  const cidrs = new Map<string, Cidr | undefined>();
  const cidrOf = (nodeId: string) => {
    if (!cidrs.has(nodeId)) {
      const s = w.nodes.get(nodeId)?.subnet;
      let c: Cidr | undefined;
      try {
        c = s ? parseCidr(s) : undefined;
      } catch {
        c = undefined;
      }
      cidrs.set(nodeId, c);
    }
    return cidrs.get(nodeId);
  };
  for (const t of w.tasks.values()) {
    if (w.due()) yield;
    const a = usedAddrs.get(t.nodeId);
    if (!a || !holdsAddresses(w, t)) continue;
    const c = cidrOf(t.nodeId);
    if (c) for (const att of t.networks) for (const addr of att.addresses) a.add(offsetIn(c, addr));
    const p = usedPorts.get(t.nodeId)!;
    for (const ep of t.endpointPorts ?? []) if (ep.publishedPort) p.add(portKey(ep));
    for (const sp of t.spec?.ports ?? []) if (sp.publishMode === 'HOST' && sp.publishedPort) p.add(portKey(sp));
  }
  const cursor = new Map<string, number>();
  for (const [n, a] of usedAddrs) {
    let max = 1;
    for (const off of a) if (off > max) max = off;
    cursor.set(n, max);
  }
  const nets = networkByName(w);
  const hostRange = opts.hostPorts ?? DEFAULT_HOST_PORTS;
  const hostSpan = hostRange.max - hostRange.min + 1;
  let done = 0;
  for (const t of todo.sort((a, b) => a.slot - b.slot || (a.id < b.id ? -1 : 1))) {
    if (w.due()) yield;
    const c = cidrOf(t.nodeId);
    const used = usedAddrs.get(t.nodeId)!;
    const networks: Task['networks'] = [];
    for (const name of t.spec?.networks?.length ? t.spec.networks : [DEFAULT_NETWORK]) {
      const net = nets.get(name);
      if (!net || !c) continue;
      const size = cidrSize(c);
      let off = cursor.get(t.nodeId)!;
      for (let tries = 0; tries < size; tries++) {
        off++;
        if (off >= size - 1) off = 2;
        if (!used.has(off)) break;
      }
      if (used.has(off)) break;
      used.add(off);
      cursor.set(t.nodeId, off);
      networks.push({ networkId: net.id, networkName: name, addresses: [intToIp(c.base + off) + '/' + c.prefix], vni: net.vni });
    }
    const ports = usedPorts.get(t.nodeId)!;
    const endpointPorts: PortConfig[] = [];
    for (const p of t.spec?.ports ?? []) {
      if (p.publishMode !== 'HOST') continue;
      const proto = p.protocol || 'tcp';
      let published = p.publishedPort;
      if (!published) {
        // A stable pseudo-random start (from the task id) spreads picks across the range.
        let h = 0;
        for (let i = 0; i < t.id.length; i++) h = (h * 31 + t.id.charCodeAt(i)) >>> 0;
        for (let i = 0; i < hostSpan; i++) {
          const port = hostRange.min + ((h + i) % hostSpan);
          if (!ports.has(`${proto}/${port}`)) {
            published = port;
            break;
          }
        }
      }
      if (published) ports.add(`${proto}/${published}`);
      endpointPorts.push({ ...p, protocol: proto, publishedPort: published });
    }
    if (!networks.length && !endpointPorts.length) continue;
    if (w.isOwned(t)) {
      t.networks = networks;
      t.endpointPorts = endpointPorts;
    } else w.updateTask({ ...t, networks, endpointPorts });
    done++;
  }
  return done;
}

