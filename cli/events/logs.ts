// The client side of logs over NATS, shared by `convoy service logs` and
// `convoy task logs`: ask every node that holds one of the tasks
// (convoy.logs.<nodeId>, proto/events.ts LogRequest), merge what comes
// back on our inbox by time, prefix each line with task and host. With
// --follow, keep the agents streaming with keepalives, and pick up tasks that
// appear later (a scaled-up or restarted service) by re-listing them.
import type { Codec, NatsConnection } from 'nats';
import type { Node, Task } from '../../proto/mod';
import { CliError, type CliIO, type ControlApi } from '../client';
import { LOG_KEEPALIVE_MS, logsSubject, type LogBatch, type LogLine, type LogRequest } from '../../proto/events';
import { natsLib } from './nats';

/** How long a node may take to answer a request for history before we give up on it. */
export const ANSWER_TIMEOUT_MS = 5_000;
/** How often a followed service's tasks are listed again for new ones. */
export const RELIST_MS = 2_000;

export interface LogsOptions {
  tail?: number;
  since?: number;
  follow: boolean;
  timestamps: boolean;
  /** Prefix lines with task and host (service logs: yes; task logs: no). */
  prefix: boolean;
}

let codecs: { req: Codec<LogRequest>; batch: Codec<LogBatch> } | undefined;
const reqCodec = { encode: (d: LogRequest) => lazyCodecs().req.encode(d), decode: (b: Uint8Array) => lazyCodecs().req.decode(b) };
const batchCodec = { encode: (d: LogBatch) => lazyCodecs().batch.encode(d), decode: (b: Uint8Array) => lazyCodecs().batch.decode(b) };
function lazyCodecs(): { req: Codec<LogRequest>; batch: Codec<LogBatch> } {
  codecs ??= { req: natsLib().JSONCodec<LogRequest>(), batch: natsLib().JSONCodec<LogBatch>() };
  return codecs;
}

export function lineLabel(t: Pick<Task, 'id' | 'serviceName' | 'slot' | 'nodeId'>, hostname: string): string {
  return `${t.serviceName}.${t.slot || t.nodeId}.${t.id.slice(0, 12)}@${hostname || t.nodeId}`;
}

/** Prints log lines of the tasks `list()` returns (called again while following). */
export async function streamLogs(io: CliIO, api: ControlApi, nc: NatsConnection, list: () => Promise<Task[]>, o: LogsOptions, stop: Promise<void>): Promise<void> {
  const hostnames = new Map<string, string>();
  const refreshNodes = async () => {
    const r = await api.listNodes({ role: '' });
    for (const n of r.nodes as Node[]) hostnames.set(n.id, n.description?.hostname ?? '');
  };
  await refreshNodes();
  const tasks = new Map<string, Task>();
  const labels = new Map<string, string>();
  let width = 0;
  const label = (id: string) => labels.get(id) ?? id;
  const print = (l: LogLine) => {
    const ts = o.timestamps ? `${new Date(l.time).toISOString()} ` : '';
    if (o.prefix) io.out(`${label(l.taskId).padEnd(width)} | ${ts}${l.line}\n`);
    else io.out(`${ts}${l.line}\n`);
  };

  const inbox = natsLib().createInbox('_INBOX.convoy.logs');
  const pending = new Set<string>(); // task ids whose history has not arrived yet
  const history: LogLine[] = [];
  let historyDone = false;
  let wakeHistory: (() => void) | undefined;
  const sub = nc.subscribe(inbox, {
    callback: (err, m) => {
      if (err) return;
      let b: LogBatch;
      try {
        b = batchCodec.decode(m.data);
      } catch {
        return;
      }
      for (const l of b.lines ?? []) {
        if (!tasks.has(l.taskId)) continue;
        if (historyDone && !pending.has(l.taskId)) print(l);
        else history.push(l);
      }
      for (const id of [...(b.done ?? []), ...(b.missing ?? []), ...(b.busy ?? [])]) pending.delete(id);
      for (const id of b.busy ?? []) if (tasks.has(id)) io.err(`convoy: the node of task ${label(id)} is serving too many log requests; try again\n`);
      for (const id of b.missing ?? []) if (tasks.has(id)) io.err(`convoy: no logs of task ${label(id)} on its node\n`);
      if (!pending.size) wakeHistory?.();
    },
  });
  await nc.flush();

  const ask = (ts: Task[], since?: number) => {
    const byNode = new Map<string, string[]>();
    for (const t of ts) {
      if (!t.nodeId) continue;
      tasks.set(t.id, t);
      labels.set(t.id, lineLabel(t, hostnames.get(t.nodeId) ?? ''));
      width = Math.max(width, labels.get(t.id)!.length);
      pending.add(t.id);
      const l = byNode.get(t.nodeId);
      if (l) l.push(t.id);
      else byNode.set(t.nodeId, [t.id]);
    }
    for (const [nodeId, taskIds] of byNode) {
      const req: LogRequest = { taskIds, tail: since === undefined ? o.tail : undefined, since: since ?? o.since, follow: o.follow, inbox };
      nc.publish(logsSubject(nodeId), reqCodec.encode(req));
    }
  };

  const first = (await list()).filter((t) => t.nodeId);
  if (!first.length) {
    sub.unsubscribe();
    if (!o.follow) return;
  }
  ask(first);
  // Wait for every node's history (or give up on the silent ones).
  if (pending.size) {
    // The timer goes as soon as every answer is in: a pending one would keep the process alive for its 5 s.
    let t: NodeJS.Timeout | undefined;
    await new Promise<void>((resolve) => {
      wakeHistory = resolve;
      t = setTimeout(resolve, ANSWER_TIMEOUT_MS);
      void stop.then(resolve);
    }).finally(() => clearTimeout(t));
  }
  wakeHistory = undefined;
  for (const id of pending) io.err(`convoy: node ${tasks.get(id)?.nodeId} did not answer for task ${label(id)} (agent down or not connected to NATS)\n`);
  if (pending.size) io.setExitCode(1); // what was shown is partial
  pending.clear();
  history.sort((a, b) => a.time - b.time);
  for (const l of history) print(l);
  history.length = 0;
  historyDone = true;
  if (!o.follow) {
    sub.unsubscribe();
    return;
  }

  const keepalive = setInterval(() => nc.publish(`${inbox}.keepalive`), LOG_KEEPALIVE_MS);
  const relist = setInterval(() => {
    void (async () => {
      const fresh = (await list()).filter((t) => t.nodeId && !tasks.has(t.id));
      if (!fresh.length) return;
      if (fresh.some((t) => !hostnames.has(t.nodeId))) await refreshNodes();
      ask(fresh, 0);
      pending.clear(); // new tasks print as they come
    })().catch(() => undefined);
  }, RELIST_MS);
  try {
    await Promise.race([stop, nc.closed().then(() => undefined)]);
  } finally {
    clearInterval(keepalive);
    clearInterval(relist);
    sub.unsubscribe();
  }
}

export function parseTail(s: string | undefined): number | undefined {
  if (s === undefined || s === 'all') return undefined;
  if (!/^\d+$/.test(s)) throw new CliError(`--tail: "${s}" is not a number of lines or "all"`);
  return Number(s);
}
