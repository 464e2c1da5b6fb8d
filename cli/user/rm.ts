// convoy user rm NAME...: revokes the user's certificate (refused from then
// on, on every manager) and forgets the user.
import { Command } from 'commander';
import { describeError, withApi, type CliIO } from '../client';

export function userRmCommand(io: CliIO): Command {
  return new Command('rm')
    .alias('remove')
    .description("Remove users, revoking their certificates")
    .argument('<name...>', 'user name')
    .action(async (names: string[], _o: unknown, c: Command) =>
      withApi(io, c, async (api) => {
        let failed = false;
        for (const name of names) {
          try {
            await api.removeUser({ name });
            io.out(`${name}\n`);
          } catch (e) {
            failed = true;
            io.err(`convoy: ${describeError(e)}\n`);
          }
        }
        if (failed) io.setExitCode(1);
      }),
    );
}
