// convoy network ls: ID, NAME, SUBNET, VNI, INTERNAL.
import { Command } from 'commander';
import type { Network } from '../../proto/mod';
import { withApi, type CliIO } from '../client';
import { addOutputOptions, json, parseFormat, shortId, table, type OutputFlags } from '../format';

export function renderNetworks(networks: Network[], noTrunc = false): string {
  const rows = [...networks]
    .sort((a, b) => (a.spec?.name ?? '').localeCompare(b.spec?.name ?? ''))
    .map((n) => [shortId(n.id, noTrunc), n.spec?.name ?? '', n.subnet || n.spec?.subnet || '', String(n.vni), n.spec?.internal ? 'yes' : 'no']);
  return table(['ID', 'NAME', 'SUBNET', 'VNI', 'INTERNAL'], rows);
}

export function networkLsCommand(io: CliIO): Command {
  const cmd = new Command('ls').alias('list').description('List networks');
  addOutputOptions(cmd);
  return cmd.action(async (opts: OutputFlags, c: Command) =>
    withApi(io, c, async (api) => {
      const format = parseFormat(opts.format);
      const r = await api.listNetworks({});
      const noTrunc = opts.trunc === false;
      if (opts.quiet) io.out(r.networks.map((n) => `${shortId(n.id, noTrunc)}\n`).join(''));
      else if (format === 'json') io.out(json(r.networks));
      else io.out(renderNetworks(r.networks, noTrunc));
    }),
  );
}
