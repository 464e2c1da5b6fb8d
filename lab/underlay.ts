// "Hosts" made of network namespaces joined by a bridge on this machine:
// what the lab, the integration tests and the benchmarks stand on. Each host
// namespace gets one veth on the bridge with its own address, lo, and a
// default route via the bridge address.
import { type Sh, hostSh } from '../agent/network/sh';
import { ensureForwardAccept, removeForwardAccept } from '../agent/network/forward';

/**
 * iptables chain accepting the underlay bridge's traffic: on a machine with
 * Docker (FORWARD policy DROP, bridge-nf-call-iptables=1) frames bridged
 * between the host namespaces go through iptables FORWARD and would be dropped.
 */
export function underlayForwardChain(bridge: string): string {
  return `CVY-${bridge}`.slice(0, 28);
}

export interface UnderlayHost {
  netns: string; // "convoy-lab-h1"
  addr: string; // "10.41.0.11"
}

export interface UnderlaySpec {
  bridge: string; // "convoy-lab0"
  /** Bridge address with prefix ("10.41.0.1/24"); the hosts use the same prefix length. */
  bridgeCidr: string;
  hosts: UnderlayHost[];
}

/** Host-side veth of a host namespace: the bridge name's stem + host index ("convoy-lab0" + h1 → "cvl-lab0-1"). */
export function underlayVeth(spec: UnderlaySpec, i: number): string {
  return `${spec.bridge.replace(/^convoy-/, 'cvl-')}-${i}`.slice(0, 15);
}

export async function createUnderlay(spec: UnderlaySpec, sh: Sh = hostSh): Promise<void> {
  const prefix = spec.bridgeCidr.split('/')[1];
  const cmds = [`link add ${spec.bridge} type bridge`, `addr add ${spec.bridgeCidr} dev ${spec.bridge}`, `link set ${spec.bridge} up`];
  spec.hosts.forEach((h, i) => {
    const v = underlayVeth(spec, i + 1);
    cmds.push(
      `netns add ${h.netns}`,
      `link add ${v} type veth peer name eth0 netns ${h.netns}`,
      `link set ${v} master ${spec.bridge} up`,
    );
  });
  await sh.run('ip', ['-batch', '-'], cmds.join('\n') + '\n');
  await ensureForwardAccept(sh, spec.bridgeCidr, undefined, underlayForwardChain(spec.bridge), [
    ['-i', spec.bridge],
    ['-o', spec.bridge],
  ]);
  const gw = spec.bridgeCidr.split('/')[0];
  for (const h of spec.hosts) {
    await sh.run('ip', ['-n', h.netns, '-batch', '-'], `link set lo up\naddr add ${h.addr}/${prefix} dev eth0\nlink set eth0 up\nroute add default via ${gw} dev eth0\n`);
  }
}

/** Removes the bridge, its veths and every namespace whose name starts with nsPrefix; idempotent. */
export async function removeUnderlay(bridge: string, nsPrefix: string, sh: Sh = hostSh): Promise<void> {
  const list = await sh.run('ip', ['-j', 'netns', 'list']).catch(() => '');
  for (const n of list.trim() ? (JSON.parse(list) as { name: string }[]) : []) if (n.name.startsWith(nsPrefix)) await sh.run('ip', ['netns', 'del', n.name]).catch(() => undefined);
  await removeForwardAccept(sh, underlayForwardChain(bridge));
  const stem = bridge.replace(/^convoy-/, 'cvl-');
  const links = JSON.parse(await sh.run('ip', ['-j', 'link', 'show'])) as { ifname: string }[];
  for (const l of links) if (l.ifname === bridge || l.ifname.startsWith(`${stem}-`)) await sh.run('ip', ['link', 'del', l.ifname]).catch(() => undefined);
}
