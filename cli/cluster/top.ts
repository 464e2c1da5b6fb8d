// convoy cluster top: the cluster as one machine. Its capacity (the ready
// nodes' CPU and memory), what the tasks reserve of it and what they use
// (the agents' latest samples), per node and in all; then what is pending
// and why (the scheduler's explanation on each pending task, grouped by
// service and reason). Two reads: ListNodes (with usage) and ListTasks.
import { Command } from 'commander';
import type { Node, Task } from '../../proto/mod';
import { withApi, type CliIO, type ControlApi } from '../client';
import { ago, formatBytes, formatCpus, json, nodeHostname, nodeStateName, parseFormat, table, titleCase } from '../format';
import { capacityOf, percent } from '../node/usage';

export interface Totals {
  cpu: number;
  mem: number;
  reservedCpu: number;
  reservedMem: number;
  usedCpu: number;
  usedMem: number;
  tasks: number;
  /** Ready nodes counted in the totals, and how many of them sent no fresh sample (their use is missing from usedCpu/usedMem). */
  nodes: number;
  unsampled: number;
}

export interface PendingGroup {
  service: string;
  reason: string;
  tasks: number;
  /** Epoch ms of the oldest status among them. */
  since: number;
}

export interface ClusterTop {
  totals: Totals;
  nodes: Node[];
  pending: PendingGroup[];
}

const ready = (n: Node) => n.status?.state === 'NODE_READY';

/** The totals over the ready nodes (a down node lends the cluster nothing). */
export function totalsOf(nodes: readonly Node[]): Totals {
  const t: Totals = { cpu: 0, mem: 0, reservedCpu: 0, reservedMem: 0, usedCpu: 0, usedMem: 0, tasks: 0, nodes: 0, unsampled: 0 };
  for (const n of nodes) {
    if (!ready(n)) continue;
    const c = capacityOf(n);
    const u = n.usage;
    t.nodes++;
    t.cpu += c.cpu;
    t.mem += c.mem;
    t.reservedCpu += Number(u?.reservedNanoCpus ?? 0);
    t.reservedMem += Number(u?.reservedMemoryBytes ?? 0);
    t.tasks += Number(u?.tasks ?? 0);
    if (u?.sampledAt) {
      t.usedCpu += Number(u.usedNanoCpus);
      t.usedMem += Number(u.usedMemoryBytes);
    } else t.unsampled++;
  }
  return t;
}

/** Pending tasks (desired running, not placed) by service and reason, the most tasks first. */
export function pendingGroups(tasks: readonly Task[]): PendingGroup[] {
  const groups = new Map<string, PendingGroup>();
  for (const t of tasks) {
    const st = t.status?.state ?? 'NEW';
    if ((st !== 'PENDING' && st !== 'NEW') || t.desiredState !== 'RUNNING') continue;
    const reason = t.status?.message || 'waiting for the scheduler';
    const k = `${t.serviceName}\u0000${reason}`;
    const at = Number(t.status?.timestamp ?? 0);
    const g = groups.get(k);
    if (g) {
      g.tasks++;
      if (at && (!g.since || at < g.since)) g.since = at;
    } else groups.set(k, { service: t.serviceName, reason, tasks: 1, since: at });
  }
  return [...groups.values()].sort((a, b) => b.tasks - a.tasks || a.service.localeCompare(b.service) || a.reason.localeCompare(b.reason));
}

export function renderTop(top: ClusterTop, now: number): string {
  const t = top.totals;
  const used = (v: number, fmt: (x: number) => string, total: number) => (t.nodes > t.unsampled ? `${fmt(v)} (${percent(v, total)})` : '-');
  let out = `${t.nodes} ready node${t.nodes === 1 ? '' : 's'} of ${top.nodes.length}, ${t.tasks} task${t.tasks === 1 ? '' : 's'} holding them`;
  out += t.unsampled ? ` (no usage sample from ${t.unsampled} node${t.unsampled === 1 ? '' : 's'}: in use counts the others)\n\n` : '\n\n';
  out += table(
    ['', 'CAPACITY', 'RESERVED', 'IN USE', 'FREE TO RESERVE'],
    [
      ['CPU', formatCpus(t.cpu), `${formatCpus(t.reservedCpu)} (${percent(t.reservedCpu, t.cpu)})`, used(t.usedCpu, formatCpus, t.cpu), formatCpus(Math.max(0, t.cpu - t.reservedCpu))],
      ['MEMORY', formatBytes(t.mem), `${formatBytes(t.reservedMem)} (${percent(t.reservedMem, t.mem)})`, used(t.usedMem, formatBytes, t.mem), formatBytes(Math.max(0, t.mem - t.reservedMem))],
    ],
  );
  out += '\n';
  const rows = [...top.nodes]
    .sort((a, b) => nodeHostname(a).localeCompare(nodeHostname(b)))
    .map((n) => {
      const c = capacityOf(n);
      const u = n.usage;
      const s = !!u?.sampledAt;
      return [
        nodeHostname(n),
        nodeStateName(n),
        titleCase(n.spec?.availability ?? 'ACTIVE'),
        String(u?.tasks ?? 0),
        `${formatCpus(Number(u?.reservedNanoCpus ?? 0))} (${percent(Number(u?.reservedNanoCpus ?? 0), c.cpu)})`,
        s ? formatCpus(Number(u!.usedNanoCpus)) : '-',
        formatCpus(c.cpu),
        `${formatBytes(Number(u?.reservedMemoryBytes ?? 0))} (${percent(Number(u?.reservedMemoryBytes ?? 0), c.mem)})`,
        s ? formatBytes(Number(u!.usedMemoryBytes)) : '-',
        formatBytes(c.mem),
      ];
    });
  out += table(['NODE', 'STATUS', 'AVAILABILITY', 'TASKS', 'CPU RESERVED', 'CPU USED', 'CPU TOTAL', 'MEM RESERVED', 'MEM USED', 'MEM TOTAL'], rows);
  out += '\n';
  const pending = top.pending.reduce((k, g) => k + g.tasks, 0);
  if (!pending) return out + 'Pending: none\n';
  out += `Pending: ${pending} task${pending === 1 ? '' : 's'}\n`;
  out += table(
    ['SERVICE', 'TASKS', 'SINCE', 'WHY'],
    top.pending.map((g) => [g.service, String(g.tasks), g.since ? ago(g.since, now) : '', g.reason]),
  );
  return out;
}

/** Every node (with usage) and every pending task (the client follows the pages). */
export async function readTop(api: ControlApi): Promise<ClusterTop> {
  const [n, t] = await Promise.all([api.listNodes({}), api.listTasks({ states: ['NEW', 'PENDING'], desiredStates: ['RUNNING'] })]);
  return { totals: totalsOf(n.nodes), nodes: n.nodes, pending: pendingGroups(t.tasks) };
}

export function clusterTopCommand(io: CliIO): Command {
  return new Command('top')
    .description("The cluster as one machine: capacity, reservations and use (per node and in all), and what is pending and why")
    .option('--format <format>', 'table (default) or json')
    .action(async (opts: { format?: string }, c: Command) =>
      withApi(io, c, async (api) => {
        const format = parseFormat(opts.format);
        const top = await readTop(api);
        io.out(format === 'json' ? json({ totals: top.totals, nodes: top.nodes.map((n) => ({ id: n.id, hostname: nodeHostname(n), status: nodeStateName(n), capacity: capacityOf(n), usage: n.usage })), pending: top.pending }) : renderTop(top, io.now()));
      }),
    );
}
