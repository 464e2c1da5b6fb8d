// What every benchmark needs: its flags, its statistics, and a bounded wait
// (a bound on I/O, never a timing assertion).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { alive, stopPid } from '../lab/procs';

/** `--name N` from argv, or dflt. */
export function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
}

/** The middle value (the mean of the two middle ones for an even count). */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

/** Nearest-rank quantile (q = 0.99: the p99); NaN for no values. */
export function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))] : NaN;
}

/** Polls cond every pollMs until it holds; throws after timeoutMs. */
export async function until(what: string, cond: () => boolean | Promise<boolean>, timeoutMs: number, pollMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`bench: gave up waiting for ${what}`);
    await new Promise((r) => setTimeout(r, pollMs));
  }
}

/** CPU seconds (user + system) a process has used so far, from /proc/<pid>/stat; NaN when it is gone. */
export function procCpuS(pid: number): number {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces) start at ") ".
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    return NaN;
  }
}

/** The direct children of a process (Linux /proc/<pid>/task/<pid>/children). */
export function childPids(pid: number): number[] {
  try {
    return fs.readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** The file in a scratch directory naming the benchmark process that owns it. */
const OWNER_FILE = 'owner.pid';
/** Present in a scratch directory a run left on purpose (KEEP=1, a manager's log after it died): never swept. */
const KEPT_FILE = 'KEPT';

/** Processes (other than this one) whose command line names a path under dir. */
export function processesUnder(dir: string): number[] {
  const needle = dir.endsWith('/') ? dir : `${dir}/`;
  const out: number[] = [];
  for (const p of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(p) || Number(p) === process.pid) continue;
    try {
      if (fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(needle)) out.push(Number(p));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/**
 * What crashed or interrupted runs of a benchmark left: every directory
 * <tmp>/<prefix>* whose owner process is gone (or that names none) and that
 * was not kept on purpose, after stopping any process still running from it
 * (an orphaned manager, its etcd). Returns the directories removed.
 */
export async function sweepScratch(prefix: string, tmp = os.tmpdir()): Promise<string[]> {
  const removed: string[] = [];
  for (const name of fs.readdirSync(tmp)) {
    if (!name.startsWith(prefix)) continue;
    const dir = path.join(tmp, name);
    if (fs.existsSync(path.join(dir, KEPT_FILE))) continue;
    let owner = 0;
    try {
      owner = Number(fs.readFileSync(path.join(dir, OWNER_FILE), 'utf8').trim());
    } catch {
      // no owner named: an older run's, or one that crashed before writing it
    }
    if (owner > 0 && owner !== process.pid && alive(owner)) continue;
    await Promise.all(processesUnder(dir).map((pid) => stopPid(pid).catch(() => undefined)));
    fs.rmSync(dir, { recursive: true, force: true });
    removed.push(dir);
  }
  return removed;
}

/** A fresh scratch directory <tmp>/<prefix>XXXXXX owned by this process (see sweepScratch). */
export function scratchDir(prefix: string, tmp = os.tmpdir()): string {
  const dir = fs.mkdtempSync(path.join(tmp, prefix));
  fs.writeFileSync(path.join(dir, OWNER_FILE), `${process.pid}\n`);
  return dir;
}

/** Marks a scratch directory as left on purpose: sweepScratch keeps it (remove it by hand). */
export function keepScratch(dir: string): void {
  fs.writeFileSync(path.join(dir, KEPT_FILE), '');
}

/** Cleanups of the running benchmark, newest last (see onInterrupt). */
const interruptCleanups: Array<{ cleanup: () => Promise<void>; graceMs: number }> = [];
/** The interrupt in progress: it ends in process.exit, so it never resolves. */
let interrupting: Promise<never> | undefined;

function interruptHandler(sig: NodeJS.Signals): void {
  if (interrupting) return;
  const code = 128 + (os.constants.signals[sig] ?? 15);
  console.error(`bench: ${sig}: stopping what this run started`);
  const graceMs = Math.max(0, ...interruptCleanups.map((c) => c.graceMs));
  const timer = setTimeout(() => process.exit(code), graceMs);
  // Newest first: what was started last (a service, a container) goes before what it runs on (the lab).
  const cleanups = [...interruptCleanups].reverse();
  interrupting = (async () => {
    for (const { cleanup } of cleanups) {
      await Promise.resolve()
        .then(cleanup)
        .catch((e) => console.error(`bench: cleanup: ${(e as Error).message}`));
    }
    clearTimeout(timer);
    return process.exit(code);
  })();
}

/**
 * On SIGINT or SIGTERM, runs cleanup once (the whole interrupt bounded by
 * the largest graceMs registered) and exits 128 + the signal's number, so
 * an interrupted benchmark stops what it started instead of leaving it
 * running. Several may be registered (a lab, then a registry): they run
 * newest first, one after the other.
 *
 * Returns the function that unregisters this one, for the run's own
 * `finally` (await it there, before the run's own cleanup): once an
 * interrupt has begun, what it returns never resolves, so the run's
 * failure (its calls fail as the interrupt stops what they talk to)
 * neither cleans up twice nor exits before the interrupt has finished.
 */
export function onInterrupt(cleanup: () => Promise<void>, graceMs = 20_000): () => Promise<void> {
  const entry = { cleanup, graceMs };
  if (interruptCleanups.length === 0) {
    process.on('SIGINT', interruptHandler);
    process.on('SIGTERM', interruptHandler);
  }
  interruptCleanups.push(entry);
  return async () => {
    if (interrupting) return interrupting;
    const i = interruptCleanups.indexOf(entry);
    if (i < 0) return;
    interruptCleanups.splice(i, 1);
    if (interruptCleanups.length === 0) {
      process.off('SIGINT', interruptHandler);
      process.off('SIGTERM', interruptHandler);
    }
  };
}
