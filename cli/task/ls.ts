// convoy task ls (and `convoy service ps`, which is the same listing for some
// services): ID, NAME (service.slot), IMAGE, NODE, DESIRED STATE, CURRENT
// STATE ("Running 5 seconds ago"), ERROR, PORTS. As `docker service ps`, the
// history of a slot follows its newest task, marked "\_".
import { Command } from 'commander';
import type { Node, Task, TaskStateName } from '../../proto/mod';
// Not through proto/mod: that module loads grpc-js, which the CLI does not (proto/control-h2.ts).
import { stateRank } from '../../proto/task-state';
import { CliError, withApi, type CliIO, type ControlApi, type ControlRequest } from '../client';
import { collect } from '../flags';
import {
  addOutputOptions,
  clip,
  formatPort,
  json,
  nodeHostname,
  parseFormat,
  shortId,
  table,
  taskCurrentState,
  taskError,
  taskName,
  titleCase,
  type OutputFlags,
} from '../format';

/** Width of the ERROR column unless --no-trunc. */
const ERROR_WIDTH = 50;

export interface TaskListFlags extends OutputFlags {
  filter?: string[];
}

type TaskQuery = ControlRequest<'listTasks'>;

const STATE_NAMES = new Set<string>(['NEW', 'PENDING', 'ASSIGNED', 'ACCEPTED', 'PREPARING', 'STARTING', 'RUNNING', 'COMPLETE', 'SHUTDOWN', 'FAILED', 'REJECTED', 'REMOVE', 'ORPHANED']);

function stateName(v: string, flag: string): string {
  const s = v.trim().toUpperCase();
  if (!STATE_NAMES.has(s)) throw new CliError(`${flag}: "${v}" is not a task state (running, shutdown, failed, ...)`);
  return s;
}

/**
 * Docker's ps filters: desired-state=running|shutdown|accepted,
 * node=ID|HOSTNAME, state=running (observed), service=NAME (task ls only).
 */
export function taskFilters(filters: string[], base: TaskQuery = {}): TaskQuery {
  const q: TaskQuery = { states: [], desiredStates: [], ...base };
  for (const f of filters) {
    const i = f.indexOf('=');
    const k = i < 0 ? f : f.slice(0, i);
    const v = i < 0 ? '' : f.slice(i + 1);
    switch (k) {
      case 'desired-state':
        q.desiredStates = [...(q.desiredStates ?? []), stateName(v, '--filter desired-state')];
        break;
      case 'state':
        q.states = [...(q.states ?? []), stateName(v, '--filter state')];
        break;
      case 'node':
        q.node = v;
        break;
      case 'service':
        q.service = v;
        break;
      default:
        throw new CliError(`--filter: "${f}": unknown filter (use desired-state=, state=, node=, service=)`);
    }
  }
  return q;
}

/** Newest first within a slot; slots in order; services by name. */
export function orderTasks(tasks: Task[]): { task: Task; history: boolean }[] {
  const slotKey = (t: Task) => `${t.serviceName}\u0000${t.slot ? String(t.slot).padStart(10, '0') : t.nodeId}`;
  const when = (t: Task) => Number(t.meta?.createdAt ?? 0) || Number(t.status?.timestamp ?? 0);
  const sorted = [...tasks].sort((a, b) => {
    const ka = slotKey(a);
    const kb = slotKey(b);
    if (ka !== kb) return ka < kb ? -1 : 1;
    // Live task first, then newest first.
    const la = a.desiredState === 'RUNNING' ? 0 : 1;
    const lb = b.desiredState === 'RUNNING' ? 0 : 1;
    if (la !== lb) return la - lb;
    return when(b) - when(a);
  });
  let prev = '';
  return sorted.map((task) => {
    const k = slotKey(task);
    const history = k === prev;
    prev = k;
    return { task, history };
  });
}

/**
 * The task table. `addrs` (node id → address) makes a host-mode published port
 * show where the task is reachable ("10.41.0.12:20080->80/tcp (host)").
 */
export function renderTasks(tasks: Task[], nodes: Map<string, string>, now: number, noTrunc = false, addrs: Map<string, string> = new Map()): string {
  const rows = orderTasks(tasks).map(({ task: t, history }) => [
    shortId(t.id, noTrunc),
    `${history ? ' \\_ ' : ''}${taskName(t, noTrunc)}`,
    t.spec?.container?.image ?? '',
    nodes.get(t.nodeId) ?? shortId(t.nodeId, noTrunc),
    titleCase((t.desiredState as TaskStateName) || 'NEW'),
    taskCurrentState(t, now),
    noTrunc ? taskError(t) : clip(taskError(t), ERROR_WIDTH),
    (t.endpointPorts ?? [])
      .map((p) => {
        const addr = p.publishMode === 'HOST' ? addrs.get(t.nodeId) : undefined;
        return addr ? formatPort(p).replace(/^\*:/, `${addr}:`) : formatPort(p);
      })
      .join(', '),
  ]);
  return table(['ID', 'NAME', 'IMAGE', 'NODE', 'DESIRED STATE', 'CURRENT STATE', 'ERROR', 'PORTS'], rows);
}

/** node id → hostname (the NODE column) and node id → address; empty (ids stay) when nodes cannot be listed. */
async function nodeNames(api: ControlApi): Promise<{ names: Map<string, string>; addrs: Map<string, string> }> {
  try {
    const r = await api.listNodes({});
    return { names: new Map(r.nodes.map((n: Node) => [n.id, nodeHostname(n)])), addrs: new Map(r.nodes.map((n: Node) => [n.id, n.status?.addr ?? ''])) };
  } catch {
    return { names: new Map(), addrs: new Map() };
  }
}

/** Lists tasks for each query (one per service, or one for all) and prints them. */
export async function printTasks(io: CliIO, api: ControlApi, queries: TaskQuery[], opts: TaskListFlags): Promise<void> {
  const format = parseFormat(opts.format);
  const seen = new Set<string>();
  const tasks: Task[] = [];
  for (const q of queries) {
    for (const t of (await api.listTasks(q)).tasks) {
      if (!seen.has(t.id)) tasks.push(t);
      seen.add(t.id);
    }
  }
  const noTrunc = opts.trunc === false;
  if (opts.quiet) io.out(orderTasks(tasks).map(({ task }) => `${shortId(task.id, noTrunc)}\n`).join(''));
  else if (format === 'json') io.out(json(orderTasks(tasks).map(({ task }) => task)));
  else {
    const n = await nodeNames(api);
    io.out(renderTasks(tasks, n.names, io.now(), noTrunc, n.addrs));
  }
}

/** Tasks still to run or running sort before the ones that ended (for callers that pick one). */
export function liveFirst(a: Task, b: Task): number {
  return stateRank(a.status?.state ?? 'NEW') - stateRank(b.status?.state ?? 'NEW');
}

export function taskLsCommand(io: CliIO): Command {
  const cmd = new Command('ls').alias('list').description('List tasks (of every service, or filtered)');
  addOutputOptions(cmd)
    .option('-f, --filter <filter>', 'desired-state=running, state=failed, node=HOST, service=NAME (repeatable)', collect)
    .option('--service <service>', 'only this service')
    .option('--node <node>', 'only this node (id or hostname)');
  return cmd.action(async (opts: TaskListFlags & { service?: string; node?: string }, c: Command) =>
    withApi(io, c, async (api) => {
      const base: TaskQuery = {};
      if (opts.service) base.service = opts.service;
      if (opts.node) base.node = opts.node;
      await printTasks(io, api, [taskFilters(opts.filter ?? [], base)], opts);
    }),
  );
}
