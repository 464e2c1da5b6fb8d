// convoy cluster info: the cluster object, its managers (leader marked) and counts.
import { Command } from 'commander';
import { withApi, type CliIO, type ControlResponse } from '../client';
import { ago, json, keyValues, parseFormat } from '../format';

export function prettyClusterInfo(i: ControlResponse<'getClusterInfo'>, now: number): string {
  const c = i.cluster;
  const pairs: [string, string][] = [
    ['Cluster ID', c?.id ?? ''],
    ['Created', ago(Number(c?.createdAt ?? 0), now)],
    ['Nodes', String(i.nodes)],
    ['Services', String(i.services)],
    ['Tasks', String(i.tasks)],
    ['Cluster CIDR', c?.clusterCidr ?? ''],
    ['VIP CIDR', c?.vipCidr ?? ''],
    ['Ingress ports', c ? `${c.ingressPortMin}-${c.ingressPortMax}` : ''],
    ['NATS', i.natsUrl || 'none'],
    ['Bind mounts from', c?.bindAllow?.length ? c.bindAllow.join(', ') : 'nowhere (convoy cluster update --bind-allow PATH)'],
    ['Privileged, devices', c?.allowPrivileged ? 'allowed (admins only)' : 'refused (convoy cluster update --allow-privileged)'],
  ];
  for (const m of i.managers) pairs.push(['Manager', `${m.addr} (${m.id})${m.leader ? ' leader' : ''}`]);
  return keyValues(pairs);
}

export function clusterInfoCommand(io: CliIO): Command {
  return new Command('info')
    .description('Display cluster-wide information')
    .option('--format <format>', 'table (default) or json')
    .action(async (opts: { format?: string }, c: Command) =>
      withApi(io, c, async (api) => {
        const format = parseFormat(opts.format);
        const info = await api.getClusterInfo({});
        io.out(format === 'json' ? json(info) : prettyClusterInfo(info, io.now()));
      }),
    );
}
