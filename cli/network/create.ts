// convoy network create [--subnet CIDR] [--label k=v] [--internal] NAME
import { Command } from 'commander';
import { CliError, withApi, type CliIO } from '../client';
import { collect, parseLabels } from '../flags';

const CIDR_RE = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/;

export function checkSubnet(s: string): string {
  const m = CIDR_RE.exec(s.trim());
  if (!m || m.slice(1, 5).some((o) => Number(o) > 255) || Number(m[5]) > 32) throw new CliError(`--subnet: "${s}" is not an IPv4 CIDR (e.g. 10.50.0.0/24)`);
  return s.trim();
}

export function networkCreateCommand(io: CliIO): Command {
  return new Command('create')
    .description('Create an overlay network')
    .argument('<name>', 'network name')
    .option('--subnet <cidr>', 'subnet (default: allocated from the cluster CIDR)')
    .option('-l, --label <k=v>', 'network label (repeatable)', collect)
    .option('--internal', 'no traffic to or from outside the network')
    .action(async (name: string, opts: { subnet?: string; label?: string[]; internal?: boolean }, c: Command) =>
      withApi(io, c, async (api) => {
        const spec = { name, subnet: opts.subnet ? checkSubnet(opts.subnet) : '', labels: parseLabels(opts.label ?? [], '--label'), internal: !!opts.internal };
        const r = await api.createNetwork({ spec });
        io.out(`${r.network?.id ?? ''}\n`);
      }),
    );
}
