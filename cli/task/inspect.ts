// convoy task inspect TASK...: JSON, or --pretty.
import { Command } from 'commander';
import type { Task } from '../../proto/mod';
import { withApi, type CliIO } from '../client';
import { ago, formatPorts, json, keyValues, taskCurrentState, taskName, titleCase } from '../format';

export function prettyTask(t: Task, now: number): string {
  return keyValues([
    ['ID', t.id],
    ['Name', taskName(t, true)],
    ['Service', `${t.serviceName} (${t.serviceId})`],
    ['Node', t.nodeId || '-'],
    ['Image', t.spec?.container?.image ?? ''],
    ['Desired state', titleCase(t.desiredState || 'NEW')],
    ['State', taskCurrentState(t, now)],
    ['Message', t.status?.message ?? ''],
    ['Error', t.status?.err ?? ''],
    ['Exit code', String(t.status?.exitCode ?? 0)],
    ['Health', t.status?.health || 'none'],
    ['Created', ago(Number(t.meta?.createdAt ?? 0), now)],
    ['Attempt', String(t.attempt)],
    ['Addresses', t.networks.flatMap((n) => n.addresses.map((a) => `${a} (${n.networkName})`)).join(', ')],
    ['Ports', formatPorts(t.endpointPorts)],
  ]);
}

export function taskInspectCommand(io: CliIO): Command {
  return new Command('inspect')
    .description('Display detailed information on one or more tasks (JSON, or --pretty)')
    .argument('<task...>', 'task id or id prefix')
    .option('--pretty', 'human-readable instead of JSON')
    .action(async (tasks: string[], opts: { pretty?: boolean }, c: Command) =>
      withApi(io, c, async (api) => {
        const found: Task[] = [];
        for (const t of tasks) {
          const r = await api.getTask({ task: t });
          if (r.task) found.push(r.task);
        }
        io.out(opts.pretty ? found.map((t) => prettyTask(t, io.now())).join('\n') : json(found));
      }),
    );
}
