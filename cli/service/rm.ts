// convoy service rm SERVICE...: each one on its own, as docker.
import { Command } from 'commander';
import { describeError, withApi, type CliIO } from '../client';

export function serviceRmCommand(io: CliIO): Command {
  return new Command('rm')
    .alias('remove')
    .description('Remove one or more services')
    .argument('<service...>', 'service name, id or id prefix')
    .action(async (services: string[], _opts: unknown, c: Command) =>
      withApi(io, c, async (api) => {
        let failed = false;
        for (const service of services) {
          try {
            await api.removeService({ service });
            io.out(`${service}\n`);
          } catch (e) {
            failed = true;
            io.err(`convoy: ${describeError(e)}\n`);
          }
        }
        if (failed) io.setExitCode(1);
      }),
    );
}
