// IPv4 arithmetic for the allocator: CIDRs as (base, prefix) with the base
// as an unsigned 32-bit number.
export interface Cidr {
  base: number;
  prefix: number;
}

export function ipToInt(ip: string): number {
  const p = ip.split('.');
  if (p.length !== 4) throw new Error(`"${ip}" is not an IPv4 address`);
  let n = 0;
  for (const x of p) {
    const v = Number(x);
    if (!/^\d{1,3}$/.test(x) || v > 255) throw new Error(`"${ip}" is not an IPv4 address`);
    n = n * 256 + v;
  }
  return n;
}

export function intToIp(n: number): string {
  return `${(n >>> 24) & 255}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}

export function parseCidr(s: string): Cidr {
  const [ip, len] = s.split('/');
  const prefix = Number(len);
  if (!ip || !/^\d{1,2}$/.test(len ?? '') || prefix > 32) throw new Error(`"${s}" is not an IPv4 CIDR`);
  const size = 2 ** (32 - prefix);
  const base = ipToInt(ip) - (ipToInt(ip) % size);
  return { base, prefix };
}

export function cidrSize(c: Cidr): number {
  return 2 ** (32 - c.prefix);
}

export function formatCidr(c: Cidr): string {
  return `${intToIp(c.base)}/${c.prefix}`;
}

/** Task addresses a node subnet offers: all but network, broadcast and .1 (the node's bridge). */
export function taskAddressCapacity(subnet: string): number {
  if (!subnet) return 0;
  try {
    return Math.max(0, cidrSize(parseCidr(subnet)) - 3);
  } catch {
    return 0;
  }
}

/** Offset of an address ("10.42.3.7/24" or "10.42.3.7") inside a CIDR, or -1 when outside. */
export function offsetIn(c: Cidr, addr: string): number {
  try {
    const n = ipToInt(addr.split('/')[0]);
    const off = n - c.base;
    return off >= 0 && off < cidrSize(c) ? off : -1;
  } catch {
    return -1;
  }
}

export function overlaps(a: Cidr, b: Cidr): boolean {
  return a.base < b.base + cidrSize(b) && b.base < a.base + cidrSize(a);
}
