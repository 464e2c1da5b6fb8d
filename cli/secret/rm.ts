// convoy secret rm NAME... (and convoy config rm): refused while a service uses it (the manager names them).
import { Command } from 'commander';
import { describeError, withApi, type CliIO } from '../client';
import type { FileNoun } from './noun';

export function fileRmCommand(io: CliIO, noun: FileNoun): Command {
  return new Command('rm')
    .alias('remove')
    .description(`Remove one or more ${noun.kind}s`)
    .argument(`<${noun.kind}...>`, `${noun.kind} name or id`)
    .action(async (refs: string[], _opts: unknown, c: Command) =>
      withApi(io, c, async (api) => {
        let failed = false;
        for (const r of refs) {
          try {
            await noun.remove(api, r);
            io.out(`${r}\n`);
          } catch (e) {
            failed = true;
            io.err(`convoy: ${describeError(e)}\n`);
          }
        }
        if (failed) io.setExitCode(1);
      }),
    );
}
