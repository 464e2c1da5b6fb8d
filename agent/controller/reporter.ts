// Batched task status reporting. Controllers call report() on every
// transition; the reporter keeps only the latest status per task (a task that
// went ACCEPTED → PREPARING → STARTING → RUNNING inside one flush interval is
// sent once, as RUNNING: the manager only needs the newest, it refuses to go
// backwards anyway) and sends them in one UpdateTaskStatus call.
import type { TaskStatus } from '../../proto/mod';
import { errMsg, nullLogger, type Logger } from '../../common/logger';

/**
 * Flush this long after the first pending update: one RPC per ~100 ms per
 * node instead of one per transition. Updates that arrive while a batch is
 * in flight wait for the next interval too (a timed flush sends one batch;
 * only flush() sends everything back to back): under a burst of assignments
 * an agent sent its next batch the moment the last was answered, an RPC per
 * round trip per node, each its own TLS records on the manager.
 */
export const FLUSH_INTERVAL_MS = 100;
/** Flush at once when this many tasks have a pending status (also the size cap of one RPC). */
export const MAX_BATCH = 200;
/**
 * Hard cap on tasks with a pending status. The map is keyed by task id so it
 * is already bounded by the tasks on the node; the cap guards against a long
 * outage with heavy churn. What is dropped is the oldest entry, and the next
 * COMPLETE assignments set makes the controllers report again.
 */
export const MAX_PENDING = 10_000;
/** Retry delay after a failed send grows to this ceiling (reconnection usually wins first). */
export const RETRY_MAX_MS = 2_000;

export interface StatusUpdate {
  taskId: string;
  status: TaskStatus;
}

/** Sends one batch; rejects when the batch was not accepted (it is retried). */
export type SendBatch = (updates: StatusUpdate[]) => Promise<void>;

export interface ReporterOptions {
  flushIntervalMs?: number;
  maxBatch?: number;
  maxPending?: number;
  logger?: Logger;
}

export class StatusReporter {
  private pending = new Map<string, TaskStatus>();
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> | undefined;
  private failures = 0;
  private closed = false;
  private readonly flushIntervalMs: number;
  private readonly maxBatch: number;
  private readonly maxPending: number;
  private readonly log: Logger;
  /** Updates sent successfully (for metrics and tests). */
  sentUpdates = 0;
  sentBatches = 0;
  dropped = 0;

  constructor(
    private readonly send: SendBatch,
    opts: ReporterOptions = {},
  ) {
    this.flushIntervalMs = opts.flushIntervalMs ?? FLUSH_INTERVAL_MS;
    this.maxBatch = opts.maxBatch ?? MAX_BATCH;
    this.maxPending = opts.maxPending ?? MAX_PENDING;
    this.log = opts.logger ?? nullLogger;
  }

  /** Number of tasks whose latest status has not been accepted by a manager yet. */
  get size(): number {
    return this.pending.size;
  }

  report(taskId: string, status: TaskStatus): void {
    if (this.closed) return;
    // Re-insert so Map order is "least recently updated first" (what the cap drops).
    this.pending.delete(taskId);
    this.pending.set(taskId, status);
    while (this.pending.size > this.maxPending) {
      const oldest = this.pending.keys().next().value as string;
      this.pending.delete(oldest);
      this.dropped++;
      this.log.warn('status backlog full, dropping oldest update', { 'task.id': oldest });
    }
    if (this.pending.size >= this.maxBatch) void this.startFlush(false);
    else this.schedule(this.flushIntervalMs);
  }

  /** Try now (e.g. right after a new session is established). */
  kick(): void {
    if (this.pending.size > 0 && !this.closed) {
      this.failures = 0;
      this.schedule(0, true);
    }
  }

  /** Sends everything pending, one batch after the other; resolves when done or a send fails. */
  flush(): Promise<void> {
    return this.startFlush(true);
  }

  /** all: every pending batch back to back (flush()); otherwise full batches only, the rest at the next interval. */
  private startFlush(all: boolean): Promise<void> {
    if (this.flushing) return this.flushing;
    this.clearTimer();
    this.flushing = this.drain(all).finally(() => {
      this.flushing = undefined;
    });
    return this.flushing;
  }

  close(): void {
    this.closed = true;
    this.clearTimer();
  }

  private async drain(all: boolean): Promise<void> {
    for (let first = true; this.pending.size > 0 && !this.closed; first = false) {
      // Paced: after the first batch only full ones go at once; a partial one waits an interval.
      if (!all && !first && this.pending.size < this.maxBatch) {
        this.schedule(this.flushIntervalMs, true);
        return;
      }
      const batch: StatusUpdate[] = [];
      for (const [taskId, status] of this.pending) {
        batch.push({ taskId, status });
        if (batch.length >= this.maxBatch) break;
      }
      for (const u of batch) this.pending.delete(u.taskId);
      try {
        await this.send(batch);
        this.failures = 0;
        this.sentUpdates += batch.length;
        this.sentBatches++;
      } catch (e) {
        // Put back what was not superseded meanwhile, ahead of newer entries.
        const newer = this.pending;
        this.pending = new Map();
        for (const u of batch) if (!newer.has(u.taskId)) this.pending.set(u.taskId, u.status);
        for (const [k, v] of newer) this.pending.set(k, v);
        this.failures++;
        const delay = Math.min(RETRY_MAX_MS, this.flushIntervalMs * Math.pow(2, this.failures));
        this.log.debug('status update failed, will retry', { err: errMsg(e), 'retry.ms': delay, pending: this.pending.size });
        this.schedule(delay, true);
        return;
      }
    }
  }

  private schedule(ms: number, replace = false): void {
    if (this.closed) return;
    if (this.timer && !replace) return;
    this.clearTimer();
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.startFlush(false);
    }, ms);
    this.timer.unref?.();
  }

  private clearTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }
}
