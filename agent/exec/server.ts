// The agent's local socket: AgentLocal.Exec (proto/agent.proto) on
// <run dir>/agent-<node id>.sock, for `convoy task exec` on the same host.
// One gRPC server per agent, bound to a unix socket (0600), never to TCP.
import { LOCAL_SERVER_OPTIONS } from '../../proto/grpc-limits';
import type { ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { errMsg, nullLogger, type Logger } from '../../common/logger';
import { resizeExec } from '../runtime/runtime';
import { agentLocalPackage, type AgentLocalHandlers, type ExecRequest__Output, type ExecResponse } from './proto';

/** What Exec needs of the executor (ContainerExecutor.exec). */
export interface ExecTarget {
  exec(taskId: string, opts: { args: string[]; env?: string[]; cwd?: string; user?: string; tty?: { rows?: number; cols?: number } }): Promise<ChildProcess>;
}

export interface ExecServerOptions {
  socketPath: string;
  /** undefined: the node's executor has no containers (hollow): Exec answers UNIMPLEMENTED. */
  target: ExecTarget | undefined;
  logger?: Logger;
}

export interface ExecServer {
  readonly socketPath: string;
  close(): Promise<void>;
}

/** After SIGHUP (client gone), how long the process gets before SIGKILL. */
export const HANGUP_GRACE_MS = 2_000;

type ExecCall = grpc.ServerDuplexStream<ExecRequest__Output, ExecResponse>;

function fail(call: ExecCall, code: grpc.status, details: string): void {
  call.emit('error', { code, details });
}

/** gRPC status for an exec failure: the runtime's messages say which case it is. */
function statusOf(e: unknown): grpc.status {
  const m = errMsg(e);
  if (/no container|not found|no such|ENOENT/i.test(m)) return grpc.status.NOT_FOUND;
  if (/not running/i.test(m)) return grpc.status.FAILED_PRECONDITION;
  return grpc.status.INTERNAL;
}

/** Task ids are container ids on the node (agent/runtime: [A-Za-z0-9][A-Za-z0-9_.-]*). */
const TASK_ID_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

const SIGNALS: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGKILL: 9, SIGTERM: 15 };

function handleExec(call: ExecCall, target: ExecTarget | undefined, log: Logger): void {
  let child: ChildProcess | undefined;
  let started = false;
  let finished = false;
  const pendingStdin: ExecRequest__Output[] = [];

  const feed = (m: ExecRequest__Output) => {
    if (!child?.stdin) return;
    if (m.msg === 'stdin' && m.stdin) child.stdin.write(m.stdin);
    else if (m.msg === 'stdinEof') child.stdin.end();
    else if (m.msg === 'resize' && m.resize) resizeExec(child, m.resize.rows, m.resize.cols);
  };

  const hangUp = () => {
    if (!child || finished) return;
    child.kill('SIGHUP');
    setTimeout(() => {
      if (!finished) child?.kill('SIGKILL');
    }, HANGUP_GRACE_MS).unref();
  };
  call.on('cancelled', hangUp);

  call.on('data', (m: ExecRequest__Output) => {
    if (!started) {
      started = true;
      if (m.msg !== 'start' || !m.start) return fail(call, grpc.status.INVALID_ARGUMENT, 'the first Exec message must be start');
      const s = m.start;
      if (!TASK_ID_RE.test(s.taskId)) return fail(call, grpc.status.INVALID_ARGUMENT, `start.task_id: ${JSON.stringify(s.taskId)} is not a task id`);
      if (!s.args.length || !s.args[0]) return fail(call, grpc.status.INVALID_ARGUMENT, 'start.args is empty: no command to run');
      if (!target) return fail(call, grpc.status.UNIMPLEMENTED, "this node's executor runs no containers (hollow)");
      target
        .exec(s.taskId, {
          args: s.args,
          // as docker exec -t: a terminal type unless the caller gave one
          env: s.tty && !s.env.some((e) => e.startsWith('TERM=')) ? [...s.env, 'TERM=xterm'] : s.env,
          cwd: s.cwd || undefined,
          user: s.user || undefined,
          tty: s.tty ? { rows: s.rows, cols: s.cols } : undefined,
        })
        .then((c) => {
          child = c;
          log.info('exec started', { 'task.id': s.taskId, cmd: s.args[0], pid: c.pid });
          c.stdin?.on('error', () => undefined); // the process may exit before reading its input
          const pipe = (stream: NodeJS.ReadableStream | null, key: 'stdout' | 'stderr') => {
            stream?.on('data', (chunk: Buffer) => {
              if (!call.write({ [key]: chunk }) && !finished) {
                stream.pause();
                call.once('drain', () => stream.resume());
              }
            });
          };
          pipe(c.stdout, 'stdout');
          pipe(c.stderr, 'stderr');
          c.once('error', (e) => {
            if (finished) return;
            finished = true;
            fail(call, grpc.status.INTERNAL, `exec in task ${s.taskId}: ${errMsg(e)}`);
          });
          c.once('close', (code, signal) => {
            if (finished) return;
            finished = true;
            const status = code ?? (signal ? 128 + (SIGNALS[signal] ?? 0) : 255);
            if (!call.cancelled) {
              call.write({ exit: { code: status } });
              call.end();
            }
            log.info('exec ended', { 'task.id': s.taskId, code: status });
          });
          for (const p of pendingStdin.splice(0)) feed(p);
          if (call.cancelled) hangUp();
        })
        .catch((e: unknown) => {
          finished = true;
          fail(call, statusOf(e), `task ${s.taskId}: ${errMsg(e)}`);
        });
      return;
    }
    if (m.msg === 'start') return fail(call, grpc.status.INVALID_ARGUMENT, 'a second start message');
    if (child) feed(m);
    else pendingStdin.push(m);
  });
  // the client closed its side without stdin_eof: same thing
  call.on('end', () => {
    if (child) child.stdin?.end();
    else pendingStdin.push({ msg: 'stdinEof', stdinEof: true });
  });
}

/** A socket younger than this is never taken for stale (its agent may be between bind and listen). */
const STALE_MIN_AGE_MS = 10_000;

/**
 * Removes agent sockets of `dir` nobody listens on any more (agents killed
 * with kill -9 cannot remove theirs). Returns the paths removed.
 */
export async function sweepStaleSockets(dir: string, now = Date.now()): Promise<string[]> {
  const removed: string[] = [];
  for (const name of fs.readdirSync(dir).filter((n) => /^agent-.*\.sock$/.test(n))) {
    const p = path.join(dir, name);
    try {
      const st = fs.lstatSync(p);
      if (!st.isSocket() || now - st.mtimeMs < STALE_MIN_AGE_MS) continue;
    } catch {
      continue;
    }
    const refused = await new Promise<boolean>((resolve) => {
      const s = net.connect(p);
      s.once('connect', () => {
        s.destroy();
        resolve(false);
      });
      s.once('error', (e: NodeJS.ErrnoException) => resolve(e.code === 'ECONNREFUSED'));
    });
    if (refused) {
      fs.rmSync(p, { force: true });
      removed.push(p);
    }
  }
  return removed;
}

/**
 * The socket's directory must be this process's (root's) and writable by no
 * one else: in a directory others can write to, they could replace the
 * socket and catch the CLI's exec (its stdin) with a listener of their own.
 */
export function checkRunDir(dir: string): void {
  const st = fs.lstatSync(dir);
  const uid = process.getuid?.() ?? 0;
  if (!st.isDirectory()) throw new Error(`agent socket directory ${dir}: not a directory (a symlink?)`);
  if (st.uid !== uid || (st.mode & 0o022) !== 0)
    throw new Error(`agent socket directory ${dir}: must be owned by uid ${uid} and writable by no group or other user (it is uid ${st.uid}, mode ${(st.mode & 0o7777).toString(8)})`);
}

/**
 * Serves AgentLocal on `socketPath` (a stale socket of a killed agent is
 * replaced). Resolves once listening.
 */
export async function startExecServer(opts: ExecServerOptions): Promise<ExecServer> {
  const log = opts.logger ?? nullLogger;
  const dir = path.dirname(opts.socketPath);
  fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
  checkRunDir(dir);
  fs.rmSync(opts.socketPath, { force: true });
  const swept = await sweepStaleSockets(path.dirname(opts.socketPath)).catch(() => []);
  if (swept.length) log.info('removed stale agent sockets', { paths: swept.join(' ') });
  const server = new grpc.Server(LOCAL_SERVER_OPTIONS);
  const handlers: AgentLocalHandlers = { Exec: (call) => handleExec(call, opts.target, log) };
  server.addService(agentLocalPackage().convoy.AgentLocal.service, handlers);
  // Bound in a private 0700 directory, made 0600, then renamed into place: there is no moment at
  // which anyone but root could connect (a bind makes the socket with the umask's mode).
  const tmp = fs.mkdtempSync(path.join(dir, '.as-'));
  try {
    const tmpSock = path.join(tmp, 's');
    await new Promise<void>((resolve, reject) => server.bindAsync(`unix://${tmpSock}`, grpc.ServerCredentials.createInsecure(), (e) => (e ? reject(e) : resolve())));
    fs.chmodSync(tmpSock, 0o600);
    fs.renameSync(tmpSock, opts.socketPath);
  } catch (e) {
    server.forceShutdown();
    throw e;
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  log.info('local socket listening', { path: opts.socketPath });
  let closed: Promise<void> | undefined;
  return {
    socketPath: opts.socketPath,
    close() {
      closed ??= new Promise<void>((resolve) => {
        server.tryShutdown(() => resolve());
        // running execs end with the agent (their clients see UNAVAILABLE)
        setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, 1_000).unref();
      }).then(() => fs.rmSync(opts.socketPath, { force: true }));
      return closed;
    },
  };
}
