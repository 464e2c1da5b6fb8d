// The events a leader tick reports (`convoy events`), derived from what the
// tick decided: the snapshot it started from and the writes it committed.
// Pure: no clock but `now`, no I/O; the leader publishes the result.
//
// The agents report the running lifecycle of their tasks themselves (over
// NATS); the leader reports only what it decides: a node marked up or down,
// a service autoscaled, an update paused, completed or rolled back, and a
// task it moved itself (pending with a reason, orphaned, shut down before
// it reached a node, rejected), and every run of a job: started, skipped
// or missed, completed or failed (from the service's job_status).
import type { ConvoyEvent, ServiceEvent } from '../proto/events';
import type { Service, Task } from '../proto/mod';
import type { ScaleDecision } from './hooks';
import { isNode, isService, isTask, type ClusterSnapshot, type Write } from './state/snapshot';

export interface EventContext {
  now: number;
  /** "manager/<id>" */
  source: string;
  /** The autoscaler's decisions the tick applied (their reasons become the events' messages). */
  scale?: readonly ScaleDecision[];
}

/** Task states the leader sets itself, and reports. */
const LEADER_TASK_STATES: ReadonlySet<string> = new Set(['PENDING', 'ORPHANED', 'SHUTDOWN', 'REJECTED']);

export function eventsFor(before: ClusterSnapshot, writes: readonly Write[], c: EventContext): ConvoyEvent[] {
  const out: ConvoyEvent[] = [];
  const { now, source } = c;
  for (const w of writes) {
    if (w.op !== 'update') continue;
    const o = w.obj;
    if (w.kind === 'nodes' && isNode(o)) {
      const was = before.nodes.get(o.id)?.status?.state;
      const st = o.status?.state;
      if (st === was || (st !== 'NODE_READY' && st !== 'NODE_DOWN')) continue;
      const up = st === 'NODE_READY';
      out.push({ type: 'node', action: up ? 'up' : 'down', time: now, source, nodeId: o.id, hostname: o.description?.hostname ?? '', message: up ? undefined : o.status?.message || undefined });
    } else if (w.kind === 'services' && isService(o)) {
      const prev = before.services.get(o.id);
      const to = Number(o.spec?.replicas ?? 0);
      const d = c.scale?.find((x) => x.serviceId === o.id && x.to === to);
      if (d && Number(prev?.spec?.replicas ?? 0) !== to)
        out.push({ type: 'service', action: 'autoscaled', time: now, source, serviceId: o.id, serviceName: o.spec?.name ?? '', from: d.from, to: d.to, message: d.reason });
      const u = updateEvent(prev, o, now, source);
      if (u) out.push(u);
      out.push(...jobEvents(prev, o, now, source));
    } else if (w.kind === 'tasks' && isTask(o)) {
      const e = taskEvent(before.tasks.get(o.id), o, now, source);
      if (e) out.push(e);
    }
  }
  return out;
}

/**
 * Seconds from creation to placement of every task a write moves to ASSIGNED
 * (for the scheduling-latency histogram). Tasks created and placed in the
 * same tick are not counted (as before: their latency is the tick's).
 */
export function placements(before: ClusterSnapshot, writes: readonly Write[], now: number): number[] {
  const out: number[] = [];
  for (const w of writes) {
    if (w.op !== 'update' || w.kind !== 'tasks' || !isTask(w.obj) || w.obj.status?.state !== 'ASSIGNED') continue;
    const prev = before.tasks.get(w.obj.id);
    if (prev?.status?.state === 'ASSIGNED') continue;
    out.push(Math.max(0, now - (prev?.meta?.createdAt ?? now)) / 1000);
  }
  return out;
}

function taskEvent(before: Task | undefined, t: Task, now: number, source: string): ConvoyEvent | undefined {
  const st = t.status?.state;
  if (!st || (st === before?.status?.state && t.status?.message === before?.status?.message)) return undefined;
  // A placement is a metric (placements()), not an event.
  if (st === 'ASSIGNED' || !LEADER_TASK_STATES.has(st)) return undefined;
  return {
    type: 'task',
    action: 'state',
    time: now,
    source,
    taskId: t.id,
    serviceId: t.serviceId,
    serviceName: t.serviceName,
    slot: t.slot,
    nodeId: t.nodeId,
    state: st,
    desiredState: t.desiredState,
    message: t.status?.message,
  };
}

function updateEvent(before: Service | undefined, s: Service, now: number, source: string): ServiceEvent | undefined {
  const st = s.updateStatus?.state;
  if (!st || st === before?.updateStatus?.state) return undefined;
  const action =
    st === 'UPDATE_PAUSED' || st === 'ROLLBACK_PAUSED'
      ? 'update-paused'
      : st === 'UPDATE_COMPLETED' || st === 'ROLLBACK_COMPLETED'
        ? 'update-completed'
        : st === 'ROLLBACK_STARTED'
          ? 'rollback'
          : undefined;
  return action && { type: 'service', action, time: now, source, serviceId: s.id, serviceName: s.spec?.name ?? '', message: s.updateStatus?.message };
}

/** What a job's status change says: a run started, a fire skipped or missed, a run finished. */
export function jobEvents(before: Service | undefined, s: Service, now: number, source: string): ServiceEvent[] {
  const a = before?.jobStatus;
  const b = s.jobStatus;
  if (!b) return [];
  const base = { type: 'service' as const, time: now, source, serviceId: s.id, serviceName: s.spec?.name ?? '' };
  const out: ServiceEvent[] = [];
  // A finish first: a run can end and the next start in one tick.
  if (b.finishedIteration > (a?.finishedIteration ?? 0))
    out.push({ ...base, action: b.finishedOk ? 'job-completed' : 'job-failed', iteration: b.finishedIteration, message: b.iteration === b.finishedIteration ? b.message : `run ${b.finishedIteration} finished` });
  if (b.iteration > (a?.iteration ?? 0)) out.push({ ...base, action: 'job-started', iteration: b.iteration, message: b.message });
  else if (a && b.lastScheduleAt !== a.lastScheduleAt) out.push({ ...base, action: 'job-skipped', iteration: b.iteration, message: b.message });
  return out;
}
