// convoy service rollback SERVICE: back to the spec before the last update.
import { Command } from 'commander';
import { withApi, type CliIO } from '../client';

export function serviceRollbackCommand(io: CliIO): Command {
  return new Command('rollback')
    .description('Revert a service to its previous spec')
    .argument('<service>', 'service name, id or id prefix')
    .option('-q, --quiet', 'print nothing')
    .action(async (service: string, opts: { quiet?: boolean }, c: Command) =>
      withApi(io, c, async (api) => {
        const r = await api.rollbackService({ service });
        if (!opts.quiet) io.out(`${r.service?.spec?.name ?? service}: rollback started\n`);
      }),
    );
}
