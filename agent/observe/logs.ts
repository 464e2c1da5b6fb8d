// Serving `convoy service logs` / `convoy task logs`: the runtime writes every
// task's stdout/stderr as JSON lines ({"time","stream","log"}) into
// <state>/logs/<task>.log, rotated to .1, .2 ...; the agent answers a
// LogRequest (proto/events.ts) by publishing LogBatch messages to the
// requester's inbox, then, with follow, the new lines as they come until the
// requester stops sending keepalives.
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import { LOG_KEEPALIVE_TIMEOUT_MS, type LogBatch, type LogLine, type LogRequest } from '../../proto/events';
import { errMsg, type Logger } from '../../common/logger';

/** Lines per LogBatch message (keeps messages well under NATS' 1 MiB default). */
export const LOG_BATCH_LINES = 200;
/** How often a followed log file is polled for new lines. */
export const FOLLOW_POLL_MS = 250;
/** Rotated files looked at, newest first (.1, .2, ...). */
const MAX_ROTATED = 9;
/** Follow sessions per agent at once; more are refused (bounded work for a misbehaving client). */
export const MAX_FOLLOWERS = 64;
/**
 * History reads at once: each reads a task's log files (up to 10 rotated
 * files of 10 MiB) into memory, so their number bounds the agent's memory
 * under a burst of `convoy service logs`. Requests beyond wait, up to
 * MAX_QUEUED; past that they are answered `busy` at once.
 */
export const MAX_CONCURRENT_READS = 4;
export const MAX_QUEUED = 64;
/** A followed file's unterminated tail kept between polls; the runtime splits lines at 16 KiB, so only a corrupt file gets near it. */
export const MAX_PARTIAL_BYTES = 1024 * 1024;

export interface LogServerDeps {
  nodeId: () => string;
  /** Path of a task's current log file; undefined = this executor keeps no logs (hollow). */
  logPath: (taskId: string) => string | undefined;
  publish: (subject: string, data: LogBatch) => void;
  /** Subscribes to keepalives; returns an unsubscribe function. */
  subscribe: (subject: string, cb: () => void) => () => void;
  logger: Logger;
}

export function parseLogLine(taskId: string, text: string): LogLine | undefined {
  if (!text) return undefined;
  try {
    const r = JSON.parse(text) as { time?: unknown; stream?: unknown; log?: unknown };
    if (typeof r.log !== 'string') return undefined;
    const time = typeof r.time === 'string' ? Date.parse(r.time) : NaN;
    return { taskId, time: Number.isFinite(time) ? time : 0, stream: r.stream === 'stderr' ? 'stderr' : 'stdout', line: r.log.replace(/\r?\n$/, '') };
  } catch {
    return undefined; // a line cut by rotation or a crash
  }
}

/** Task ids as the runtime names its files; anything else (e.g. "../x") never reaches a path. */
const TASK_ID_RE = /^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$/;
/** Tasks per request (a service of 1,000 replicas on one node is already far beyond a node's 254). */
const MAX_TASKS_PER_REQUEST = 1_000;

function isRequest(x: unknown): x is LogRequest {
  const r = x as Partial<LogRequest> | null;
  return (
    !!r &&
    Array.isArray(r.taskIds) &&
    r.taskIds.length <= MAX_TASKS_PER_REQUEST &&
    r.taskIds.every((t) => typeof t === 'string') &&
    typeof r.inbox === 'string' &&
    r.inbox.length > 0 &&
    (r.tail === undefined || typeof r.tail === 'number') &&
    (r.since === undefined || typeof r.since === 'number')
  );
}

export class LogServer {
  private followers = 0;
  private reading = 0;
  private readonly queue: (() => void)[] = [];
  private readonly stops = new Set<() => void>();

  constructor(private readonly d: LogServerDeps) {}

  /** Requests being read now and waiting (tests, metrics). */
  get load(): { reading: number; queued: number } {
    return { reading: this.reading, queued: this.queue.length };
  }

  handle(req: unknown): void {
    if (!isRequest(req)) return;
    if (this.reading >= MAX_CONCURRENT_READS && this.queue.length >= MAX_QUEUED) {
      this.d.publish(req.inbox, { nodeId: this.d.nodeId(), lines: [], busy: req.taskIds });
      return;
    }
    const run = () => {
      this.reading++;
      void this.serve(req)
        .catch((e: unknown) => this.d.logger.warn('log request failed', { err: errMsg(e) }))
        .finally(() => {
          this.reading--;
          this.queue.shift()?.();
        });
    };
    if (this.reading < MAX_CONCURRENT_READS) run();
    else this.queue.push(run);
  }

  private send(inbox: string, lines: LogLine[], extra: Omit<LogBatch, 'nodeId' | 'lines'> = {}): void {
    for (let i = 0; i < lines.length; i += LOG_BATCH_LINES) this.d.publish(inbox, { nodeId: this.d.nodeId(), lines: lines.slice(i, i + LOG_BATCH_LINES) });
    if (extra.done?.length || extra.missing?.length) this.d.publish(inbox, { nodeId: this.d.nodeId(), lines: [], ...extra });
  }

  private async serve(req: LogRequest): Promise<void> {
    const follow: { taskId: string; path: string; offset: number }[] = [];
    const missing: string[] = [];
    const done: string[] = [];
    for (const taskId of req.taskIds) {
      const p = TASK_ID_RE.test(taskId) ? this.d.logPath(taskId) : undefined;
      if (!p) {
        missing.push(taskId);
        continue;
      }
      const { lines, size, found } = await readHistory(taskId, p);
      if (!found) {
        missing.push(taskId);
        continue;
      }
      let sel = req.since !== undefined ? lines.filter((l) => l.time >= (req.since as number)) : lines;
      if (req.tail !== undefined && req.tail >= 0) sel = req.tail === 0 ? [] : sel.slice(-req.tail);
      this.send(req.inbox, sel);
      done.push(taskId);
      if (req.follow) follow.push({ taskId, path: p, offset: size });
    }
    this.send(req.inbox, [], { done, missing });
    if (!follow.length) return;
    if (this.followers >= MAX_FOLLOWERS) {
      this.d.logger.warn('too many log followers, request not followed', { max: MAX_FOLLOWERS });
      return;
    }
    this.follow(req.inbox, follow);
  }

  private follow(inbox: string, files: { taskId: string; path: string; offset: number }[]): void {
    this.followers++;
    let lastKeepalive = Date.now();
    const unsubscribe = this.d.subscribe(`${inbox}.keepalive`, () => (lastKeepalive = Date.now()));
    const partial = new Map<string, string>();
    let busy = false;
    const timer = setInterval(() => {
      if (Date.now() - lastKeepalive > LOG_KEEPALIVE_TIMEOUT_MS) return stop();
      if (busy) return;
      busy = true;
      void (async () => {
        const out: LogLine[] = [];
        for (const f of files) {
          const st = await fsp.stat(f.path).catch(() => undefined);
          if (!st) continue;
          if (st.size < f.offset) f.offset = 0; // rotated
          if (st.size === f.offset) continue;
          const fh = await fsp.open(f.path, 'r');
          try {
            const len = Math.min(st.size - f.offset, 4 * 1024 * 1024);
            const buf = Buffer.alloc(len);
            const { bytesRead } = await fh.read(buf, 0, len, f.offset);
            f.offset += bytesRead;
            const text = (partial.get(f.taskId) ?? '') + buf.subarray(0, bytesRead).toString('utf8');
            const parts = text.split('\n');
            const rest = parts.pop() ?? '';
            partial.set(f.taskId, rest.length > MAX_PARTIAL_BYTES ? '' : rest);
            for (const p of parts) {
              const l = parseLogLine(f.taskId, p);
              if (l) out.push(l);
            }
          } finally {
            await fh.close();
          }
        }
        if (out.length) this.send(inbox, out);
      })()
        .catch((e: unknown) => this.d.logger.debug('log follow read failed', { err: errMsg(e) }))
        .finally(() => (busy = false));
    }, FOLLOW_POLL_MS);
    const stop = () => {
      if (!this.stops.has(stop)) return;
      this.stops.delete(stop);
      clearInterval(timer);
      unsubscribe();
      this.followers--;
    };
    this.stops.add(stop);
  }

  close(): void {
    for (const s of [...this.stops]) s();
  }
}

/** Every line of a task's log files, oldest first, and the size of the current file. */
export async function readHistory(taskId: string, p: string): Promise<{ lines: LogLine[]; size: number; found: boolean }> {
  const lines: LogLine[] = [];
  let found = false;
  for (let k = MAX_ROTATED; k >= 1; k--) {
    const text = await fsp.readFile(`${p}.${k}`, 'utf8').catch(() => undefined);
    if (text === undefined) continue;
    found = true;
    for (const t of text.split('\n')) {
      const l = parseLogLine(taskId, t);
      if (l) lines.push(l);
    }
  }
  let size = 0;
  if (fs.existsSync(p)) {
    found = true;
    const buf = await fsp.readFile(p);
    // Only complete lines: the follower continues from the last newline.
    const end = buf.lastIndexOf(0x0a) + 1;
    size = end;
    for (const t of buf.subarray(0, end).toString('utf8').split('\n')) {
      const l = parseLogLine(taskId, t);
      if (l) lines.push(l);
    }
  }
  return { lines, size, found };
}
