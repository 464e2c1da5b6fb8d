// Refuse address ranges that collide with the machine's own network: a
// cluster CIDR that overlaps a host route would black-hole real traffic, and
// one that covers the resolver would send every DNS query into the overlay.
// Used by the agent before it programs anything, and by `convoy lab up`.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import { formatCidr, overlaps, parseCidr, parseCidrOrAddress, contains, isIPv4 } from './cidr';

export class RangeConflictError extends Error {
  override name = 'RangeConflictError';
}

export interface NamedRange {
  /** What the operator calls it: "cluster CIDR", "VIP range", "lab network". */
  name: string;
  cidr: string;
}

export interface HostNetworkFacts {
  /** Destinations of the host's routes ("192.0.2.0/24"; "default" is skipped). */
  routes: { dst: string; dev?: string }[];
  /** Nameservers of /etc/resolv.conf. */
  resolvers: string[];
}

/**
 * Throws RangeConflictError naming the first conflict: two of our ranges
 * overlapping each other, one overlapping a host route (routes through a
 * device whose name starts with one of ignoreDevPrefixes — our own — are
 * ignored), or one containing a resolver address.
 */
export function checkRanges(ranges: NamedRange[], facts: HostNetworkFacts, ignoreDevPrefixes: string[] = ['convoy']): void {
  const parsed = ranges.map((r) => {
    try {
      return { ...r, c: parseCidr(r.cidr) };
    } catch (e) {
      throw new RangeConflictError(`${r.name} "${r.cidr}" is not an IPv4 CIDR`);
    }
  });
  for (let i = 0; i < parsed.length; i++)
    for (let j = i + 1; j < parsed.length; j++)
      if (overlaps(parsed[i].c, parsed[j].c))
        throw new RangeConflictError(`${parsed[i].name} ${parsed[i].cidr} overlaps ${parsed[j].name} ${parsed[j].cidr}; choose ranges that do not overlap`);
  for (const r of parsed) {
    for (const route of facts.routes) {
      if (route.dst === 'default' || !route.dst) continue;
      if (route.dev && ignoreDevPrefixes.some((p) => route.dev!.startsWith(p))) continue;
      let rc;
      try {
        rc = parseCidrOrAddress(route.dst);
      } catch {
        continue;
      }
      if (overlaps(r.c, rc))
        throw new RangeConflictError(`${r.name} ${r.cidr} overlaps the host route ${formatCidr(rc)}${route.dev ? ` (dev ${route.dev})` : ''}; choose another range`);
    }
    for (const ns of facts.resolvers)
      if (isIPv4(ns) && contains(r.c, ns))
        throw new RangeConflictError(`${r.name} ${r.cidr} contains the host's DNS resolver ${ns}; choose another range`);
  }
}

/** Nameserver addresses in a resolv.conf text. */
export function parseResolvConf(text: string): string[] {
  const out: string[] = [];
  for (const line of text.split('\n')) {
    const m = /^\s*nameserver\s+(\S+)/.exec(line);
    if (m) out.push(m[1]);
  }
  return out;
}

/** Routes (`ip -j route`) and resolvers of the network namespace this process runs in. */
export function readHostNetworkFacts(resolvConf = '/etc/resolv.conf'): HostNetworkFacts {
  const json = execFileSync('ip', ['-j', 'route', 'show', 'table', 'all'], { encoding: 'utf8' });
  const routes = (JSON.parse(json) as { dst?: string; dev?: string; type?: string }[])
    .filter((r) => r.type === undefined || r.type === 'unicast')
    .map((r) => ({ dst: r.dst ?? '', dev: r.dev }));
  let resolvers: string[] = [];
  try {
    resolvers = parseResolvConf(fs.readFileSync(resolvConf, 'utf8'));
  } catch {
    /* no resolv.conf: nothing to collide with */
  }
  return { routes, resolvers };
}
