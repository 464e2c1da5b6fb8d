// IPv4 arithmetic shared by the manager's allocator and the agent's host
// networking: addresses as unsigned 32-bit numbers, CIDRs as (base, prefix).
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

export function isIPv4(s: string): boolean {
  try {
    ipToInt(s);
    return true;
  } catch {
    return false;
  }
}

/** "10.42.3.0/24"; a host address such as "10.42.3.7/24" is rounded down to its network. The prefix is required. */
export function parseCidr(s: string): Cidr {
  const [ip, len] = s.split('/');
  const prefix = Number(len);
  if (!ip || !/^\d{1,2}$/.test(len ?? '') || prefix > 32) throw new Error(`"${s}" is not an IPv4 CIDR`);
  const size = 2 ** (32 - prefix);
  const n = ipToInt(ip);
  return { base: n - (n % size), prefix };
}

/** A CIDR, or a bare address as its /32 (route destinations as `ip route` prints them). */
export function parseCidrOrAddress(s: string): Cidr {
  return s.includes('/') ? parseCidr(s) : { base: ipToInt(s), prefix: 32 };
}

export function cidrSize(c: Cidr): number {
  return 2 ** (32 - c.prefix);
}

export function formatCidr(c: Cidr): string {
  return `${intToIp(c.base)}/${c.prefix}`;
}

export function contains(c: Cidr, ip: string | number): boolean {
  const n = typeof ip === 'number' ? ip : ipToInt(ip);
  return n >= c.base && n < c.base + cidrSize(c);
}

export function overlaps(a: Cidr, b: Cidr): boolean {
  return a.base < b.base + cidrSize(b) && b.base < a.base + cidrSize(a);
}

/** Offset of an address ("10.42.3.7/24" or "10.42.3.7") inside a CIDR, or -1 when outside. */
export function offsetIn(c: Cidr, addr: string): number {
  try {
    const off = ipToInt(addrOf(addr)) - c.base;
    return off >= 0 && off < cidrSize(c) ? off : -1;
  } catch {
    return -1;
  }
}

/** The n-th address of a CIDR (1 = the first host address, the node's bridge). */
export function nth(c: Cidr, n: number): string {
  return intToIp(c.base + n);
}

/** Address part of "10.42.3.7/24". */
export function addrOf(s: string): string {
  return s.split('/')[0];
}
