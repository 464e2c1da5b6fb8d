// convoy events [--filter k=v]... [--since 10m] [--no-follow] [--format json]:
// cluster events from NATS. With --since the recent past is replayed from the
// CONVOY_EVENTS JetStream stream first (an ordered consumer from that time),
// then the stream goes on live; --no-follow stops once the replay caught up.
import { Command } from 'commander';
import type { NatsConnection } from 'nats';
import { CliError, processIO, type CliIO } from '../client';
import { collect } from '../flags';
import { EVENTS_STREAM, eventMatchesOrigin, originToken, type ConvoyEvent } from '../../proto/events';
import { interrupted, natsLib, parseSince, withNats } from './nats';

const FILTER_KEYS = ['type', 'action', 'service', 'node', 'task'] as const;
type FilterKey = (typeof FILTER_KEYS)[number];
const TYPES = ['node', 'service', 'task', 'manager', 'cluster', 'audit'];

export type EventFilter = Partial<Record<FilterKey, string[]>>;

export function parseFilters(list: string[] | undefined): EventFilter {
  const f: EventFilter = {};
  for (const s of list ?? []) {
    const i = s.indexOf('=');
    const k = s.slice(0, i) as FilterKey;
    const v = s.slice(i + 1);
    if (i <= 0 || !FILTER_KEYS.includes(k) || !v) throw new CliError(`--filter: "${s}" is not one of ${FILTER_KEYS.map((x) => `${x}=VALUE`).join(', ')}`);
    if (k === 'type' && !TYPES.includes(v)) throw new CliError(`--filter: type "${v}" is not one of ${TYPES.join(', ')}`);
    (f[k] ??= []).push(v);
  }
  return f;
}

/** JetStream subject filter: narrow by type when exactly one type is asked for. */
export function subjectFor(f: EventFilter): string {
  if (f.type?.length === 1) return f.action?.length === 1 ? `convoy.events.${originToken(f.type[0])}.${originToken(f.action[0])}.>` : `convoy.events.${originToken(f.type[0])}.>`;
  return 'convoy.events.>';
}

/** Filters of different keys all apply; several values of one key are alternatives. */
export function matches(e: ConvoyEvent, f: EventFilter): boolean {
  const oneOf = (vals: string[] | undefined, ...have: (string | undefined)[]) => !vals || vals.some((v) => have.some((h) => h !== undefined && h !== '' && (h === v || (v.length >= 6 && h.startsWith(v)))));
  if (f.type && !f.type.includes(e.type)) return false;
  if (f.action && !f.action.includes(e.action)) return false;
  if (f.service && !(e.type === 'service' || e.type === 'task') ) return false;
  if (f.service && (e.type === 'service' || e.type === 'task') && !oneOf(f.service, e.serviceName, e.serviceId)) return false;
  if (f.node && !(e.type === 'node' || e.type === 'task')) return false;
  if (f.node && e.type === 'node' && !oneOf(f.node, e.nodeId, e.hostname)) return false;
  if (f.node && e.type === 'task' && !oneOf(f.node, e.nodeId)) return false;
  if (f.task && (e.type !== 'task' || !oneOf(f.task, e.taskId))) return false;
  return true;
}

export function formatEvent(e: ConvoyEvent): string {
  const at = new Date(e.time).toISOString();
  let what: string;
  switch (e.type) {
    case 'node':
      what = `${e.hostname || e.nodeId} (${e.nodeId})${e.message ? `: ${e.message}` : ''}`;
      break;
    case 'service':
      what = `${e.serviceName}${e.from !== undefined && e.to !== undefined ? ` ${e.from} → ${e.to}` : ''}${e.message ? `: ${e.message}` : ''}`;
      break;
    case 'task':
      what = `${e.serviceName}.${e.slot || e.nodeId} ${e.taskId} ${e.state}${e.nodeId ? ` on ${e.nodeId}` : ''}${e.message ? `: ${e.message}` : ''}${e.err ? ` (${e.err})` : ''}`;
      break;
    case 'manager':
      what = e.managerId;
      break;
    case 'cluster':
      what = e.message ?? '';
      break;
    case 'audit': {
      const t = e.target;
      const on = `${t.kind}${t.name ? ` ${t.name}` : ''}${t.id && t.id !== t.name ? ` (${t.id})` : ''}`;
      const by = `${e.who.id} (${e.who.role}${e.who.forwardedBy ? `, via ${e.who.forwardedBy}` : ''})`;
      what = `${by} ${on}: ${e.result.ok ? 'ok' : `${e.result.code} ${e.result.message}`}`;
      break;
    }
  }
  return `${at} ${e.type} ${e.action} ${what} [${e.source}]`;
}

interface EventsFlags {
  filter?: string[];
  since?: string;
  follow: boolean;
  format?: string;
  nats?: string;
}

const codec = { decode: (b: Uint8Array): ConvoyEvent => natsLib().JSONCodec<ConvoyEvent>().decode(b), encode: (e: ConvoyEvent): Uint8Array => natsLib().JSONCodec<ConvoyEvent>().encode(e) };

export async function streamEvents(io: CliIO, nc: NatsConnection, f: EventsFlags, stop: Promise<void>): Promise<void> {
  const filter = parseFilters(f.filter);
  const asJson = f.format === 'json';
  if (f.format !== undefined && f.format !== 'json' && f.format !== 'text') throw new CliError(`--format: "${f.format}" is not json or text`);
  const since = f.since !== undefined ? parseSince(f.since, io.now()) : undefined;
  const show = (e: ConvoyEvent) => {
    if (!matches(e, filter)) return;
    io.out(asJson ? `${JSON.stringify(e)}\n` : `${formatEvent(e)}\n`);
  };
  const js = nc.jetstream();
  let consumer;
  try {
    consumer = await js.consumers.get(EVENTS_STREAM, {
      filterSubjects: subjectFor(filter),
      ...(since !== undefined ? { deliver_policy: natsLib().DeliverPolicy.StartTime, opt_start_time: new Date(since).toISOString() } : { deliver_policy: natsLib().DeliverPolicy.New }),
    });
  } catch (e) {
    if (since !== undefined) throw new CliError(`no event history on this NATS (stream ${EVENTS_STREAM}: ${e instanceof Error ? e.message : String(e)})`);
    consumer = undefined;
  }
  const decode = (data: Uint8Array): ConvoyEvent | undefined => {
    try {
      return codec.decode(data);
    } catch {
      return undefined;
    }
  };
  // Stream sequences already shown: an ordered consumer that resets (missed
  // heartbeats under load) must never print an event twice.
  let shown = 0;
  // An event whose claimed source is not the publisher its subject names is a forgery: dropped.
  const take = (seq: number, data: Uint8Array, subject: string) => {
    if (seq <= shown) return;
    shown = seq;
    const e = decode(data);
    if (e && eventMatchesOrigin(subject, e)) show(e);
  };
  if (!f.follow) {
    if (!consumer) return;
    // The replay ends at the stream's last message as of now (or when nothing more comes).
    const last = (await (await nc.jetstreamManager()).streams.info(EVENTS_STREAM)).state.last_seq;
    while (shown < last) {
      const batch = await consumer.fetch({ max_messages: 500, expires: 1_000 });
      let n = 0;
      for await (const m of batch) {
        n++;
        take(m.seq, m.data, m.subject);
      }
      if (n === 0) return;
    }
    return;
  }
  if (consumer) {
    const msgs = await consumer.consume();
    void stop.then(() => msgs.stop());
    for await (const m of msgs) take(m.seq, m.data, m.subject);
    return;
  }
  // No stream (no manager made it yet): live events only.
  const sub = nc.subscribe(subjectFor(filter));
  void stop.then(() => sub.unsubscribe());
  for await (const m of sub) {
    const e = decode(m.data);
    if (e && eventMatchesOrigin(m.subject, e)) show(e);
  }
}

export function eventsCommand(io: CliIO = processIO()): Command {
  return new Command('events')
    .description('Stream cluster events (nodes, services, tasks, managers, audit records), live and from the last hour')
    .option('-f, --filter <key=value>', 'type=node|service|task|manager|cluster|audit, action=, service=, node=, task= (repeatable)', collect)
    .option('--since <when>', 'replay events since a duration ago (10m), an RFC 3339 time or epoch seconds')
    .option('--no-follow', 'stop after the replay instead of streaming new events')
    .option('--format <format>', 'text (default) or json (one event per line)')
    .option('--nats <url>', 'NATS URL (default: $CONVOY_NATS, else the one the managers advertise)')
    .action(async (_o: unknown, c: Command) => {
      const f = c.opts<EventsFlags>();
      const sig = interrupted();
      try {
        await withNats(io, c, (_api, nc) => streamEvents(io, nc, f, sig.promise));
      } finally {
        sig.dispose();
      }
    });
}
