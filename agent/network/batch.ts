// Many tasks' network commands in few processes. When a hundred tasks start
// at once, a process per command (`ip`, `nsenter ip`) costs more than the
// kernel work it asks for: every spawn forks the agent. A Coalescer runs its
// jobs in batches: the jobs submitted while a batch runs go, together, into
// the next one, so a burst costs a handful of processes and a lone task
// waits for nothing.
import { CommandError, type Sh } from './sh';

interface Pending<J, R> {
  job: J;
  resolve(r: R): void;
  reject(e: Error): void;
}

export class Coalescer<J, R> {
  private queue: Pending<J, R>[] = [];
  private running = false;

  /** runBatch answers one result or Error per job, in order; if it throws, every job of the batch fails. */
  constructor(
    private readonly runBatch: (jobs: J[]) => Promise<(R | Error)[]>,
    private readonly maxBatch = 256,
  ) {}

  submit(job: J): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.queue.push({ job, resolve, reject });
      if (!this.running) void this.pump();
    });
  }

  private async pump(): Promise<void> {
    this.running = true;
    // Jobs of the same turn of the event loop go into the first batch too.
    await new Promise((r) => setImmediate(r));
    while (this.queue.length) {
      const batch = this.queue.splice(0, this.maxBatch);
      let results: (R | Error)[];
      try {
        results = await this.runBatch(batch.map((p) => p.job));
      } catch (e) {
        const err = e instanceof Error ? e : new Error(String(e));
        results = batch.map(() => err);
      }
      batch.forEach((p, i) => {
        const r = results[i];
        if (r instanceof Error) p.reject(r);
        else p.resolve(r);
      });
    }
    this.running = false;
  }
}

/**
 * One `ip -force -batch -` for many jobs (each a list of `ip` command lines).
 * `-force` runs every line whatever fails; ip reports each failure as its
 * message followed by "Command failed -:<line>", which maps it to its job.
 */
export function ipBatch(sh: Sh): Coalescer<string[], void> {
  return new Coalescer<string[], void>(async (jobs) => {
    const lines = jobs.flat();
    if (!lines.length) return jobs.map(() => undefined);
    let stderr = '';
    try {
      await sh.run('ip', ['-force', '-batch', '-'], lines.join('\n') + '\n');
      return jobs.map(() => undefined);
    } catch (e) {
      if (!(e instanceof CommandError) || !/Command failed/.test(e.stderr)) throw e;
      stderr = e.stderr;
    }
    const failed = parseIpBatchErrors(stderr);
    const out: (void | Error)[] = [];
    let first = 1;
    for (const job of jobs) {
      const errs: string[] = [];
      for (let l = first; l < first + job.length; l++) {
        const msg = failed.get(l);
        if (msg !== undefined) errs.push(`${job[l - first]}: ${msg || 'failed'}`);
      }
      out.push(errs.length ? new CommandError(`ip ${errs.join('; ')}`, errs.join('\n'), 1) : undefined);
      first += job.length;
    }
    return out;
  });
}

/** Line number (1-based) → the message ip printed before "Command failed -:<line>". */
export function parseIpBatchErrors(stderr: string): Map<number, string> {
  const failed = new Map<number, string>();
  let msg: string[] = [];
  for (const line of stderr.split('\n')) {
    const m = /^Command failed \S*:(\d+)\s*$/.exec(line);
    if (m) {
      failed.set(Number(m[1]), msg.join(' ').trim());
      msg = [];
    } else if (line.trim()) msg.push(line.trim());
  }
  return failed;
}
