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

export type ConvoyEvent = NodeEvent | ServiceEvent | TaskEvent | ManagerEvent;
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
