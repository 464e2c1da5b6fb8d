// convoy task logs [-f] [--tail N] [--since 5m] [-t] TASK: one task's logs,
// from the agent of the node it runs on (over NATS, cli/events/logs.ts).
import { Command } from 'commander';
import type { Task } from '../../proto/mod';
import { processIO, type CliIO } from '../client';
import { addLogsOptions, logsAction } from '../service/logs';

export function taskLogsCommand(io: CliIO = processIO()): Command {
  return addLogsOptions(new Command('logs').description('Fetch the logs of one task').argument('<task>', 'task id or id prefix')).action(
    logsAction(io, false, async (api, task) => {
      const t = (await api.getTask({ task })).task as Task;
      let sent = false;
      return async () => (sent ? [] : ((sent = true), [t]));
    }),
  );
}
