// Cluster events: what managers and agents publish (over NATS, see
// manager/events and agent/events) and `convoy events` shows. A discriminated
// union on `type`; `action` says what happened.
export interface EventBase {
  /** Epoch milliseconds. */
  time: number;
  /** Who published: "manager/<id>" or "agent/<node id>". */
  source: string;
}

export interface NodeEvent extends EventBase {
  type: 'node';
  action: 'up' | 'down' | 'drained' | 'paused' | 'active' | 'removed' | 'joined';
  nodeId: string;
  hostname: string;
  message?: string;
}

export interface ServiceEvent extends EventBase {
  type: 'service';
  action:
    | 'created'
    | 'updated'
    | 'scaled'
    | 'autoscaled'
    | 'removed'
    | 'rollback'
    | 'update-paused'
    | 'update-completed'
    // Jobs (docs/jobs.md): a run started; a schedule's fire skipped (concurrency policy forbid) or
    // missed (past its starting deadline); a run finished with every task completed, or not.
    | 'job-started'
    | 'job-skipped'
    | 'job-completed'
    | 'job-failed';
  serviceId: string;
  serviceName: string;
  /** For scaled/autoscaled: replicas before and after. */
  from?: number;
  to?: number;
  /** Job events: the run (job iteration). */
  iteration?: number;
  message?: string;
}

export interface TaskEvent extends EventBase {
  type: 'task';
  action: 'state';
  taskId: string;
  serviceId: string;
  serviceName: string;
  slot: number;
  nodeId: string;
  state: string;
  desiredState?: string;
  message?: string;
  err?: string;
}

export interface ManagerEvent extends EventBase {
  type: 'manager';
  action: 'leader-elected' | 'leader-lost';
  managerId: string;
}

/** The cluster as a whole: its store filled up (etcd NOSPACE: writes refused) or has room again. */
export interface ClusterEvent extends EventBase {
  type: 'cluster';
  action: 'store-full' | 'store-recovered';
  message?: string;
}

/**
 * An audit record (manager/auth/audit.ts): a mutating Control call, an exec,
 * or a refused call. `action` is the RPC ("CreateService", "StartExec").
 * The same record is a line of the manager's <dataDir>/audit.log.
 */
export interface AuditEvent extends EventBase {
  type: 'audit';
  action: string;
  /** Who: the identity the call was authorized as. */
  who: { id: string; role: string; serial?: string; via: 'tls' | 'unix-socket' | 'forwarded' | 'plaintext'; forwardedBy?: string };
  /** On what: the object's kind, and its id and/or name when known. */
  target: { kind: string; id?: string; name?: string };
  /** ok, or the gRPC status name and message of the refusal or failure. */
  result: { ok: true } | { ok: false; code: string; message: string };
  /** Extra facts of the call (an exec's command, a scale's replicas). */
  detail?: Record<string, string>;
}

export type ConvoyEvent = NodeEvent | ServiceEvent | TaskEvent | ManagerEvent | ClusterEvent | AuditEvent;
export type EventType = ConvoyEvent['type'];

/** Where components send events. Must never block or throw. */
export interface EventSink {
  publish(e: ConvoyEvent): void;
}

export const nullEventSink: EventSink = { publish() {} };

/**
 * NATS subject of an event: convoy.events.<type>.<action>.<origin> (each one
 * subject token: see originToken), where
 * origin is the publisher's node id (agents) or manager id, as one subject
 * token. NATS lets a node publish only under its own origin (proto/nats-auth.ts),
 * so a reader can tell who sent an event from its subject.
 */
export function eventSubject(e: Pick<ConvoyEvent, 'type' | 'action'>, origin: string): string {
  return `convoy.events.${originToken(e.type)}.${originToken(e.action)}.${originToken(origin)}`;
}

/** An id as one subject token: characters NATS gives meaning to (. * > and space) become '_'. */
export function originToken(id: string): string {
  return id.replace(/[^A-Za-z0-9_-]/g, '_') || '_';
}

/**
 * Whether an event agrees with the subject it came on (readers drop the
 * others). Nodes may publish task state events only, each under its own
 * origin (proto/nats-auth.ts), so those are the ones a node could forge:
 * an agent's must name its own node as source and as the task's node, and
 * one claiming a manager's source must come under that manager's origin.
 * Every other subject only managers may publish. Events from before origins
 * (4-token subjects) pass.
 */
export function eventMatchesOrigin(subject: string, e: ConvoyEvent): boolean {
  const parts = subject.split('.');
  if (parts.length === 4) return true;
  if (parts.length !== 5 || parts[2] !== originToken(String(e.type)) || parts[3] !== originToken(String(e.action))) return false;
  if (e.type !== 'task') return true;
  const origin = parts[4];
  const slash = typeof e.source === 'string' ? e.source.indexOf('/') : -1;
  const kind = slash > 0 ? e.source.slice(0, slash) : '';
  const id = slash > 0 ? e.source.slice(slash + 1) : '';
  if (kind === 'agent') return originToken(id) === origin && e.nodeId === id;
  if (kind === 'manager') return originToken(id) === origin;
  return false;
}

// ---- NATS subjects and payloads besides events ----------------------------
// Everything is JSON. Managers, agents and the CLI share only proto/, so the
// shapes live here.

/** JetStream stream that keeps recent events for `convoy events --since`. */
export const EVENTS_STREAM = 'CONVOY_EVENTS';
export const EVENTS_SUBJECTS = 'convoy.events.>';
/** How long the stream keeps events (replay horizon of `--since`). */
export const EVENTS_MAX_AGE_MS = 60 * 60 * 1000;
/**
 * Bytes the stream keeps at most (the oldest go first): a node that floods
 * its event subject fills this, never the server's disk.
 */
export const EVENTS_MAX_BYTES = 256 * 1024 * 1024;
/** Largest event the stream stores (an event is a few hundred bytes). */
export const EVENTS_MAX_MSG_BYTES = 64 * 1024;

/** Agents publish their tasks' usage on convoy.stats.<nodeId> every few seconds. */
export function statsSubject(nodeId: string): string {
  return `convoy.stats.${nodeId}`;
}
export const STATS_SUBJECTS = 'convoy.stats.*';

export interface TaskStatsSample {
  taskId: string;
  serviceId: string;
  serviceName: string;
  slot: number;
  /** CPU used over the agent's last sampling interval, in cores. */
  cpuCores: number;
  /** Cumulative CPU seconds (user + system). */
  cpuSeconds: number;
  memoryBytes: number;
  /** 0 = unlimited. */
  memoryLimitBytes: number;
}

export interface StatsMessage {
  nodeId: string;
  /** Epoch ms of the sample on the agent. */
  time: number;
  tasks: TaskStatsSample[];
}

/**
 * Logs: the CLI sends a LogRequest to convoy.logs.<nodeId> (one per node that
 * holds tasks it wants); the agent publishes LogBatch messages to `inbox`
 * until it has sent what was asked (`done`) or, with `follow`, until the CLI
 * stops publishing keepalives on `inbox + '.keepalive'` for LOG_KEEPALIVE_TIMEOUT_MS.
 */
export function logsSubject(nodeId: string): string {
  return `convoy.logs.${nodeId}`;
}
export const LOG_KEEPALIVE_MS = 3_000;
export const LOG_KEEPALIVE_TIMEOUT_MS = 10_000;

export interface LogRequest {
  taskIds: string[];
  /** Lines per task from the end; undefined = all. */
  tail?: number;
  /** Only lines at or after this epoch ms. */
  since?: number;
  follow: boolean;
  inbox: string;
}

export interface LogLine {
  taskId: string;
  /** Epoch ms the runtime captured the line. */
  time: number;
  stream: 'stdout' | 'stderr';
  line: string;
}

export interface LogBatch {
  nodeId: string;
  lines: LogLine[];
  /** Tasks whose requested history is fully sent (without follow: nothing more will come for them). */
  done?: string[];
  /** Tasks this agent does not hold (or whose logs are gone). */
  missing?: string[];
  /** Tasks not served: the agent is serving as many log requests as it allows (agent/observe/logs.ts); ask again later. */
  busy?: string[];
}
