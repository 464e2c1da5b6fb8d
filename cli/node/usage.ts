// How the CLI shows what nodes reserve and use (Node.usage, answered by the
// Control API): `node ls`, `node inspect`-like summaries and `cluster top`.
import type { Node } from '../../proto/mod';
import { formatBytes, formatCpus } from '../format';

export interface Capacity {
  cpu: number;
  mem: number;
}

/** What a node has in all (its description): nano-CPUs and bytes. */
export function capacityOf(n: Node): Capacity {
  return { cpu: Number(n.description?.resources?.nanoCpus ?? 0), mem: Number(n.description?.resources?.memoryBytes ?? 0) };
}

/** Percent of `total`, "-" when there is no total. */
export function percent(part: number, total: number): string {
  return total > 0 ? `${Math.round((part / total) * 100)}%` : '-';
}

/** "1.5 / 0.31 / 4": reserved / in use / total CPUs; in use is "-" without a fresh sample from the agent. */
export function cpuCell(n: Node): string {
  const u = n.usage;
  const used = u?.sampledAt ? formatCpus(Number(u.usedNanoCpus)) : '-';
  return `${formatCpus(Number(u?.reservedNanoCpus ?? 0))} / ${used} / ${formatCpus(capacityOf(n).cpu)}`;
}

/** "1GiB / 300MiB / 8GiB": reserved / in use / total memory. */
export function memCell(n: Node): string {
  const u = n.usage;
  const used = u?.sampledAt ? formatBytes(Number(u.usedMemoryBytes)) : '-';
  return `${formatBytes(Number(u?.reservedMemoryBytes ?? 0))} / ${used} / ${formatBytes(capacityOf(n).mem)}`;
}
