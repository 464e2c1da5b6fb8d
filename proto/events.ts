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
  action: 'created' | 'updated' | 'scaled' | 'autoscaled' | 'removed' | 'rollback' | 'update-paused' | 'update-completed';
  serviceId: string;
  serviceName: string;
  /** For scaled/autoscaled: replicas before and after. */
  from?: number;
  to?: number;
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

export type ConvoyEvent = NodeEvent | ServiceEvent | TaskEvent | ManagerEvent | ClusterEvent;
export type EventType = ConvoyEvent['type'];

/** Where components send events. Must never block or throw. */
export interface EventSink {
  publish(e: ConvoyEvent): void;
}

export const nullEventSink: EventSink = { publish() {} };

/** NATS subject of an event: convoy.events.<type>.<action>. */
export function eventSubject(e: Pick<ConvoyEvent, 'type' | 'action'>): string {
  return `convoy.events.${e.type}.${e.action}`;
}

// ---- NATS subjects and payloads besides events ----------------------------
// Everything is JSON. Managers, agents and the CLI share only proto/, so the
// shapes live here.

/** JetStream stream that keeps recent events for `convoy events --since`. */
export const EVENTS_STREAM = 'CONVOY_EVENTS';
export const EVENTS_SUBJECTS = 'convoy.events.>';
/** How long the stream keeps events (replay horizon of `--since`). */
export const EVENTS_MAX_AGE_MS = 60 * 60 * 1000;

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
}
