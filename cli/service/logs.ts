// convoy service logs [-f] [--tail N] [--since 5m] [-t] SERVICE: the logs of
// every task of the service, across hosts, merged by time, each line prefixed
// with task and host (`web.2.3f9a1c0e7b2d@host-b | ...`). Served by the
// agents over NATS (cli/events/logs.ts).
import { Command } from 'commander';
import type { Task } from '../../proto/mod';
import { processIO, type CliIO, type ControlApi } from '../client';
import { interrupted, parseSince, withNats } from '../events/nats';
import { parseTail, streamLogs } from '../events/logs';

export interface LogsFlags {
  follow?: boolean;
  tail?: string;
  since?: string;
  timestamps?: boolean;
  noTaskIds?: boolean;
  nats?: string;
}

export function addLogsOptions(c: Command): Command {
  return c
    .option('-f, --follow', 'keep streaming new lines')
    .option('-n, --tail <lines>', 'lines per task from the end ("all" = everything)', 'all')
    .option('--since <when>', 'only lines since a duration ago (5m), an RFC 3339 time or epoch seconds')
    .option('-t, --timestamps', 'show each line\'s time')
    .option('--nats <url>', 'NATS URL (default: $CONVOY_NATS, else the one the managers advertise)');
}

/**
 * The logs verbs' action: flags, NATS, and the stream. `tasks` turns the
 * argument into the function that lists the tasks to read (called again
 * while following, for tasks that start later).
 */
export function logsAction(io: CliIO, prefix: boolean, tasks: (api: ControlApi, ref: string) => Promise<() => Promise<Task[]>>) {
  return async (ref: string, _o: unknown, c: Command): Promise<void> => {
    const f = c.opts<LogsFlags>();
    const tail = parseTail(f.tail);
    const since = f.since !== undefined ? parseSince(f.since, io.now()) : undefined;
    const sig = interrupted();
    try {
      await withNats(io, c, async (api, nc) => {
        const list = await tasks(api, ref);
        await streamLogs(io, api, nc, list, { tail, since, follow: !!f.follow, timestamps: !!f.timestamps, prefix }, sig.promise);
      });
    } finally {
      sig.dispose();
    }
  };
}

export function serviceLogsCommand(io: CliIO = processIO()): Command {
  return addLogsOptions(
    new Command('logs').description('Fetch the logs of a service\'s tasks, merged across hosts').argument('<service>', 'service name or id'),
  ).action(
    logsAction(io, true, async (api, service) => {
      await api.getService({ service }); // a clear NOT_FOUND for an unknown service
      return async () => (await api.listTasks({ service, node: '', states: [], desiredStates: [], currentOnly: false })).tasks as Task[];
    }),
  );
}
