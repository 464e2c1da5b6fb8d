// Small facts about tasks that every reconciler agrees on.
import { isForward, isTerminal, type Service, type Task, type TaskStateName, type TaskStatus } from '../../proto/mod';
import { encodeSpecOnce } from '../store/store';

/** The task should run and has not ended: it holds its slot. */
export function isLive(t: Task): boolean {
  return t.desiredState === 'RUNNING' && !isTerminal(t.status?.state ?? 'NEW');
}

/** Observed state says the task will never run again. */
export function hasEnded(t: Task): boolean {
  return isTerminal(t.status?.state ?? 'NEW');
}

/** Told to stop (desired shutdown/remove) but not stopped yet: still holds resources and ports on its node. */
export function isStopping(t: Task): boolean {
  return t.desiredState !== 'RUNNING' && t.desiredState !== 'COMPLETE' && !hasEnded(t);
}

/** Never handed to an agent: the manager may end it itself. */
export function isUnassigned(t: Task): boolean {
  const s = t.status?.state ?? 'NEW';
  return s === 'NEW' || s === 'PENDING';
}

/** Holds resources on its node: placed and not ended (running or stopping). */
export function holdsNode(t: Task): boolean {
  return !!t.nodeId && !hasEnded(t) && !isUnassigned(t);
}

/** Replicated: "3"; global: the node id. One live task per key (two during a start-first update). */
export function slotKey(t: Task): string {
  return t.slot > 0 ? String(t.slot) : t.nodeId;
}

/**
 * The one way the manager changes a task's observed state (the agents report
 * theirs through the dispatcher, under the same rule): `t` in state `to` with
 * `message`, stamped `now`. A backward move is refused: the result is
 * undefined and the caller keeps the task as it is (it has moved on meanwhile,
 * e.g. an agent reported it running; the next tick decides from that). The
 * same state with a new message is allowed.
 */
export function transition(t: Task, to: TaskStateName, message: string, now: number): Task | undefined {
  const s = nextStatus(t, to, message, now);
  return s && { ...t, status: s };
}

/** transition()'s status alone, for a task the tick created and finishes in place (the scheduler's hot path). */
export function nextStatus(t: Task, to: TaskStateName, message: string, now: number): TaskStatus | undefined {
  if (!isForward(t.status?.state ?? 'NEW', to)) return undefined;
  return {
    state: to,
    timestamp: now,
    message,
    err: t.status?.err ?? '',
    exitCode: t.status?.exitCode ?? 0,
    pid: t.status?.pid ?? 0,
    health: t.status?.health ?? '',
  };
}

/**
 * Tells a task to stop. A task no agent has seen yet (pending) is ended
 * right here: nobody else will ever report on it.
 */
export function shutdown(t: Task, now: number, message: string, desired: TaskStateName = 'SHUTDOWN'): Task {
  const ended = isUnassigned(t) ? transition(t, 'SHUTDOWN', message, now) : undefined;
  return { ...(ended ?? t), desiredState: desired };
}

/** Oldest first: creation time, then attempt, then id (stable). */
export function byAge(a: Task, b: Task): number {
  return (a.meta?.createdAt ?? 0) - (b.meta?.createdAt ?? 0) || a.attempt - b.attempt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

export interface NewTaskOpts {
  slot: number;
  nodeId?: string;
  attempt: number;
  message?: string;
  /** Job modes: the run the task belongs to. */
  jobIteration?: number;
}

/** A new task for a slot, made from the service's current spec; PENDING until the scheduler places it. */
export function newTask(svc: Service, id: string, now: number, o: NewTaskOpts, shared?: Map<string, { version: number; spec: Task['spec'] }>): Task {
  const spec = svc.spec!;
  let taskSpec = shared?.get(svc.id);
  if (!taskSpec || taskSpec.version !== svc.specVersion) {
    taskSpec = {
      version: svc.specVersion,
      spec: {
        container: spec.container,
        resources: spec.resources,
        restart: spec.restart,
        placement: spec.placement,
        networks: spec.networks ?? [],
        ports: (spec.endpoint?.ports ?? []).filter((p) => p.publishMode === 'HOST'),
      },
    };
    shared?.set(svc.id, taskSpec);
    // Shared by every task this tick creates for the service, changed by none: its JSON is made once.
    if (shared) encodeSpecOnce(taskSpec.spec!);
  }
  return {
    id,
    meta: { version: 0, createdAt: now, updatedAt: now },
    serviceId: svc.id,
    serviceName: spec.name,
    slot: o.slot,
    nodeId: o.nodeId ?? '',
    spec: taskSpec.spec,
    specVersion: svc.specVersion,
    status: { state: 'PENDING', timestamp: now, message: o.message ?? 'pending', err: '', exitCode: 0, pid: 0, health: '' },
    desiredState: 'RUNNING',
    networks: [],
    endpointPorts: [],
    attempt: o.attempt,
    jobIteration: o.jobIteration ?? 0,
  };
}

/** Running, and healthy when the spec has a healthcheck: the task counts as up. */
export function isUp(t: Task): boolean {
  if (!isLive(t) || t.status?.state !== 'RUNNING') return false;
  const test = t.spec?.container?.healthcheck?.test ?? [];
  if (test.length && test[0] !== 'NONE') return t.status?.health === 'healthy';
  return true;
}

/**
 * When the task became up, as far as the store knows: the timestamp of its
 * last status report (the agent reports RUNNING, then health transitions).
 */
export function upSince(t: Task): number {
  return t.status?.timestamp ?? 0;
}
