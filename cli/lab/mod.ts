// PLACEHOLDER owned by another engineer: replaced by the real command.
import { Command } from 'commander';

export function labCommand(): Command {
  return new Command('lab').description('Build and tear down a multi-host lab on this machine (not implemented yet)').action(() => {
    process.stderr.write('convoy: lab is not implemented yet\n');
    process.exitCode = 1;
  });
}
