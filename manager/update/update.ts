// The rolling update supervisor (swarmkit orchestrator/update), stateless:
// all progress lives in the service (spec_version, update_status) and the
// tasks (spec_version, status), so a new leader picks an update up where the
// old one left it.
//
// A slot is outdated when its live task was made from an older spec_version.
// Replacing one occupies a "worker" (parallelism workers) until the new task
// is up (RUNNING, and healthy when the spec has a healthcheck) and `delay`
// has passed since; stop-first retires the old task at once and the
// scheduler holds the new one until the old one has stopped; start-first
// leaves the old task running until the new one is up (the orchestrator's
// dedupe then retires it). New tasks that fail before the update completes
// count against max_failure_ratio; beyond it, failure_action applies: pause
// (UPDATE_PAUSED), continue, or rollback (previous spec, rollback config,
// ROLLBACK_STARTED → ROLLBACK_COMPLETED). The update completes once no slot
// is outdated and every new task has been up for `monitor`.
import type { Service, Task, UpdateConfig, UpdateStatus } from '../../proto/mod';
import { groupSlots } from '../orchestrator/slots';
import { hasEnded, isLive, isUp, newTask, shutdown, upSince } from '../orchestrator/task';
import type { Working } from '../orchestrator/working';
import { DEFAULT_UPDATE_CONFIG } from '../../proto/defaults';

export { DEFAULT_UPDATE_CONFIG };

const ACTIVE = new Set(['UPDATING', 'ROLLBACK_STARTED']);
const PAUSED = new Set(['UPDATE_PAUSED', 'ROLLBACK_PAUSED']);

export function isRollingBack(svc: Service): boolean {
  const s = svc.updateStatus?.state;
  return s === 'ROLLBACK_STARTED' || s === 'ROLLBACK_PAUSED';
}

/** The config in force: the rollback config of the spec being rolled back from, during a rollback. */
export function updateConfigOf(svc: Service): UpdateConfig {
  if (isRollingBack(svc)) return svc.previousSpec?.rollback ?? svc.spec?.rollback ?? DEFAULT_UPDATE_CONFIG;
  return svc.spec?.update ?? DEFAULT_UPDATE_CONFIG;
}

function setStatus(w: Working, svc: Service, s: Partial<UpdateStatus>): Service {
  const cur: UpdateStatus = svc.updateStatus ?? { state: 'UPDATE_NONE', startedAt: 0, completedAt: 0, message: '' };
  return w.updateService({ ...svc, updateStatus: { ...cur, ...s } });
}

/** Swaps to the previous spec (keeping today's replica count: a rollback never scales) and starts a rollback. */
export function startRollback(w: Working, svc: Service, reason: string): Service {
  const prev = svc.previousSpec!;
  return w.updateService({
    ...svc,
    spec: { ...prev, replicas: svc.spec?.replicas ?? prev.replicas },
    previousSpec: svc.spec,
    specVersion: svc.specVersion + 1,
    updateStatus: { state: 'ROLLBACK_STARTED', startedAt: w.now, completedAt: 0, message: `rollback started: ${reason}` },
  });
}

function failedOnItsOwn(t: Task): boolean {
  const s = t.status?.state;
  return s === 'FAILED' || s === 'REJECTED';
}

/** A generator: pauses when `w`'s slice is used up (see reconcileSteps). */
export function* superviseUpdate(w: Working, svcIn: Service): Generator<void, void> {
  let svc = svcIn;
  const state = svc.updateStatus?.state ?? 'UPDATE_NONE';
  const tasks = w.tasksOf(svc.id);
  const outdated: Task[][] = [];
  for (const hist of (yield* groupSlots(w, tasks)).values()) {
    if (w.due()) yield;
    const live = hist.filter(isLive);
    if (live.length && !live.some((t) => t.specVersion === svc.specVersion)) outdated.push(live);
  }
  if (!outdated.length && !ACTIVE.has(state)) return;
  if (PAUSED.has(state)) return;
  if (!ACTIVE.has(state)) svc = setStatus(w, svc, { state: 'UPDATING', startedAt: w.now, completedAt: 0, message: 'update in progress' });
  const rollingBack = isRollingBack(svc);
  const cfg = updateConfigOf(svc);
  const fresh = tasks.filter((t) => t.specVersion === svc.specVersion);

  // Failures of the update's tasks.
  // Only tasks made since this update (or resume) started count; a resumed update starts its count afresh.
  const since = svc.updateStatus?.startedAt ?? 0;
  const failed = fresh.filter((t) => failedOnItsOwn(t) && (t.meta?.createdAt ?? 0) >= since);
  if (failed.length && cfg.failureAction !== 'FAILURE_CONTINUE' && failed.length / Math.max(1, fresh.length) > (cfg.maxFailureRatio ?? 0)) {
    const f = failed[failed.length - 1];
    const why = `task ${f.id} (slot ${f.slot || f.nodeId}) ${f.status?.state.toLowerCase()}: ${f.status?.err || f.status?.message || 'no message'}`;
    if (!rollingBack && cfg.failureAction === 'FAILURE_ROLLBACK' && svc.previousSpec) {
      startRollback(w, svc, `update failed: ${why}`);
    } else {
      setStatus(w, svc, { state: rollingBack ? 'ROLLBACK_PAUSED' : 'UPDATE_PAUSED', message: `${rollingBack ? 'rollback' : 'update'} paused: ${why}` });
    }
    return;
  }

  // Workers busy: new tasks not up yet, or up for less than `delay`.
  let busy = 0;
  for (const t of fresh) {
    if (!isLive(t)) continue;
    if (!isUp(t)) busy++;
    else if (w.now < upSince(t) + cfg.delayMs) {
      busy++;
      w.wake(upSince(t) + cfg.delayMs);
    }
  }
  const parallelism = cfg.parallelism > 0 ? cfg.parallelism : Infinity;
  let budget = Math.max(0, parallelism - busy);
  // Replace first the slots whose old task is not running anyway.
  outdated.sort((a, b) => Number(a.some((t) => t.status?.state === 'RUNNING')) - Number(b.some((t) => t.status?.state === 'RUNNING')) || a[0].slot - b[0].slot || (a[0].nodeId < b[0].nodeId ? -1 : 1));
  for (const live of outdated) {
    if (budget <= 0) break;
    budget--;
    const old = live[0];
    if (cfg.order !== 'START_FIRST') for (const t of live) w.updateTask(shutdown(t, w.now, `replaced by spec version ${svc.specVersion}`));
    w.createTask(newTask(svc, w.newId(), w.now, { slot: old.slot, nodeId: old.slot === 0 ? old.nodeId : undefined, attempt: 0 }, w.taskSpecs));
  }
  if (outdated.length) return;

  // Completion: every new live task up for the monitor period, and (replicated)
  // every slot filled with one: a slot waiting for its restart delay is not
  // updated yet.
  let doneAt = 0;
  let up = 0;
  for (const t of fresh) {
    if (!isLive(t)) continue;
    if (!isUp(t)) return;
    up++;
    doneAt = Math.max(doneAt, upSince(t) + cfg.monitorMs);
  }
  if (svc.spec?.mode !== 'GLOBAL' && up < Number(svc.spec?.replicas ?? 0)) return;
  if (fresh.some((t) => isLive(t) && hasEnded(t))) return;
  if (w.now < doneAt) {
    w.wake(doneAt);
    return;
  }
  // A completed rollback keeps why it started ("update failed: task … exit code 1"): a client that
  // missed ROLLBACK_STARTED (`convoy service update` waiting, docs/cli.md) still tells the operator.
  const why = rollingBack ? (svc.updateStatus?.message ?? '').replace(/^rollback started: /, '') : '';
  setStatus(w, svc, {
    state: rollingBack ? 'ROLLBACK_COMPLETED' : 'UPDATE_COMPLETED',
    completedAt: w.now,
    message: rollingBack ? (why && !why.startsWith('rollback') ? `rollback completed: ${why}` : 'rollback completed') : 'update completed',
  });
}
