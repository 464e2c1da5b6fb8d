// The reconcilers: plain synchronous functions of a ClusterSnapshot that
// return the writes they want (manager/state/snapshot.ts). No I/O, no timers:
// `snap.now` is the clock. The leader loop commits the actions in batched,
// revision-guarded transactions; an action that lost a race is recomputed on
// the next tick.
//
// Order within one tick, and why:
//  1. nodes: orphan tasks of nodes that are down (they will not report again);
//  2. orchestrators (replicated, global): per slot, keep exactly one live task
//     (restart policy, scale, drain, rolling update);
//  3. scheduler: place the pending tasks, including those created in step 2,
//     on a working copy that already counts this tick's placements.
import { randomBytes } from 'node:crypto';
import { isTerminal, type Node, type Service, type Task, type TaskStateName } from '../../proto/mod';
import type { Action, ClusterSnapshot, Unschedulable } from '../state/snapshot';
import { explain, feasible, rank } from './scheduler';

export function newId(): string {
  return randomBytes(13).toString('hex').slice(0, 25);
}

const LIVE_DESIRED: TaskStateName[] = ['RUNNING'];

function isLive(t: Task): boolean {
  return LIVE_DESIRED.includes(t.desiredState) && !isTerminal(t.status?.state ?? 'NEW');
}

export function nodeUsable(n: Node): boolean {
  return n.status?.state === 'NODE_READY' && n.spec?.availability === 'ACTIVE';
}

function withStatus(t: Task, state: TaskStateName, message: string, now: number): Task {
  return { ...t, status: { ...(t.status ?? { err: '', exitCode: 0, pid: 0, health: '' }), state, message, timestamp: now, err: t.status?.err ?? '', exitCode: t.status?.exitCode ?? 0, pid: t.status?.pid ?? 0, health: t.status?.health ?? '' } };
}

export function newTask(svc: Service, slot: number, nodeId: string, attempt: number, now: number): Task {
  const spec = svc.spec!;
  return {
    id: newId(),
    meta: { version: 0, createdAt: now, updatedAt: now },
    serviceId: svc.id,
    serviceName: spec.name,
    slot,
    nodeId: '',
    spec: {
      container: spec.container,
      resources: spec.resources,
      restart: spec.restart,
      placement: spec.placement,
      networks: spec.networks,
      ports: (spec.endpoint?.ports ?? []).filter((p) => p.publishMode === 'HOST'),
    },
    specVersion: svc.specVersion,
    status: { state: 'PENDING', timestamp: now, message: 'pending', err: '', exitCode: 0, pid: 0, health: '' },
    desiredState: 'RUNNING',
    networks: [],
    endpointPorts: [],
    attempt,
    ...(nodeId ? { nodeId } : {}),
  };
}

/** Whether the restart policy lets a slot whose last task ended start again now. */
export function mayRestart(svc: Service, history: Task[], now: number): { ok: boolean; wait: boolean } {
  const last = history[history.length - 1];
  const st = last.status?.state ?? 'NEW';
  const r = svc.spec?.restart;
  // A task lost with its node (or drained off it) did not fail on its own: always replace it, at once.
  if (st === 'ORPHANED' || (st === 'SHUTDOWN' && last.status?.message === 'node drained')) return { ok: true, wait: false };
  if (st === 'SHUTDOWN' && last.specVersion < svc.specVersion) return { ok: true, wait: false };
  const failed = st === 'FAILED' || st === 'REJECTED';
  const cond = r?.condition ?? 'RESTART_ANY';
  if (cond === 'RESTART_NONE') return { ok: false, wait: false };
  if (cond === 'RESTART_ON_FAILURE' && !failed) return { ok: false, wait: false };
  if (r && r.maxAttempts > 0) {
    const since = r.windowMs > 0 ? now - r.windowMs : 0;
    const attempts = history.filter((t) => (t.meta?.createdAt ?? 0) >= since).length;
    if (attempts >= r.maxAttempts + 1) return { ok: false, wait: false };
  }
  const ended = last.status?.timestamp ?? 0;
  if (now < ended + (r?.delayMs ?? 0)) return { ok: false, wait: true };
  return { ok: true, wait: false };
}

interface Working {
  tasks: Map<string, Task>;
  actions: Action[];
}

function update(w: Working, t: Task): void {
  const existing = w.tasks.get(t.id);
  w.tasks.set(t.id, t);
  const prevAction = w.actions.findIndex((a) => (a.op === 'createTask' || a.op === 'updateTask') && a.task.id === t.id);
  if (prevAction >= 0) w.actions[prevAction] = { ...w.actions[prevAction], task: t } as Action;
  else w.actions.push(existing && existing.meta?.version ? { op: 'updateTask', task: t } : { op: 'createTask', task: t });
}

function reconcileReplicated(snap: ClusterSnapshot, svc: Service, tasks: Task[], w: Working): void {
  const now = snap.now;
  const replicas = Number(svc.spec?.replicas ?? 0);
  const bySlot = new Map<number, Task[]>();
  for (const t of tasks) {
    const list = bySlot.get(t.slot) ?? [];
    list.push(t);
    bySlot.set(t.slot, list);
  }
  // Rolling update bookkeeping: how many slots may be replaced this tick.
  const upd = svc.spec?.update;
  const paused = svc.updateStatus?.state === 'UPDATE_PAUSED' || svc.updateStatus?.state === 'ROLLBACK_PAUSED';
  // A slot is still updating until its new task has run for the monitor
  // period; a slot whose new task failed holds the update back too (the
  // failure action decides what happens next).
  const monitor = upd?.monitorMs ?? 0;
  let updating = 0;
  for (const list of bySlot.values()) {
    const t = list.reduce((a, b) => (b.attempt > a.attempt ? b : a));
    if (t.specVersion !== svc.specVersion || t.attempt === 0) continue;
    const stable = t.status?.state === 'RUNNING' && isLive(t) && now - (t.status?.timestamp ?? now) >= monitor;
    if (!stable) updating++;
  }
  const parallelism = upd?.parallelism || Number.MAX_SAFE_INTEGER;
  let budget = paused ? 0 : Math.max(0, parallelism - updating);

  for (let slot = 1; slot <= Math.max(replicas, ...bySlot.keys()); slot++) {
    const history = (bySlot.get(slot) ?? []).sort((a, b) => a.attempt - b.attempt || (a.meta?.createdAt ?? 0) - (b.meta?.createdAt ?? 0));
    const last = history[history.length - 1];
    if (slot > replicas) {
      for (const t of history) if (isLive(t)) update(w, { ...t, desiredState: 'SHUTDOWN' });
      continue;
    }
    if (!last) {
      update(w, newTask(svc, slot, '', 0, now));
      continue;
    }
    const node = last.nodeId ? snap.nodes.get(last.nodeId) : undefined;
    if (isLive(last)) {
      if (node && node.spec?.availability === 'DRAIN') {
        update(w, withStatus({ ...last, desiredState: 'SHUTDOWN' }, last.status?.state === 'RUNNING' ? 'RUNNING' : (last.status?.state ?? 'NEW'), 'node drained', now));
        update(w, newTask(svc, slot, '', last.attempt + 1, now));
      } else if (last.specVersion < svc.specVersion && budget > 0) {
        budget--;
        update(w, { ...last, desiredState: 'SHUTDOWN' });
        update(w, newTask(svc, slot, '', last.attempt + 1, now));
      }
      continue;
    }
    if (last.desiredState === 'RUNNING' || isTerminal(last.status?.state ?? 'NEW')) {
      // The slot's newest task has ended.
      const d = mayRestart(svc, history, now);
      if (last.desiredState === 'RUNNING' && !d.wait) update(w, { ...last, desiredState: 'SHUTDOWN' });
      if (d.ok) update(w, newTask(svc, slot, '', last.attempt + 1, now));
    }
  }
}

function reconcileGlobal(snap: ClusterSnapshot, svc: Service, tasks: Task[], w: Working): void {
  const now = snap.now;
  const byNode = new Map<string, Task[]>();
  for (const t of tasks) {
    const list = byNode.get(t.nodeId) ?? [];
    list.push(t);
    byNode.set(t.nodeId, list);
  }
  for (const node of snap.nodes.values()) {
    const eligible = nodeUsable(node) && feasible(svc.spec!, node, [], { ignoreResources: false }).ok;
    const history = (byNode.get(node.id) ?? []).sort((a, b) => a.attempt - b.attempt);
    const last = history[history.length - 1];
    if (!eligible) {
      if (node.status?.state === 'NODE_READY' || !snap.nodes.has(node.id))
        for (const t of history) if (isLive(t)) update(w, { ...t, desiredState: 'SHUTDOWN' });
      continue;
    }
    if (!last) {
      update(w, { ...newTask(svc, 0, node.id, 0, now), status: { state: 'ASSIGNED', timestamp: now, message: 'assigned', err: '', exitCode: 0, pid: 0, health: '' } });
      continue;
    }
    if (isLive(last)) {
      if (last.specVersion < svc.specVersion) {
        update(w, { ...last, desiredState: 'SHUTDOWN' });
        update(w, { ...newTask(svc, 0, node.id, last.attempt + 1, now), status: { state: 'ASSIGNED', timestamp: now, message: 'assigned', err: '', exitCode: 0, pid: 0, health: '' } });
      }
      continue;
    }
    const d = mayRestart(svc, history, now);
    if (last.desiredState === 'RUNNING' && !d.wait) update(w, { ...last, desiredState: 'SHUTDOWN' });
    if (d.ok) update(w, { ...newTask(svc, 0, node.id, last.attempt + 1, now), status: { state: 'ASSIGNED', timestamp: now, message: 'assigned', err: '', exitCode: 0, pid: 0, health: '' } });
  }
  // Tasks on nodes that no longer exist.
  for (const [nodeId, list] of byNode) if (!snap.nodes.has(nodeId)) for (const t of list) if (isLive(t)) update(w, { ...t, desiredState: 'SHUTDOWN' });
}

export interface ReconcileResult {
  actions: Action[];
  unschedulable: Unschedulable[];
}

export function reconcile(snap: ClusterSnapshot): ReconcileResult {
  const w: Working = { tasks: new Map(snap.tasks), actions: [] };
  const now = snap.now;

  // 1. Tasks on nodes that are down are orphaned: they will never report again.
  for (const t of snap.tasks.values()) {
    if (!t.nodeId || !isLive(t)) continue;
    const n = snap.nodes.get(t.nodeId);
    if (!n || n.status?.state === 'NODE_DOWN') update(w, withStatus({ ...t, desiredState: 'SHUTDOWN' }, 'ORPHANED', n ? 'node down' : 'node removed', now));
  }
  // Tasks whose service is gone are shut down; ended ones are removed.
  const byService = new Map<string, Task[]>();
  for (const t of w.tasks.values()) {
    if (!snap.services.has(t.serviceId)) {
      if (isLive(t)) update(w, { ...t, desiredState: 'SHUTDOWN' });
      else if (isTerminal(t.status?.state ?? 'NEW') || !t.nodeId) w.actions.push({ op: 'deleteTask', task: t });
      continue;
    }
    const list = byService.get(t.serviceId) ?? [];
    list.push(t);
    byService.set(t.serviceId, list);
  }

  // 2. Orchestrators.
  for (const svc of snap.services.values()) {
    const tasks = byService.get(svc.id) ?? [];
    if (svc.spec?.mode === 'GLOBAL') reconcileGlobal(snap, svc, tasks, w);
    else reconcileReplicated(snap, svc, tasks, w);
  }

  // 3. Scheduler.
  const unschedulable: Unschedulable[] = [];
  const pending = [...w.tasks.values()].filter((t) => !t.nodeId && t.desiredState === 'RUNNING' && t.status?.state === 'PENDING');
  if (pending.length) {
    const nodes = [...snap.nodes.values()].filter(nodeUsable);
    const placed = [...w.tasks.values()].filter((t) => t.nodeId && isLive(t));
    const ranker = rank(nodes, placed);
    for (const t of pending) {
      const svc = snap.services.get(t.serviceId);
      if (!svc?.spec) continue;
      const choice = ranker.place(svc.spec, t.serviceId);
      if (choice.nodeId) {
        update(w, withStatus({ ...t, nodeId: choice.nodeId }, 'ASSIGNED', 'scheduled', now));
      } else {
        const reason = explain(choice.failures, snap.nodes.size);
        unschedulable.push({ taskId: t.id, reason });
        if (t.status?.message !== reason) update(w, withStatus(t, 'PENDING', reason, t.status?.timestamp ?? now));
      }
    }
  }
  return { actions: w.actions, unschedulable };
}
