// Processes the lab and the tests start: started detached and recorded by
// pid (the lab's, so they outlive `convoy lab up`), stopped by pid or
// politely as children, and what a crashed earlier run left (processes
// re-parented to pid 1).
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DEFAULT_STOP_GRACE_MS } from '../proto/defaults';

/** Default grace of stopPid: a lab process gets what a container gets (Docker's stop). */
const STOP_GRACE_MS = DEFAULT_STOP_GRACE_MS;
/** How often stopPid looks whether the process is gone. */
const STOP_POLL_MS = 50;

/**
 * Starts cmd detached from this process (its own session, stdio to
 * <dir>/<name>.log, appended): it outlives the caller; returns its pid.
 */
export function startDetached(dir: string, name: string, cmd: string, args: string[], env?: NodeJS.ProcessEnv): number {
  const log = fs.openSync(path.join(dir, `${name}.log`), 'a');
  const child = spawn(cmd, args, { detached: true, stdio: ['ignore', log, log], env: env ? { ...process.env, ...env } : process.env });
  fs.closeSync(log);
  child.unref();
  return child.pid!;
}

/** True while a process with this pid exists (signal 0). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** SIGTERM, then SIGKILL after graceMs, to a process that is not our child; resolves once it is gone. */
export async function stopPid(pid: number, graceMs = STOP_GRACE_MS): Promise<void> {
  if (!alive(pid)) return;
  process.kill(pid, 'SIGTERM');
  const end = Date.now() + graceMs;
  while (alive(pid) && Date.now() < end) await new Promise((r) => setTimeout(r, STOP_POLL_MS));
  if (alive(pid)) process.kill(pid, 'SIGKILL');
}

export interface Orphan {
  pid: number;
  /** argv. */
  cmdline: string[];
  /** Its environment, read on demand. */
  environ(): string[];
}

/** Processes whose parent is pid 1 (what a killed test run's children become). */
export function orphans(): Orphan[] {
  const out: Orphan[] = [];
  for (const p of fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const stat = fs.readFileSync(`/proc/${p}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) !== 1) continue;
      out.push({ pid: Number(p), cmdline: fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0'), environ: () => fs.readFileSync(`/proc/${p}/environ`, 'utf8').split('\0') });
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** SIGKILLs every orphan `pick` chooses; returns them. */
export function killOrphans(pick: (o: Orphan) => boolean): Orphan[] {
  const killed: Orphan[] = [];
  for (const o of orphans()) {
    try {
      if (!pick(o)) continue;
      process.kill(o.pid, 'SIGKILL');
      killed.push(o);
    } catch {
      // gone, or not ours to read
    }
  }
  return killed;
}
