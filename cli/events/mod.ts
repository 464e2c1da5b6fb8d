// PLACEHOLDER owned by another engineer: replaced by the real command.
import { Command } from 'commander';

export function eventsCommand(): Command {
  return new Command('events').description('Stream cluster events (not implemented yet)').action(() => {
    process.stderr.write('convoy: events is not implemented yet\n');
    process.exitCode = 1;
  });
}
