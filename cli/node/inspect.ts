// convoy node inspect NODE...: JSON, or --pretty.
import { Command } from 'commander';
import type { Node } from '../../proto/mod';
import { withApi, type CliIO } from '../client';
import { ago, formatBytes, formatCpus, formatLabels, json, keyValues, nodeHostname, nodeStateName, titleCase } from '../format';

export function prettyNode(n: Node, now: number): string {
  const d = n.description;
  return keyValues([
    ['ID', n.id],
    ['Hostname', nodeHostname(n)],
    ['Role', titleCase(n.spec?.role ?? 'WORKER')],
    ['Availability', titleCase(n.spec?.availability ?? 'ACTIVE')],
    ['Status', `${nodeStateName(n)}${n.status?.message ? ` (${n.status.message})` : ''}`],
    ['Updated', ago(Number(n.status?.updatedAt ?? 0), now)],
    ['Address', n.status?.addr ?? ''],
    ['Subnet', n.subnet ?? ''],
    ['Labels', formatLabels(n.spec?.labels)],
    ['Engine labels', formatLabels(d?.engineLabels)],
    ['Platform', d?.platform ? `${d.platform.os}/${d.platform.arch}` : ''],
    ['CPUs', formatCpus(Number(d?.resources?.nanoCpus ?? 0))],
    ['Memory', formatBytes(Number(d?.resources?.memoryBytes ?? 0))],
  ]);
}

export function nodeInspectCommand(io: CliIO): Command {
  return new Command('inspect')
    .description('Display detailed information on one or more nodes (JSON, or --pretty)')
    .argument('<node...>', 'node id, hostname or id prefix')
    .option('--pretty', 'human-readable instead of JSON')
    .action(async (nodes: string[], opts: { pretty?: boolean }, c: Command) =>
      withApi(io, c, async (api) => {
        const found: Node[] = [];
        for (const n of nodes) {
          const r = await api.getNode({ node: n });
          if (r.node) found.push(r.node);
        }
        io.out(opts.pretty ? found.map((n) => prettyNode(n, io.now())).join('\n') : json(found));
      }),
    );
}
