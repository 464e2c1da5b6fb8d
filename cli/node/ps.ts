// convoy node ps NODE...: the tasks on some nodes, as `docker node ps`
// (the columns of `service ps`: ID, NAME, IMAGE, NODE, DESIRED STATE,
// CURRENT STATE, ERROR, PORTS; the history of a slot under its newest task).
import { Command } from 'commander';
import { withApi, type CliIO } from '../client';
import { collect } from '../flags';
import { addOutputOptions } from '../format';
import { printTasks, taskFilters, type TaskListFlags } from '../task/ls';

export function nodePsCommand(io: CliIO): Command {
  const cmd = new Command('ps').description('List the tasks on one or more nodes').argument('<node...>', 'node id, hostname or id prefix');
  addOutputOptions(cmd).option('-f, --filter <filter>', 'desired-state=running, state=failed, service=NAME (repeatable)', collect);
  return cmd.action(async (nodes: string[], opts: TaskListFlags, c: Command) =>
    withApi(io, c, async (api) => {
      // Resolve each node first: an unknown one is one clear error, not an empty table.
      const ids: string[] = [];
      for (const n of nodes) ids.push((await api.getNode({ node: n })).node?.id ?? n);
      await printTasks(
        io,
        api,
        ids.map((id) => taskFilters(opts.filter ?? [], { node: id })),
        opts,
      );
    }),
  );
}
