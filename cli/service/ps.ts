// convoy service ps SERVICE...: the tasks of some services (task ls per service).
import { Command } from 'commander';
import { withApi, type CliIO } from '../client';
import { collect } from '../flags';
import { addOutputOptions } from '../format';
import { printTasks, taskFilters, type TaskListFlags } from '../task/ls';

export function servicePsCommand(io: CliIO): Command {
  const cmd = new Command('ps').description('List the tasks of one or more services').argument('<service...>', 'service name, id or id prefix');
  addOutputOptions(cmd).option('-f, --filter <filter>', 'desired-state=running, state=failed, node=HOST (repeatable)', collect);
  return cmd.action(async (services: string[], opts: TaskListFlags, c: Command) =>
    withApi(io, c, async (api) => {
      // Resolve each name first so an unknown service is one clear error, not an empty table.
      const ids: string[] = [];
      for (const s of services) ids.push((await api.getService({ service: s })).service?.id ?? s);
      await printTasks(
        io,
        api,
        ids.map((id) => taskFilters(opts.filter ?? [], { service: id })),
        opts,
      );
    }),
  );
}
