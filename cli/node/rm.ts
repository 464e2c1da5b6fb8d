// convoy node rm [--force] NODE...
import { Command } from 'commander';
import { describeError, withApi, type CliIO } from '../client';

export function nodeRmCommand(io: CliIO): Command {
  return new Command('rm')
    .alias('remove')
    .description('Remove one or more nodes from the cluster')
    .argument('<node...>', 'node id, hostname or id prefix')
    .option('-f, --force', 'remove a node even if it is up')
    .action(async (nodes: string[], opts: { force?: boolean }, c: Command) =>
      withApi(io, c, async (api) => {
        let failed = false;
        for (const node of nodes) {
          try {
            await api.removeNode({ node, force: !!opts.force });
            io.out(`${node}\n`);
          } catch (e) {
            failed = true;
            io.err(`convoy: ${describeError(e)}\n`);
          }
        }
        if (failed) io.setExitCode(1);
      }),
    );
}
