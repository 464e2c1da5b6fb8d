// Per-task wiring: a named network namespace, a veth pair whose host side
// joins the bridge, the task's addresses and a default route via the bridge.
//
// Task addresses are /32 with an on-link route to the gateway (as Calico
// does) rather than /24 on the bridge's LAN: every packet a task sends, even
// to a neighbour on the same bridge, is routed by the host, so nftables sees
// it — VIP hairpin, network isolation and conntrack all work without
// br_netfilter.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import type { Task } from '../../proto/mod';
import type { Logger } from '../../common/logger';
import { nullLogger } from '../../common/logger';
import type { NetworkAttacher } from '../executor';
import { addrOf, nth, parseCidr } from '../../common/cidr';
import { BRIDGE, OVERLAY_MTU, type HostNetwork } from './host';
import type { LocalTasks } from './local-tasks';
import { type Sh, hostSh } from './sh';
import { Coalescer, ipBatch } from './batch';
import { findHelper } from '../runtime/native';
import { taskHostname } from '../runtime/hostname';

/** Prefix of every task network namespace (under /run/netns). */
export const TASK_NETNS_PREFIX = 'convoy-t-';
/** Prefix of every host-side veth. */
export const VETH_PREFIX = 'cvy';

/** The whole task id (random, 25 hex): a prefix could collide among thousands of tasks. */
export function taskNetnsName(taskId: string): string {
  return TASK_NETNS_PREFIX + taskId.replace(/[^A-Za-z0-9]/g, '').slice(0, 64).toLowerCase();
}

/** A task's MAC from its first IPv4 address: 02:42 (locally administered, Docker's prefix) and the four bytes. */
export function taskMac(addr: string): string {
  return ['02', '42', ...addr.split('.').map((b) => Number(b).toString(16).padStart(2, '0'))].join(':');
}

/** Host-side veth: cvy + 11 hex of sha1(task id) (14 chars, within IFNAMSIZ). */
export function vethName(taskId: string): string {
  return VETH_PREFIX + createHash('sha1').update(taskId).digest('hex').slice(0, 11);
}

export interface AttacherOptions {
  host: HostNetwork;
  local: LocalTasks;
  sh?: Sh;
  logger?: Logger;
  /** The native helper (convoy-init) that configures the inside of task namespaces; default: found next to the runtime. */
  helper?: string;
}

interface NetcfgJob {
  netns: string;
  ifname: string;
  mtu: number;
  gateway: string;
  addresses: string[];
}

/** `convoy-init netcfg`: a line per namespace in, "ok" or "error <message>" per line out. */
function netcfgBatch(sh: Sh, helper: () => string): Coalescer<NetcfgJob, void> {
  return new Coalescer<NetcfgJob, void>(async (jobs) => {
    const input = jobs.map((j) => [j.netns, j.ifname, j.mtu, j.gateway, ...j.addresses].join(' ')).join('\n') + '\n';
    const out = (await sh.run(helper(), ['netcfg'], input)).split('\n');
    return jobs.map((j, i) => (out[i] === 'ok' ? undefined : new Error(`configuring ${j.netns}: ${out[i]?.replace(/^error /, '') || 'no answer from the helper'}`)));
  });
}

export class Attacher implements NetworkAttacher {
  private readonly sh: Sh;
  private readonly log: Logger;

  private readonly ip: Coalescer<string[], void>;
  private readonly netcfg: Coalescer<NetcfgJob, void>;
  private helper?: string;

  constructor(private readonly opts: AttacherOptions) {
    this.sh = opts.sh ?? hostSh;
    this.log = opts.logger ?? nullLogger;
    this.ip = ipBatch(this.sh);
    this.netcfg = netcfgBatch(this.sh, () => (this.helper ??= opts.helper ?? findHelper()));
  }

  async attach(task: Task): Promise<{ netnsPath: string; resolvConf?: string; hosts?: string }> {
    const ns = taskNetnsName(task.id);
    const veth = vethName(task.id);
    const cidrs = task.networks.flatMap((n) => n.addresses).filter(Boolean);
    // Leftovers of an earlier attempt. Without the namespace there is no veth either (deleting a
    // namespace deletes its end of the pair, and with it the pair), so the common case spawns nothing.
    if (fs.existsSync(`/run/netns/${ns}`)) await this.remove(ns, veth);
    if (!cidrs.length) {
      // No address allocated: an isolated namespace with loopback only.
      await this.sh.run('ip', ['netns', 'add', ns]);
      await this.sh.run('nsenter', [`--net=/run/netns/${ns}`, '--', 'ip', 'link', 'set', 'lo', 'up']);
      return { netnsPath: `/run/netns/${ns}` };
    }
    const subnet = parseCidr(cidrs[0]);
    await this.opts.host.ensure(cidrs[0]);
    const gw = nth(subnet, 1);
    const addrs = cidrs.map(addrOf);
    // The host side: the namespace and the veth pair, its host end on the bridge (one `ip` for a burst).
    // The task's MAC is set here (from its address, as Docker does) so that the bridge can hold its veth to it.
    const mac = taskMac(addrs[0]);
    const create = [`netns add ${ns}`, `link add ${veth} mtu ${OVERLAY_MTU} type veth peer name eth0 address ${mac} netns ${ns}`, `link set ${veth} master ${BRIDGE} up`];
    await this.ip.submit(create).catch(async () => {
      // A stray veth or namespace of a half-removed attempt: remove both and try once more.
      await this.remove(ns, veth);
      await this.ip.submit(create);
    });
    // The inside: addresses and routes, by the native helper over rtnetlink (one process for a burst).
    // Not `ip -n`: it also unshares the mount namespace and remounts /sys, which copies the host's whole
    // mount table and, with a hundred containers starting at once, costs seconds.
    await this.netcfg.submit({ netns: `/run/netns/${ns}`, ifname: 'eth0', mtu: OVERLAY_MTU, gateway: gw, addresses: addrs }).catch(async (e: unknown) => {
      await this.remove(ns, veth);
      throw e;
    });
    this.opts.local.set({
      taskId: task.id,
      serviceId: task.serviceId,
      serviceName: task.serviceName,
      addresses: addrs,
      networks: task.networks.map((n) => n.networkId),
      hostPorts: (task.endpointPorts ?? []).filter((p) => p.publishMode === 'HOST'),
      netns: ns,
      veth,
      mac,
      hostAccess: task.spec?.container?.hostAccess ?? false,
      ...(task.spec?.container?.dnsConfig?.nameservers?.length ? { dnsServers: [...task.spec.container.dnsConfig.nameservers] } : {}),
    });
    // Its veth's anti-spoofing entry and the firewall's view of it, before anything runs in it.
    await this.opts.local.settled();
    this.log.info('task attached', { 'task.id': task.id, 'task.addr': addrs.join(','), netns: ns });
    // The same name the runtime gives the container's UTS namespace: `hostname -i` finds its address here.
    const hostname = taskHostname(task);
    return {
      netnsPath: `/run/netns/${ns}`,
      resolvConf: `nameserver ${gw}\noptions ndots:0\n`,
      hosts: `127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n${addrs[0]}\t${hostname}\n`,
    };
  }

  async detach(taskId: string): Promise<void> {
    this.opts.local.delete(taskId);
    await this.remove(taskNetnsName(taskId), vethName(taskId));
    this.log.info('task detached', { 'task.id': taskId });
  }

  /** Deleting the namespace deletes the pair with it; the link is removed too in case it never moved in. */
  private async remove(ns: string, veth: string): Promise<void> {
    await this.ip.submit([`netns del ${ns}`, `link del ${veth}`]).catch(() => undefined);
  }
}

/** Every task namespace and veth left in the namespace sh runs in (after a crash). */
export async function removeTaskLeftovers(sh: Sh = hostSh, keep: (ns: string) => boolean = () => false): Promise<void> {
  const list = await sh.run('ip', ['-j', 'netns', 'list']).catch(() => '');
  for (const n of (list.trim() ? (JSON.parse(list) as { name: string }[]) : [])) if (n.name.startsWith(TASK_NETNS_PREFIX) && !keep(n.name)) await sh.run('ip', ['netns', 'del', n.name]).catch(() => undefined);
  const links = JSON.parse(await sh.run('ip', ['-j', 'link', 'show'])) as { ifname: string }[];
  for (const l of links) if (l.ifname.startsWith(VETH_PREFIX)) await sh.run('ip', ['link', 'del', l.ifname]).catch(() => undefined);
}
