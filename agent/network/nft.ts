// The nftables ruleset of one host, rendered from a NetworkState as text for
// one `nft -f -` transaction. Modelled on kube-proxy's nftables mode: the
// per-packet path is a fixed number of map lookups, whatever the number of
// services.
//
//   nat prerouting/output ─▶ services:
//       ip daddr vmap @vips                     VIP → goto svc_<id>
//       fib daddr type local, l4proto . dport vmap @node_ports
//                                               published port → goto ing_… / hp_…
//   svc_<id>:  numgen random mod N vmap { 0 : goto ep_…, … }   (READY endpoints only)
//   ing_<id>_<proto>_<port>: mark for masquerade, numgen … → ep_<ip>_<port>
//   hp_<task>_<proto>_<port>: dnat to the local task (host mode)
//   ep_<ip>[_<port>]: mark for masquerade if the task reaches itself (hairpin), dnat
//   nat postrouting: marked → masquerade; cluster → outside → masquerade
//   filter input: VXLAN only from node addresses; a task (cluster source, not
//       lo) reaches this host only for the DNS on its bridge (or --host-access)
//   filter forward: established → accept; undnatted VIP → reject;
//       task → a node's address → reject unless a published port or --host-access;
//       task → task only when both are in one network's member set;
//       a task of an internal network ↔ outside the cluster → reject
//
// VIPs forward every port (as Docker Swarm's VIPs do): the DNAT keeps the
// destination port. Ingress and host ports DNAT to the task's target port.
import type { NetworkState, PortConfig } from '../../proto/mod';
import { BRIDGE, NFT_TABLE, VXLAN, VXLAN_PORT } from './host';
import { VETH_PREFIX } from './attacher';
import type { LocalTask } from './local-tasks';

/** Packet mark asking postrouting to masquerade (kube-proxy uses the same bit). */
export const MASQ_MARK = 0x4000;

export interface RenderInput {
  state: NetworkState;
  local: LocalTask[];
  /** Cluster CIDR when the state carries none. */
  defaultClusterCidr: string;
  defaultVipCidr: string;
  /** This host's underlay address (a node address even before NetworkState lists it). */
  underlayAddr?: string;
  /** The bridge address: the one address of this host a task reaches (DNS). */
  gateway?: string;
}

/** Set types other than ipv4_addr. */
const SET_TYPES: Record<string, string> = { published: 'inet_proto . inet_service' };

/**
 * The host's bridge-family table (`bridge convoy`): layer 2 between tasks.
 * Everything a task sends is routed through the bridge address, so frames
 * between two task ports are never legitimate: dropped (ARP, IPv6 link-local,
 * raw frames to a neighbour of another network). From a task's veth only
 * frames from its own MAC pass, and of those only IPv4 from its own address
 * and ARP from its own address and MAC to the gateway (anti-spoofing; no
 * IPv6: Convoy does not route it). Small (one element per local task), so it
 * is rewritten whole when it changes.
 */
export function renderBridge(gateway: string | undefined, local: LocalTask[]): string {
  const elems = local.flatMap((t) => t.addresses.map((a) => `"${t.veth}" . ${a}`));
  const macs = local.map((t) => `"${t.veth}" . ${t.mac}`);
  return `table bridge ${NFT_TABLE} {}
delete table bridge ${NFT_TABLE}
table bridge ${NFT_TABLE} {
  set veth_ip {
    type ifname . ipv4_addr
  }
  set veth_mac {
    type ifname . ether_addr
  }
  chain prerouting {
    type filter hook prerouting priority filter; policy accept;
    iifname "${VETH_PREFIX}*" jump from_task
  }
  chain from_task {
    iifname . ether saddr != @veth_mac drop
    ether type ip iifname . ip saddr @veth_ip return
${gateway ? `    ether type arp iifname . arp saddr ether @veth_mac iifname . arp saddr ip @veth_ip arp daddr ip ${gateway} return
` : ''}    drop
  }
  chain forward {
    type filter hook forward priority filter; policy accept;
    iifname "${VETH_PREFIX}*" oifname "${VETH_PREFIX}*" drop
  }
}
${elems.length ? `add element bridge ${NFT_TABLE} veth_ip { ${elems.join(', ')} }
` : ''}${macs.length ? `add element bridge ${NFT_TABLE} veth_mac { ${macs.join(', ')} }
` : ''}`;
}

export function safeId(s: string): string {
  return s.replace(/[^A-Za-z0-9]/g, '').slice(0, 16) || 'x';
}

function proto(p: PortConfig): 'tcp' | 'udp' {
  return p.protocol === 'udp' ? 'udp' : 'tcp';
}

/** Counts of what a ruleset holds, for logs and benchmarks. */
export interface RenderStats {
  services: number;
  vips: number;
  nodePorts: number;
  endpoints: number;
}

/** A host's table as data, so that one service's change becomes a small transaction (diffText). */
export interface Ruleset {
  /** Declarations and base chains; a change here rewrites the table. */
  head: string;
  /** Map name → key → verdict ("goto svc_x"). */
  maps: Map<string, Map<string, string>>;
  /** Set name → elements. */
  sets: Map<string, Set<string>>;
  /** Per-service and per-endpoint chains: name → rules, one per line. */
  chains: Map<string, string>;
}

/** The whole table in one transaction: created if missing, deleted, written again. */
export function fullText(r: Ruleset): string {
  const elems = (name: string, items: string[]) => (items.length ? `add element ip ${NFT_TABLE} ${name} { ${items.join(', ')} }\n` : '');
  let out = `table ip ${NFT_TABLE} {}\ndelete table ip ${NFT_TABLE}\ntable ip ${NFT_TABLE} {\n${r.head}`;
  for (const [name, body] of r.chains) out += `  chain ${name} {\n${body.split('\n').map((l) => `    ${l}`).join('\n')}\n  }\n`;
  out += '}\n';
  for (const [name, m] of r.maps) out += elems(name, [...m].map(([k, v]) => `${k} : ${v}`));
  for (const [name, set] of r.sets) out += elems(name, [...set]);
  return out;
}

/**
 * The transaction that turns prev into next when their heads are equal: new
 * chains created, changed ones flushed and refilled, elements deleted and
 * added, chains no longer referenced deleted last. '' when nothing changed.
 * Its size follows what changed, not the number of services.
 */
export function diffText(prev: Ruleset, next: Ruleset): string {
  const t = `ip ${NFT_TABLE}`;
  const out: string[] = [];
  for (const [name, body] of next.chains) {
    const old = prev.chains.get(name);
    if (old === body) continue;
    out.push(old === undefined ? `add chain ${t} ${name}` : `flush chain ${t} ${name}`);
    for (const rule of body.split('\n')) out.push(`add rule ${t} ${name} ${rule}`);
  }
  for (const [name, m] of next.maps) {
    const old = prev.maps.get(name) ?? new Map<string, string>();
    const del = [...old].filter(([k, v]) => m.get(k) !== v).map(([k]) => k);
    const add = [...m].filter(([k, v]) => old.get(k) !== v).map(([k, v]) => `${k} : ${v}`);
    if (del.length) out.push(`delete element ${t} ${name} { ${del.join(', ')} }`);
    if (add.length) out.push(`add element ${t} ${name} { ${add.join(', ')} }`);
  }
  for (const [name, set] of next.sets) {
    const old = prev.sets.get(name) ?? new Set<string>();
    const del = [...old].filter((x) => !set.has(x));
    const add = [...set].filter((x) => !old.has(x));
    if (del.length) out.push(`delete element ${t} ${name} { ${del.join(', ')} }`);
    if (add.length) out.push(`add element ${t} ${name} { ${add.join(', ')} }`);
  }
  // Referencing chains (svc_, ing_, hp_) before the endpoint chains they jump to.
  const gone = [...prev.chains.keys()].filter((n) => !next.chains.has(n));
  for (const name of [...gone.filter((n) => !n.startsWith('ep_')), ...gone.filter((n) => n.startsWith('ep_'))]) out.push(`delete chain ${t} ${name}`);
  return out.length ? out.join('\n') + '\n' : '';
}

export function renderRuleset(inp: RenderInput): { ruleset: Ruleset; text: string; stats: RenderStats } {
  const { state, local } = inp;
  const cluster = state.clusterCidr || inp.defaultClusterCidr;
  const vipCidr = state.vipCidr || inp.defaultVipCidr;
  const chains = new Map<string, string>(); // name → rules, one per line
  const vipElems = new Map<string, string>();
  const nodePortElems = new Map<string, string>();
  const allTasks = new Set<string>();
  const members = new Map<string, Set<string>>();
  const member = (net: string, addrs: string[]) => {
    let m = members.get(net);
    if (!m) members.set(net, (m = new Set()));
    for (const a of addrs) {
      m.add(a);
      allTasks.add(a);
    }
  };
  for (const n of state.networks) members.set(n.id, new Set());

  const ep = (ip: string, port?: { proto: string; port: number }): string => {
    const name = `ep_${ip.replace(/\./g, '_')}${port ? `_${port.proto}_${port.port}` : ''}`;
    if (!chains.has(name)) chains.set(name, `ip saddr ${ip} meta mark set meta mark | ${MASQ_MARK}\n${port ? `meta l4proto ${port.proto} dnat to ${ip}:${port.port}` : `dnat to ${ip}`}`);
    return name;
  };
  const balance = (targets: string[]): string =>
    targets.length === 1 ? `goto ${targets[0]}` : `numgen random mod ${targets.length} vmap { ${targets.map((t, i) => `${i} : goto ${t}`).join(', ')} }`;

  const published = new Set<string>();
  let nEndpoints = 0;
  for (const s of state.services) {
    for (const p of s.ports) if (p.publishedPort) published.add(`${proto(p)} . ${p.publishedPort}`);
    const sid = safeId(s.serviceId);
    for (const t of s.tasks) for (const net of s.networks) member(net, t.addresses);
    const ready = s.tasks.filter((t) => t.ready && t.addresses.length).map((t) => t.addresses[0]);
    nEndpoints += ready.length;
    if (!ready.length) continue;
    if (s.mode !== 'DNSRR' && s.virtualIps.length) {
      chains.set(`svc_${sid}`, balance(ready.map((ip) => ep(ip))));
      for (const v of s.virtualIps) if (v.addr) vipElems.set(v.addr, `goto svc_${sid}`);
    }
    for (const p of s.ports) {
      if (p.publishMode === 'HOST' || !p.publishedPort || !p.targetPort) continue;
      const key = `${proto(p)} . ${p.publishedPort}`;
      if (nodePortElems.has(key)) continue;
      const name = `ing_${sid}_${proto(p)}_${p.publishedPort}`;
      chains.set(name, `meta mark set meta mark | ${MASQ_MARK}\n${balance(ready.map((ip) => ep(ip, { proto: proto(p), port: p.targetPort })))}`);
      nodePortElems.set(key, `goto ${name}`);
    }
  }
  const hostAccess = new Set<string>();
  for (const t of local) {
    for (const net of t.networks) member(net, t.addresses);
    if (t.hostAccess) for (const a of t.addresses) hostAccess.add(a);
    for (const p of t.hostPorts) if (p.publishedPort) published.add(`${proto(p)} . ${p.publishedPort}`);
    if (!t.addresses.length) continue;
    for (const p of t.hostPorts) {
      if (!p.publishedPort || !p.targetPort) continue;
      const key = `${proto(p)} . ${p.publishedPort}`;
      if (nodePortElems.has(key)) continue;
      const name = `hp_${safeId(t.taskId)}_${proto(p)}_${p.publishedPort}`;
      chains.set(name, `meta l4proto ${proto(p)} dnat to ${t.addresses[0]}:${p.targetPort}`);
      nodePortElems.set(key, `goto ${name}`);
    }
  }

  // Addresses on an internal network: no traffic between them and anything outside the cluster.
  const internal = new Set<string>();
  for (const n of state.networks) if (n.spec?.internal) for (const a of members.get(n.id) ?? []) internal.add(a);
  const sets = new Map<string, Set<string>>([
    ['tasks', allTasks],
    ['internal', internal],
    // Every address of every node: the underlay one and the others each reports (interfaces, Docker's bridges).
    ['nodes', new Set([...state.nodes.flatMap((n) => [n.addr, ...(n.addresses ?? [])]), ...(inp.underlayAddr ? [inp.underlayAddr] : [])].filter(Boolean))],
    ['host_access', hostAccess],
    ['published', published],
  ]);
  const isolate: string[] = [];
  let i = 0;
  for (const [, addrs] of [...members].sort(([a], [b]) => (a < b ? -1 : 1))) {
    sets.set(`net_${i}`, addrs);
    isolate.push(`    ip saddr @net_${i} ip daddr @net_${i} accept`);
    i++;
  }

  // Everything but set/map elements and the per-service chains: when it changes, the table is rewritten whole.
  const head = `  map vips {
    type ipv4_addr : verdict
  }
  map node_ports {
    type inet_proto . inet_service : verdict
  }
${[...sets.keys()].map((n) => `  set ${n} {\n    type ${SET_TYPES[n] ?? 'ipv4_addr'}\n  }`).join('\n')}
  chain services {
    ip daddr vmap @vips
    fib daddr type local meta l4proto . th dport vmap @node_ports
  }
  chain prerouting {
    type nat hook prerouting priority dstnat; policy accept;
    jump services
  }
  chain output {
    type nat hook output priority -100; policy accept;
    jump services
  }
  chain postrouting {
    type nat hook postrouting priority srcnat; policy accept;
    meta mark & ${MASQ_MARK} == ${MASQ_MARK} masquerade
    ip saddr ${cluster} ip daddr != ${cluster} ip daddr != ${vipCidr} masquerade
  }
  chain input {
    type filter hook input priority filter; policy accept;
    udp dport ${VXLAN_PORT} ip saddr != @nodes drop
    iifname != "lo" ip saddr ${cluster} jump task_input
  }
  chain task_input {
    ct state established,related accept
    ip saddr @host_access accept
${inp.gateway ? `    iifname "${BRIDGE}" ip daddr ${inp.gateway} meta l4proto { tcp, udp } th dport 53 accept
` : ''}    reject with icmp type admin-prohibited
  }
  chain task_to_node {
    ip saddr @host_access return
    meta l4proto . th dport @published return
    reject with icmp type admin-prohibited
  }
  chain forward {
    type filter hook forward priority filter; policy accept;
    ct state established,related accept
    iifname { "${BRIDGE}", "${VXLAN}" } ip saddr ${cluster} ip daddr @nodes jump task_to_node
    ip daddr ${vipCidr} reject
    ip saddr @tasks ip daddr @tasks jump isolate
    ip saddr @internal ip daddr != ${cluster} reject with icmp type admin-prohibited
    ip daddr @internal ip saddr != ${cluster} reject with icmp type admin-prohibited
  }
  chain filter_output {
    type filter hook output priority filter; policy accept;
    ip daddr ${vipCidr} reject
  }
  chain isolate {
${isolate.join('\n')}
    reject with icmp type admin-prohibited
  }
`;
  const ruleset: Ruleset = { head, maps: new Map([['vips', vipElems], ['node_ports', nodePortElems]]), sets, chains };
  return { ruleset, text: fullText(ruleset), stats: { services: state.services.length, vips: vipElems.size, nodePorts: nodePortElems.size, endpoints: nEndpoints } };
}
