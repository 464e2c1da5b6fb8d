// PLACEHOLDER owned by another engineer: replaced by the real command.
import { Command } from 'commander';

export function serviceLogsCommand(): Command {
  return new Command('logs').description('Show the logs of a service tasks (not implemented yet)').action(() => {
    process.stderr.write('convoy: logs is not implemented yet\n');
    process.exitCode = 1;
  });
}
