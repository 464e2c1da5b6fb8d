// Hosts that also run Docker: Docker sets the iptables FORWARD policy to DROP
// (and turns on bridge-nf-call-iptables), so every routed task packet would
// be dropped by iptables after Convoy's own nftables table accepted it (a
// drop in any base chain is final). As Kubernetes network plugins do, the
// agent puts accept rules for its range in a chain of its own, CONVOY-FORWARD,
// jumped to from the top of FORWARD. Accepting there only undoes iptables'
// policy: Convoy's nftables forward chain (isolation, firewall) still
// decides. VIPs are DNATed before forward, so the cluster range covers them.
import type { Logger } from '../../common/logger';
import { errMsg, nullLogger } from '../../common/logger';
import type { Sh } from './sh';

export const FORWARD_CHAIN = 'CONVOY-FORWARD';

/** Creates or refills CONVOY-FORWARD (accept from/to cidr) and the jump to it; idempotent. No iptables: nothing to do. */
export async function ensureForwardAccept(sh: Sh, cidr: string, log: Logger = nullLogger, chain = FORWARD_CHAIN, match: string[][] = [['-s', cidr], ['-d', cidr]]): Promise<void> {
  const ipt = (args: string[]) => sh.run('iptables', ['-w', ...args]);
  try {
    await ipt(['-N', chain]).catch(() => undefined); // exists already
    await ipt(['-F', chain]);
    for (const m of match) await ipt(['-A', chain, ...m, '-j', 'ACCEPT']);
    const has = await ipt(['-C', 'FORWARD', '-j', chain]).then(
      () => true,
      () => false,
    );
    if (!has) await ipt(['-I', 'FORWARD', '1', '-j', chain]);
  } catch (e) {
    if (/ENOENT|not found/i.test(errMsg(e))) return log.debug('no iptables on this host', {});
    // One line: what failed and what to do about it.
    log.warn(`iptables ${chain} not installed: if this host's iptables FORWARD policy is DROP (Docker), tasks get no traffic; fix: iptables -I FORWARD -s ${cidr} -j ACCEPT; iptables -I FORWARD -d ${cidr} -j ACCEPT`, { err: errMsg(e) });
  }
}

/** Removes the jump and the chain; idempotent. */
export async function removeForwardAccept(sh: Sh, chain = FORWARD_CHAIN): Promise<void> {
  const ipt = (args: string[]) => sh.run('iptables', ['-w', ...args]);
  while (await ipt(['-D', 'FORWARD', '-j', chain]).then(() => true, () => false));
  await ipt(['-F', chain]).catch(() => undefined);
  await ipt(['-X', chain]).catch(() => undefined);
}
