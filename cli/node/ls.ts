// convoy node ls: ID, HOSTNAME, STATUS, AVAILABILITY, ROLE, ADDRESS, SUBNET,
// CPU and MEMORY (reserved / in use / total: the tasks' reservations, the
// agent's latest sample, the node's capacity), LABELS.
import { Command } from 'commander';
import type { Node } from '../../proto/mod';
import { withApi, type CliIO } from '../client';
import { cpuCell, memCell } from './usage';
import { addOutputOptions, formatLabels, json, nodeHostname, nodeStateName, parseFormat, shortId, table, titleCase, type OutputFlags } from '../format';

export function renderNodes(nodes: Node[], leader: string, noTrunc = false): string {
  const rows = [...nodes]
    .sort((a, b) => nodeHostname(a).localeCompare(nodeHostname(b)))
    .map((n) => [
      `${shortId(n.id, noTrunc)}${n.id === leader ? ' *' : ''}`,
      nodeHostname(n),
      nodeStateName(n),
      titleCase(n.spec?.availability ?? 'ACTIVE'),
      titleCase(n.spec?.role ?? 'WORKER'),
      n.status?.addr ?? '',
      n.subnet ?? '',
      cpuCell(n),
      memCell(n),
      formatLabels(n.spec?.labels),
    ]);
  return table(['ID', 'HOSTNAME', 'STATUS', 'AVAILABILITY', 'ROLE', 'ADDRESS', 'SUBNET', 'CPU RSV/USED/TOTAL', 'MEMORY RSV/USED/TOTAL', 'LABELS'], rows);
}

export function nodeLsCommand(io: CliIO): Command {
  const cmd = new Command('ls').alias('list').description('List nodes (* marks the leader when it is a node too)');
  addOutputOptions(cmd).option('--role <role>', 'only workers or managers');
  return cmd.action(async (opts: OutputFlags & { role?: string }, c: Command) =>
    withApi(io, c, async (api) => {
      const format = parseFormat(opts.format);
      const r = await api.listNodes({ role: opts.role ? opts.role.toUpperCase() : '' });
      const noTrunc = opts.trunc === false;
      if (opts.quiet) io.out(r.nodes.map((n) => `${shortId(n.id, noTrunc)}\n`).join(''));
      else if (format === 'json') io.out(json(r.nodes));
      else io.out(renderNodes(r.nodes, r.leader, noTrunc));
    }),
  );
}
