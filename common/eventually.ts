// Waiting on a condition, not a clock: the one polling helper of the tests,
// the benchmarks and the lab (which waits the same way for the processes it
// starts). It lives in common/, not in a testing/ folder, because the lab is
// production code (`convoy lab up`) and may not import test code.
//
//   const t = await eventually(async () => (await api.listTasks({})).tasks.find(isRunning), 'a running task');

/** Default bound: on I/O, never a timing assertion. */
export const EVENTUALLY_TIMEOUT_MS = 20_000;
/**
 * Without a fixed interval the poll backs off from 1 ms to this: a condition
 * on in-process state is seen at once, one that costs a gRPC call is not asked
 * more than ten times a second.
 */
export const EVENTUALLY_MAX_POLL_MS = 100;

export interface EventuallyOptions {
  /** Gives up after this long. Default EVENTUALLY_TIMEOUT_MS. */
  timeoutMs?: number;
  /** Poll at this fixed interval (a benchmark timing an event wants a known resolution). Default: back off from 1 ms to EVENTUALLY_MAX_POLL_MS. */
  pollMs?: number;
  /** Prefix of the timeout message. Default "timed out waiting for". */
  prefix?: string;
}

type Truthy<T> = Exclude<T, undefined | null | false | 0 | ''>;

/** A condition that did not hold in time; `cause` is the last error the condition threw, if any. */
export class TimeoutError extends Error {
  override name = 'TimeoutError';
}

/**
 * Calls cond until it returns something truthy and resolves to that value. A
 * throw counts as "not yet" (a manager still starting refuses connections);
 * the last one is named when the wait gives up after `timeoutMs` (a number is
 * the timeout).
 */
export async function eventually<T>(cond: () => T | Promise<T>, what: string, opts: number | EventuallyOptions = {}): Promise<Truthy<T>> {
  const o = typeof opts === 'number' ? { timeoutMs: opts } : opts;
  const end = Date.now() + (o.timeoutMs ?? EVENTUALLY_TIMEOUT_MS);
  let poll = o.pollMs ?? 1;
  let lastErr: unknown;
  for (;;) {
    try {
      const v = await cond();
      if (v) return v as Truthy<T>;
    } catch (e) {
      lastErr = e;
    }
    if (Date.now() > end) {
      const last = lastErr === undefined ? '' : ` (last error: ${lastErr instanceof Error ? lastErr.message : String(lastErr)})`;
      throw new TimeoutError(`${o.prefix ?? 'timed out waiting for'} ${what}${last}`, { cause: lastErr });
    }
    await new Promise((r) => setTimeout(r, poll));
    if (o.pollMs === undefined) poll = Math.min(poll * 2, EVENTUALLY_MAX_POLL_MS);
  }
}
