// convoy network rm NETWORK...
import { Command } from 'commander';
import { describeError, withApi, type CliIO } from '../client';

export function networkRmCommand(io: CliIO): Command {
  return new Command('rm')
    .alias('remove')
    .description('Remove one or more networks')
    .argument('<network...>', 'network name or id')
    .action(async (networks: string[], _opts: unknown, c: Command) =>
      withApi(io, c, async (api) => {
        let failed = false;
        for (const network of networks) {
          try {
            await api.removeNetwork({ network });
            io.out(`${network}\n`);
          } catch (e) {
            failed = true;
            io.err(`convoy: ${describeError(e)}\n`);
          }
        }
        if (failed) io.setExitCode(1);
      }),
    );
}
