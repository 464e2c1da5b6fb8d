// How host networking runs `ip`, `bridge`, `nft` and `sysctl`: one narrow
// interface so the same code programs this host (the agent), a network
// namespace playing a host (tests, benchmarks), or a fake (unit tests).
import { spawn } from 'node:child_process';

export class CommandError extends Error {
  override name = 'CommandError';
  constructor(message: string, readonly stderr: string, readonly code: number | null) {
    super(message);
  }
}

export interface Sh {
  /** Runs cmd with args (stdin = input when given); resolves to stdout, rejects with CommandError. */
  run(cmd: string, args: string[], input?: string): Promise<string>;
}

function exec(cmd: string, args: string[], input?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    p.stdout.on('data', (b: Buffer) => out.push(b));
    p.stderr.on('data', (b: Buffer) => err.push(b));
    p.on('error', (e) => reject(new CommandError(`${cmd}: ${e.message}`, '', null)));
    p.on('close', (code) => {
      const stderr = Buffer.concat(err).toString();
      if (code === 0) resolve(Buffer.concat(out).toString());
      else reject(new CommandError(`${cmd} ${args.join(' ').slice(0, 200)}: ${stderr.trim().split('\n').slice(0, 6).join('; ') || `exit ${code}`}`, stderr, code));
    });
    p.stdin.on('error', () => undefined);
    p.stdin.end(input ?? '');
  });
}

/** Commands in this process's network namespace. */
export const hostSh: Sh = { run: exec };

/**
 * Commands inside the named network namespace. nsenter (not `ip netns exec`)
 * keeps this machine's mount namespace, so namespaces the command creates
 * (`ip netns add`) are visible to everyone under /run/netns.
 */
export function netnsSh(name: string): Sh {
  return { run: (cmd, args, input) => exec('nsenter', [`--net=/run/netns/${name}`, '--', cmd, ...args], input) };
}

/** argv that runs cmd inside the named network namespace (for long-running processes). */
export function inNetns(name: string, cmd: string, args: string[]): [string, string[]] {
  return ['nsenter', [`--net=/run/netns/${name}`, '--', cmd, ...args]];
}
