// Address capacity for the scheduler; the IPv4 arithmetic is common/cidr.ts.
import { cidrSize, parseCidr } from '../../common/cidr';

/** Task addresses a node subnet offers: all but network, broadcast and .1 (the node's bridge). */
export function taskAddressCapacity(subnet: string): number {
  if (!subnet) return 0;
  try {
    return Math.max(0, cidrSize(parseCidr(subnet)) - 3);
  } catch {
    return 0;
  }
}
