// Host setup: the bridge every task's veth joins, the VXLAN device that
// reaches the other hosts' task subnets, and the kernel switches both need.
//
//   convoy0    bridge, the node subnet's .1 (10.42.3.1/24); tasks' gateway
//   convoy-vx  VXLAN (VNI OVERLAY_VNI, UDP 4789) over the underlay address,
//              holding the node subnet's .0 as a /32 (its VTEP address)
//
// Peers are programmed flannel-style, three entries per peer node and no
// flooding or learning: a route `10.42.4.0/24 via 10.42.4.0 dev convoy-vx
// onlink`, a permanent neighbour `10.42.4.0 → vtepMac(10.42.4.0/24)`, and an
// FDB entry `vtepMac → underlay address`. The VTEP MAC is derived from the
// subnet, so a peer's MAC needs no extra field in NetworkState.
import type { Logger } from '../../common/logger';
import { nullLogger } from '../../common/logger';
import { nth, parseCidr, formatCidr } from '../../common/cidr';
import { type Sh, hostSh } from './sh';
import { removeForwardAccept } from './forward';
import { VXLAN_PORT } from '../../proto/defaults';

export const BRIDGE = 'convoy0';
export const VXLAN = 'convoy-vx';
/** One overlay for the whole cluster (one address space); networks are enforced by nftables, not VNIs. */
export const OVERLAY_VNI = 4242;
/** IANA VXLAN port. */
export { VXLAN_PORT } from '../../proto/defaults';
/** 1500 minus the 50 bytes of VXLAN over IPv4: task interfaces use it so cross-host packets never fragment. */
export const OVERLAY_MTU = 1450;
/** Name of the nftables table (family ip) that programmer.ts owns. */
export const NFT_TABLE = 'convoy';

/** VTEP MAC of the host owning subnet: 02:c0 + the subnet's network address (locally administered). */
export function vtepMac(subnet: string): string {
  const b = parseCidr(subnet).base;
  const bytes = [0x02, 0xc0, (b >>> 24) & 255, (b >>> 16) & 255, (b >>> 8) & 255, b & 255];
  return bytes.map((x) => x.toString(16).padStart(2, '0')).join(':');
}

export interface Peer {
  subnet: string; // "10.42.4.0/24"
  addr: string; // underlay address
}

export interface HostNetworkOptions {
  /** This host's underlay (VXLAN source) address. */
  underlayAddr: string;
  sh?: Sh;
  logger?: Logger;
}

export class HostNetwork {
  private readonly sh: Sh;
  private readonly log: Logger;
  private subnet: string | undefined;
  private peers = new Map<string, string>(); // subnet → underlay addr, as programmed
  private peersRead = false;

  constructor(private readonly opts: HostNetworkOptions) {
    this.sh = opts.sh ?? hostSh;
    this.log = opts.logger ?? nullLogger;
  }

  /** The node subnet the bridge serves, once ensure() ran. */
  get nodeSubnet(): string | undefined {
    return this.subnet;
  }

  /** Bridge address (the tasks' gateway and DNS server). */
  get gateway(): string | undefined {
    return this.subnet ? nth(parseCidr(this.subnet), 1) : undefined;
  }

  /** Creates (or fixes) the bridge and VXLAN device for subnet; cheap when already done. */
  async ensure(subnet: string): Promise<void> {
    subnet = formatCidr(parseCidr(subnet));
    if (this.subnet === subnet) return;
    // Tasks starting together share one run.
    if (this.ensuring?.subnet !== subnet) {
      const run = this.doEnsure(subnet);
      this.ensuring = { subnet, run };
      void run
        .catch(() => undefined)
        .finally(() => {
          if (this.ensuring?.run === run) this.ensuring = undefined;
        });
    }
    return this.ensuring.run;
  }

  private ensuring?: { subnet: string; run: Promise<void> };

  private async doEnsure(subnet: string): Promise<void> {
    const c = parseCidr(subnet);
    const links = JSON.parse(await this.sh.run('ip', ['-j', '-d', 'addr', 'show'])) as {
      ifname: string;
      addr_info?: { family: string; local: string; prefixlen: number }[];
    }[];
    const byName = new Map(links.map((l) => [l.ifname, l]));
    const cmds: string[] = [];
    const gw = `${nth(c, 1)}/${c.prefix}`;
    const vtep = `${nth(c, 0)}/32`;
    const br = byName.get(BRIDGE);
    if (!br) cmds.push(`link add ${BRIDGE} type bridge`);
    for (const a of br?.addr_info ?? []) if (a.family === 'inet' && `${a.local}/${a.prefixlen}` !== gw) cmds.push(`addr del ${a.local}/${a.prefixlen} dev ${BRIDGE}`);
    cmds.push(`addr replace ${gw} dev ${BRIDGE}`, `link set ${BRIDGE} up`);
    const vx = byName.get(VXLAN);
    if (!vx) cmds.push(`link add ${VXLAN} type vxlan id ${OVERLAY_VNI} local ${this.opts.underlayAddr} dstport ${VXLAN_PORT} nolearning`);
    for (const a of vx?.addr_info ?? []) if (a.family === 'inet' && `${a.local}/${a.prefixlen}` !== vtep) cmds.push(`addr del ${a.local}/${a.prefixlen} dev ${VXLAN}`);
    cmds.push(`link set ${VXLAN} address ${vtepMac(subnet)} mtu ${OVERLAY_MTU}`, `addr replace ${vtep} dev ${VXLAN}`, `link set ${VXLAN} up`);
    await this.sh.run('ip', ['-batch', '-'], cmds.join('\n') + '\n');
    // Forwarding on; no ICMP redirects: tasks have /32 addresses and everything they send
    // is routed through the bridge address, including traffic to a neighbour on the same bridge.
    await this.sh.run('sysctl', ['-q', '-w', 'net.ipv4.ip_forward=1', 'net.ipv4.conf.all.send_redirects=0', `net.ipv4.conf.${BRIDGE}.send_redirects=0`]);
    // Everything a task sends is routed, never bridged, so br_netfilter has nothing to add; with it on,
    // a task reaching itself through its VIP (hairpin) gets no answer. The switch is per network
    // namespace and exists only when br_netfilter is loaded.
    await this.sh.run('sysctl', ['-q', '-w', 'net.bridge.bridge-nf-call-iptables=0']).catch(() => undefined);
    this.subnet = subnet;
    this.log.info('host network ready', { 'node.subnet': subnet, 'underlay.addr': this.opts.underlayAddr });
  }

  /** Converges routes/neighbours/FDB entries to exactly these peers (this host's own subnet is skipped). */
  async syncPeers(peers: Peer[]): Promise<void> {
    if (!this.subnet) return;
    const want = new Map<string, string>();
    for (const p of peers) {
      if (!p.subnet || !p.addr) continue;
      const s = formatCidr(parseCidr(p.subnet));
      if (s !== this.subnet) want.set(s, p.addr);
    }
    if (!this.peersRead) {
      // After an agent restart: whatever routes convoy-vx carries are what the last run programmed.
      const routes = JSON.parse(await this.sh.run('ip', ['-j', 'route', 'show', 'dev', VXLAN])) as { dst: string; gateway?: string }[];
      for (const r of routes) if (r.gateway && r.dst.includes('/')) this.peers.set(r.dst, '?');
      this.peersRead = true;
    }
    const ipCmds: string[] = [];
    const fdbCmds: string[] = [];
    for (const [s, addr] of this.peers) {
      if (want.has(s)) continue;
      const c = parseCidr(s);
      ipCmds.push(`route del ${s} dev ${VXLAN}`, `neigh del ${nth(c, 0)} dev ${VXLAN}`);
      fdbCmds.push(`fdb del ${vtepMac(s)} dev ${VXLAN} self`);
      this.log.info('overlay peer removed', { 'peer.subnet': s, 'peer.addr': addr });
    }
    for (const [s, addr] of want) {
      if (this.peers.get(s) === addr) continue;
      const c = parseCidr(s);
      ipCmds.push(`neigh replace ${nth(c, 0)} lladdr ${vtepMac(s)} dev ${VXLAN} nud permanent`, `route replace ${s} via ${nth(c, 0)} dev ${VXLAN} onlink`);
      fdbCmds.push(`fdb replace ${vtepMac(s)} dev ${VXLAN} dst ${addr} self permanent`);
      this.log.info('overlay peer added', { 'peer.subnet': s, 'peer.addr': addr });
    }
    // -force: a delete of something already gone must not stop the rest.
    if (fdbCmds.length) await this.sh.run('bridge', ['-force', '-batch', '-'], fdbCmds.join('\n') + '\n').catch((e) => this.log.debug('fdb batch', { err: String(e) }));
    if (ipCmds.length) await this.sh.run('ip', ['-force', '-batch', '-'], ipCmds.join('\n') + '\n').catch((e) => this.log.debug('route batch', { err: String(e) }));
    this.peers = want;
  }

  /** Removes the bridge, the VXLAN device and the nftables table. */
  async cleanup(): Promise<void> {
    await removeHostNetworking(this.sh);
    this.subnet = undefined;
    this.peers.clear();
  }
}

/** Everything host setup and the programmer create, in the namespace sh runs in; idempotent. */
export async function removeHostNetworking(sh: Sh = hostSh): Promise<void> {
  await sh.run('ip', ['link', 'del', VXLAN]).catch(() => undefined);
  await sh.run('ip', ['link', 'del', BRIDGE]).catch(() => undefined);
  await sh.run('nft', ['delete', 'table', 'ip', NFT_TABLE]).catch(() => undefined);
  await sh.run('nft', ['delete', 'table', 'bridge', NFT_TABLE]).catch(() => undefined);
  await removeForwardAccept(sh);
}
