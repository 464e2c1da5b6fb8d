// The ports processes on this host listen on, for the node description: the
// manager refuses to publish a service on one of them (a published port is
// a DNAT rule in front of every listener on the node: it would capture
// sshd's or a database's traffic). Read from /proc/net of the agent's
// network namespace (the host's), once, when the agent registers.
import * as fs from 'node:fs';
import * as os from 'node:os';

/** At most this many ports per protocol (a node description is bounded). */
export const LISTENING_MAX = 4096;

/** Below Linux's ephemeral range: sockets above it are outgoing connections' source ports, not services. */
function ephemeralStart(procRoot: string): number {
  try {
    const [lo] = fs.readFileSync(`${procRoot}/sys/net/ipv4/ip_local_port_range`, 'utf8').trim().split(/\s+/).map(Number);
    return Number.isInteger(lo) && lo > 0 ? lo : 32768;
  } catch {
    return 32768;
  }
}

/** Local ports in a /proc/net/{tcp,udp}[6] table whose state is `state` (hex: 0A listen for TCP, 07 unconnected for UDP). */
export function parseProcNet(text: string, state: string, below: number): number[] {
  const out = new Set<number>();
  for (const line of text.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 4 || f[3] !== state) continue;
    const port = parseInt(f[1].split(':')[1] ?? '', 16);
    if (port > 0 && port < below) out.add(port);
  }
  return [...out];
}

export function listeningPorts(procRoot = '/proc'): { listeningTcp: number[]; listeningUdp: number[] } {
  const below = ephemeralStart(procRoot);
  const read = (files: string[], state: string) => {
    const all = new Set<number>();
    for (const f of files) {
      try {
        for (const p of parseProcNet(fs.readFileSync(`${procRoot}/net/${f}`, 'utf8'), state, below)) all.add(p);
      } catch {
        /* no IPv6 */
      }
    }
    return [...all].sort((a, b) => a - b).slice(0, LISTENING_MAX);
  };
  return { listeningTcp: read(['tcp', 'tcp6'], '0A'), listeningUdp: read(['udp', 'udp6'], '07') };
}

/** At most this many addresses reported (manager/spec/limits.ts NODE_ADDRESSES_MAX). */
export const ADDRESSES_MAX = 256;

/**
 * This host's IPv4 addresses but loopback, for the node description: every
 * node's firewall keeps tasks from all of them, not only from the underlay
 * address (another interface, Docker's docker0, a public address).
 */
export function hostAddresses(): string[] {
  const out = new Set<string>();
  for (const list of Object.values(os.networkInterfaces()))
    for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) out.add(a.address);
  return [...out].slice(0, ADDRESSES_MAX);
}
