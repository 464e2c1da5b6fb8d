// What Docker leaves on a host: iptables FORWARD policy DROP and
// bridge-nf-call-iptables=1. The e2e tests set both on the machine (and
// FORWARD DROP in the lab's host namespaces, where the agents run, as on a
// real host) and restore the previous values after, even on failure.
import { execFileSync } from 'node:child_process';

const sh = (cmd: string, args: string[]) => execFileSync(cmd, args, { encoding: 'utf8' }).trim();

export interface DockerLikeHost {
  /** FORWARD DROP in these network namespaces too (the lab's hosts). */
  inNamespaces(netns: string[]): void;
  /** Puts the machine's previous values back. */
  restore(): void;
}

export function dockerLikeHost(): DockerLikeHost {
  const prevBridgeNf = sh('sysctl', ['-n', 'net.bridge.bridge-nf-call-iptables']);
  const prevPolicy = /-P FORWARD (\w+)/.exec(sh('iptables', ['-w', '-S', 'FORWARD']))?.[1] ?? 'ACCEPT';
  sh('sysctl', ['-q', '-w', 'net.bridge.bridge-nf-call-iptables=1']);
  sh('iptables', ['-w', '-P', 'FORWARD', 'DROP']);
  return {
    inNamespaces(netns) {
      for (const ns of netns) sh('ip', ['netns', 'exec', ns, 'iptables', '-w', '-P', 'FORWARD', 'DROP']);
    },
    restore() {
      sh('iptables', ['-w', '-P', 'FORWARD', prevPolicy]);
      sh('sysctl', ['-q', '-w', `net.bridge.bridge-nf-call-iptables=${prevBridgeNf}`]);
    },
  };
}
