// IPv4 arithmetic for host networking: addresses as unsigned 32-bit numbers,
// CIDRs as (base, prefix). The agent keeps its own copy (the manager's
// allocator has one too): the programs share only proto/ and small helpers.
export interface Cidr {
  base: number;
  prefix: number;
}

export function ipToInt(ip: string): number {
  const p = ip.split('.');
  if (p.length !== 4) throw new Error(`"${ip}" is not an IPv4 address`);
  let n = 0;
  for (const x of p) {
    if (!/^\d{1,3}$/.test(x) || Number(x) > 255) throw new Error(`"${ip}" is not an IPv4 address`);
    n = n * 256 + Number(x);
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

/** "10.42.3.0/24" (a host address such as "10.42.3.7/24" is rounded down to its network). */
export function parseCidr(s: string): Cidr {
  const [ip, len] = s.split('/');
  if (len === undefined) return { base: ipToInt(ip), prefix: 32 };
  const prefix = Number(len);
  if (!/^\d{1,2}$/.test(len) || prefix > 32) throw new Error(`"${s}" is not an IPv4 CIDR`);
  const size = 2 ** (32 - prefix);
  const n = ipToInt(ip);
  return { base: n - (n % size), prefix };
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

/** The n-th address of a CIDR (1 = the first host address, the node's bridge). */
export function nth(c: Cidr, n: number): string {
  return intToIp(c.base + n);
}

/** Address part of "10.42.3.7/24". */
export function addrOf(s: string): string {
  return s.split('/')[0];
}
