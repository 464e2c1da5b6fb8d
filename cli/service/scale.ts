// convoy service scale SERVICE=REPLICAS...: each one on its own; a failure is
// reported and the others still go through (exit status 1 if any failed).
import { Command } from 'commander';
import { describeError, withApi, type CliIO } from '../client';
import { parseScaleArgs } from '../flags';

export function serviceScaleCommand(io: CliIO): Command {
  return new Command('scale')
    .description('Scale one or more replicated services')
    .argument('<service=replicas...>', 'e.g. web=5 api=3')
    .action(async (args: string[], _opts: unknown, c: Command) =>
      withApi(io, c, async (api) => {
        let failed = false;
        for (const [service, replicas] of parseScaleArgs(args)) {
          try {
            const r = await api.scaleService({ service, replicas });
            io.out(`${r.service?.spec?.name ?? service} scaled to ${replicas}\n`);
          } catch (e) {
            failed = true;
            io.err(`convoy: ${describeError(e)}\n`);
          }
        }
        if (failed) io.setExitCode(1);
      }),
    );
}
