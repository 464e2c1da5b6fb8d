// PLACEHOLDER owned by another engineer: replaced by the real command.
import { Command } from 'commander';

export function serviceAutoscaleCommand(): Command {
  return new Command('autoscale').description('Set a service autoscaling policy (not implemented yet)').action(() => {
    process.stderr.write('convoy: autoscale is not implemented yet\n');
    process.exitCode = 1;
  });
}
