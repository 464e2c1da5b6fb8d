// Client side of AgentLocal.Exec (proto/agent.proto): what `convoy task exec`
// runs once it knows the task's node has its agent socket on this host.
import * as fs from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { agentLocalClient, type ExecResponse__Output } from './proto';

export interface ExecIO {
  /** Chunks of the process's input; undefined = none (the process sees EOF at once). */
  stdin?: AsyncIterable<Buffer | string>;
  stdout(chunk: Buffer): void;
  stderr(chunk: Buffer): void;
  /** With a terminal: subscribes to the local terminal's size changes; returns the unsubscribe. */
  onResize?(listener: (size: { rows: number; cols: number }) => void): () => void;
}

export interface ExecRequestOptions {
  socketPath: string;
  taskId: string;
  args: string[];
  env?: string[];
  cwd?: string;
  user?: string;
  /** A terminal of rows × cols (0 = 24 × 80) for the process; its output then all comes on stdout. */
  tty?: { rows?: number; cols?: number };
}

/** An exec the agent refused or could not run, with a one-line message (the agent's own when it gave one). */
export class ExecError extends Error {
  override name = 'ExecError';
  constructor(message: string, readonly code?: number, options?: { cause?: unknown }) {
    super(message, options);
  }
}

function describe(e: grpc.ServiceError, socketPath: string): string {
  if (e.code === grpc.status.UNAVAILABLE) return `the agent is not answering on ${socketPath} (${e.details || 'unavailable'}); is it running?`;
  return e.details || e.message;
}

/**
 * Runs args in the task's container through the agent socket; resolves to the
 * process's exit status once its output has been delivered.
 */
export async function execInTask(o: ExecRequestOptions, io: ExecIO): Promise<number> {
  if (!fs.existsSync(o.socketPath)) throw new ExecError(`no agent socket at ${o.socketPath}`);
  const client = agentLocalClient(o.socketPath);
  try {
    return await new Promise<number>((resolve, reject) => {
      const call = client.Exec();
      let exit: number | undefined;
      call.on('data', (m: ExecResponse__Output) => {
        if (m.msg === 'stdout' && m.stdout) io.stdout(m.stdout);
        else if (m.msg === 'stderr' && m.stderr) io.stderr(m.stderr);
        else if (m.msg === 'exit') exit = m.exit?.code ?? 0;
      });
      call.on('error', (e: grpc.ServiceError) => reject(new ExecError(describe(e, o.socketPath), e.code, { cause: e })));
      call.on('end', () => (exit === undefined ? reject(new ExecError('the agent ended the exec without an exit status')) : resolve(exit)));
      call.write({ start: { taskId: o.taskId, args: o.args, env: o.env ?? [], cwd: o.cwd ?? '', user: o.user ?? '', tty: !!o.tty, rows: o.tty?.rows ?? 0, cols: o.tty?.cols ?? 0 } });
      if (o.tty && io.onResize) {
        const off = io.onResize((size) => {
          if (exit === undefined) call.write({ resize: size });
        });
        call.once('close', off);
        call.once('error', off);
        call.once('end', off);
      }
      if (!io.stdin) {
        call.write({ stdinEof: true });
        call.end();
        return;
      }
      const input = io.stdin;
      void (async () => {
        try {
          for await (const chunk of input) {
            if (exit !== undefined) break;
            if (!call.write({ stdin: typeof chunk === 'string' ? Buffer.from(chunk) : chunk })) await new Promise((r) => call.once('drain', r));
          }
          call.write({ stdinEof: true });
          call.end();
        } catch {
          // the call ended (error already reported) or input failed: nothing more to send
        }
      })();
    });
  } finally {
    client.close();
  }
}
