// convoy task logs [-f] [--tail N] [--since 5m] [-t] TASK: one task's logs,
// from the agent of the node it runs on (over NATS, cli/events/logs.ts).
import { Command } from 'commander';
import type { Task } from '../../proto/mod';
import { processIO, type CliIO } from '../client';
import { interrupted, parseSince, withNats } from '../events/nats';
import { parseTail, streamLogs } from '../events/logs';
import { addLogsOptions, type LogsFlags } from '../service/logs';

export function taskLogsCommand(io: CliIO = processIO()): Command {
  return addLogsOptions(new Command('logs').description('Fetch the logs of one task').argument('<task>', 'task id or id prefix')).action(
    async (task: string, _o: unknown, c: Command) => {
      const f = c.opts<LogsFlags>();
      const tail = parseTail(f.tail);
      const since = f.since !== undefined ? parseSince(f.since, io.now()) : undefined;
      const sig = interrupted();
      try {
        await withNats(io, c, async (api, nc) => {
          const t = (await api.getTask({ task })).task as Task;
          let sent = false;
          const list = async () => (sent ? [] : ((sent = true), [t]));
          await streamLogs(io, api, nc, list, { tail, since, follow: !!f.follow, timestamps: !!f.timestamps, prefix: false }, sig.promise);
        });
      } finally {
        sig.dispose();
      }
    },
  );
}
