// convoy task exec [-i] [-t] [-e K=V] [-u USER] [-w DIR] TASK -- COMMAND [ARG...]
//
// Asks the manager where TASK runs (GetTask; TASK is an id, an id prefix, or
// SERVICE.SLOT for the slot's running task) and for the exec itself
// (StartExec: admin or operator only, and audited), then talks to that node's agent
// through its local socket (<run dir>/agent-<node id>.sock, run dir
// $CONVOY_RUN_DIR or /run/convoy: agent/exec, proto/agent.proto). A task on
// another host is refused with one line naming the host to run it on. Exits
// with the command's exit status, as `docker exec`. `-it` gives an
// interactive shell: a pty in the container, this terminal in raw mode.
import * as fs from 'node:fs';
import { StringDecoder } from 'node:string_decoder';
import { Command } from 'commander';
import type { Task } from '../../proto/mod';
import { CliError, grpcCode, withApi, type CliIO, type ControlApi } from '../client';
import { collect } from '../flags';
import { shortId } from '../format';

/** gRPC NOT_FOUND. */
const NOT_FOUND = 5;

interface ExecFlags {
  interactive?: boolean;
  tty?: boolean;
  env?: string[];
  user?: string;
  workdir?: string;
}

/** The task TASK names: id or id prefix (GetTask), else SERVICE.SLOT's running task. */
export async function findTask(api: ControlApi, ref: string): Promise<Task> {
  try {
    const r = await api.getTask({ task: ref });
    if (r.task) return r.task;
  } catch (e) {
    if (grpcCode(e) !== NOT_FOUND) throw e;
  }
  const m = /^(.+)\.(\d+)$/.exec(ref);
  if (m) {
    const tasks = (await api.listTasks({ service: m[1], states: ['RUNNING'] }).catch(() => ({ tasks: [] as Task[] }))).tasks;
    const t = tasks.find((x) => x.slot === Number(m[2]));
    if (t) return t;
  }
  throw new CliError(`task "${ref}" not found (give a task id, an id prefix, or SERVICE.SLOT of a running task)`);
}

/** This process's terminal, when it has one (`-t`): its size, and raw mode while the exec runs. */
export interface LocalTerminal {
  size(): { rows: number; cols: number } | undefined;
  /** Puts the terminal in raw mode; returns how to restore it. */
  raw(): () => void;
  /** Calls `listener` on every size change; returns the unsubscribe. */
  onResize(listener: (size: { rows: number; cols: number }) => void): () => void;
}

const processTerminal: LocalTerminal = {
  size: () => (process.stdout.isTTY ? { rows: process.stdout.rows, cols: process.stdout.columns } : undefined),
  raw: () => {
    if (!process.stdin.isTTY) return () => undefined;
    process.stdin.setRawMode(true);
    return () => process.stdin.setRawMode(false);
  },
  onResize: (listener) => {
    const on = () => listener({ rows: process.stdout.rows, cols: process.stdout.columns });
    process.stdout.on('resize', on);
    return () => process.stdout.off('resize', on);
  },
};

export function taskExecCommand(io: CliIO, input: () => AsyncIterable<Buffer> = () => process.stdin, terminal: LocalTerminal = processTerminal): Command {
  return new Command('exec')
    .description('Run a command in a running task (on the host where its agent runs)')
    .argument('<task>', 'task id, id prefix, or SERVICE.SLOT')
    .argument('<command...>', 'command and arguments (put -- before them when they have flags)')
    .option('-i, --interactive', 'send stdin to the command')
    .option('-t, --tty', 'allocate a terminal (with -i: an interactive shell)')
    .option('-e, --env <KEY=VALUE>', 'set an environment variable (repeatable)', collect)
    .option('-u, --user <user>', 'user[:group] or uid[:gid] in the container (default: the container\'s)')
    .option('-w, --workdir <dir>', 'working directory in the container (default: the container\'s)')
    // flags after TASK belong to the command, as `docker exec`
    .passThroughOptions()
    .action(async (ref: string, rest: string[], opts: ExecFlags, c: Command) =>
      withApi(io, c, async (api) => {
        // with passThroughOptions commander keeps the `--` that ends the verb's flags
        const args = rest[0] === '--' ? rest.slice(1) : rest;
        if (!args.length) throw new CliError('exec: no command given (convoy task exec TASK -- COMMAND [ARG...])');
        for (const e of opts.env ?? []) if (!/^[^=]+=/.test(e)) throw new CliError(`--env "${e}": expected KEY=VALUE`);
        const found = await findTask(api, ref);
        const state = found.status?.state ?? 'NEW';
        if (state !== 'RUNNING') throw new CliError(`task ${shortId(found.id)} is not running (state ${state.toLowerCase()})`);
        // The manager allows the exec by role (admin, operator) and records it before any agent is asked.
        const { task } = await api.startExec({ task: found.id, args, user: opts.user ?? '', tty: !!opts.tty });
        if (!task) throw new CliError(`task "${ref}" not found`);
        // The agent's exec client is loaded by this verb when it runs, not by every `convoy ...`.
        const { agentSocketPath, DEFAULT_RUN_DIR, execInTask, RUN_DIR_ENV } = await import('../../agent/exec/mod');
        const runDir = io.env[RUN_DIR_ENV] || DEFAULT_RUN_DIR;
        const socketPath = agentSocketPath(runDir, task.nodeId);
        if (!fs.existsSync(socketPath)) {
          const node = await api.getNode({ node: task.nodeId }).then((r) => r.node, () => undefined);
          const host = node?.description?.hostname || task.nodeId;
          const addr = node?.status?.addr ? ` (${node.status.addr})` : '';
          throw new CliError(`task ${shortId(task.id)} runs on node ${host}${addr}, not on this host (no ${socketPath}); run \`convoy task exec\` there`);
        }
        const out = new StringDecoder('utf8');
        const err = new StringDecoder('utf8');
        const restore = opts.tty && opts.interactive ? terminal.raw() : () => undefined;
        const stdin = opts.interactive ? input() : undefined;
        let code: number;
        try {
          code = await execInTask(
            { socketPath, taskId: task.id, args, env: opts.env, user: opts.user, cwd: opts.workdir, tty: opts.tty ? terminal.size() ?? {} : undefined },
            {
              stdin,
              stdout: (b) => io.out(out.write(b)),
              stderr: (b) => io.err(err.write(b)),
              onResize: opts.tty ? (l) => terminal.onResize(l) : undefined,
            },
          );
        } finally {
          restore();
          // the process ended: stop reading our input (a pending read would keep `convoy` alive)
          (stdin as { destroy?: () => void } | undefined)?.destroy?.();
        }
        io.out(out.end());
        io.err(err.end());
        if (code !== 0) io.setExitCode(code);
      }),
    );
}
