// A service's merged logs for the dashboard: the same protocol as `convoy
// service logs` (cli/events/logs.ts; proto/events.ts LogRequest): one
// request per node that holds some of the tasks, on convoy.logs.<node>,
// answers on our own inbox, merged by time. History only (the page asks
// again while it is open); bounded in tasks, lines, line length and time.
import { JSONCodec, createInbox, type NatsConnection } from 'nats';
import { logsSubject, type LogBatch, type LogRequest } from '../../proto/events';
import { LOG_INBOX_PREFIX } from '../../proto/nats-auth';

/** Lines per task asked for by default, and at most. */
export const LOGS_DEFAULT_TAIL = 100;
export const LOGS_MAX_TAIL = 1_000;
/** Lines returned at most (the newest), and characters per line. */
export const LOGS_MAX_LINES = 2_000;
export const LOG_LINE_MAX_CHARS = 2_000;
/** Tasks asked for at most (the newest attempts first). */
export const LOGS_MAX_TASKS = 100;
/** How long a node may take to answer. */
export const LOGS_ANSWER_MS = 3_000;

export interface DashboardLogLine {
  taskId: string;
  time: number;
  stream: string;
  line: string;
}

export interface DashboardLogs {
  lines: DashboardLogLine[];
  /** Tasks whose node did not answer in time, or has no logs of them, or was busy. */
  unanswered: string[];
}

const codec = JSONCodec<unknown>();

export async function fetchLogs(nc: NatsConnection, tasks: { id: string; nodeId: string }[], tail: number): Promise<DashboardLogs> {
  const wanted = tasks.filter((t) => t.nodeId).slice(0, LOGS_MAX_TASKS);
  const pending = new Set(wanted.map((t) => t.id));
  const lines: DashboardLogLine[] = [];
  if (!wanted.length) return { lines, unanswered: [] };
  const inbox = createInbox(LOG_INBOX_PREFIX);
  const unanswered = new Set<string>();
  let wake: (() => void) | undefined;
  const sub = nc.subscribe(inbox, {
    callback: (err, m) => {
      if (err) return;
      let b: Partial<LogBatch>;
      try {
        b = codec.decode(m.data) as Partial<LogBatch>;
      } catch {
        return;
      }
      if (!b || typeof b !== 'object') return;
      for (const l of Array.isArray(b.lines) ? b.lines : []) {
        if (!l || !pending.has(l.taskId) || typeof l.line !== 'string' || !Number.isFinite(l.time)) continue;
        lines.push({ taskId: l.taskId, time: l.time, stream: l.stream === 'stderr' ? 'stderr' : 'stdout', line: l.line.slice(0, LOG_LINE_MAX_CHARS) });
        // Keep memory bounded while answers arrive: drop the oldest half when far over.
        if (lines.length > 4 * LOGS_MAX_LINES) {
          lines.sort((a, c) => a.time - c.time);
          lines.splice(0, lines.length - LOGS_MAX_LINES);
        }
      }
      for (const id of [...(b.missing ?? []), ...(b.busy ?? [])]) unanswered.add(id);
      for (const id of [...(b.done ?? []), ...(b.missing ?? []), ...(b.busy ?? [])]) pending.delete(id);
      if (!pending.size) wake?.();
    },
  });
  try {
    await nc.flush();
    const byNode = new Map<string, string[]>();
    for (const t of wanted) byNode.set(t.nodeId, [...(byNode.get(t.nodeId) ?? []), t.id]);
    for (const [node, taskIds] of byNode) {
      const req: LogRequest = { taskIds, tail, follow: false, inbox };
      nc.publish(logsSubject(node), codec.encode(req));
    }
    let timer: NodeJS.Timeout | undefined;
    await new Promise<void>((resolve) => {
      wake = resolve;
      timer = setTimeout(resolve, LOGS_ANSWER_MS);
    }).finally(() => clearTimeout(timer));
  } finally {
    sub.unsubscribe();
  }
  for (const id of pending) unanswered.add(id);
  lines.sort((a, c) => a.time - c.time);
  return { lines: lines.slice(-LOGS_MAX_LINES), unanswered: [...unanswered] };
}
