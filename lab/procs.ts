// Processes the tests start: stopping one politely, and finding what a
// crashed earlier run left (processes re-parented to pid 1).
import type { ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';

/** SIGTERM, then SIGKILL after graceMs; resolves once the child has exited. */
export async function stopChild(child: ChildProcess | undefined, graceMs = 5_000): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill('SIGTERM');
  const t = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(t);
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
