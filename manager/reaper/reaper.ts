// The task reaper (swarmkit orchestrator/taskreaper): the store keeps a
// short history per slot for `service ps`, not every attempt forever.
//
// - per slot, the newest `keep` ended tasks stay (default 5, more when a
//   restart window needs them to count attempts), older ended ones go;
// - tasks of a removed service go once they have ended (or were never
//   handed to a node);
// - a task still waiting for its restart delay (ended, desired RUNNING)
//   is never reaped: it is what holds its slot.
// - jobs: the runs still going, the current run and the newest
//   spec.job.history_limit finished runs keep their tasks (per slot, the
//   newest `keep` ended ones); the tasks of older runs go (docs/jobs.md).
import type { Service, Task } from '../../proto/mod';
import { historyNeeded } from '../restart/restart';
import { groupSlots } from '../orchestrator/slots';
import { byAge, hasEnded } from '../orchestrator/task';
import type { Working } from '../orchestrator/working';
import { DEFAULT_JOB_HISTORY, DEFAULT_TASK_HISTORY } from '../../proto/defaults';

export { DEFAULT_TASK_HISTORY };

function reapable(t: Task): boolean {
  return hasEnded(t) && t.desiredState !== 'RUNNING';
}

/** A generator: pauses when `w`'s slice is used up (see reconcileSteps). */
export function* reap(w: Working, keep = DEFAULT_TASK_HISTORY, serviceIds: Iterable<string> = w.serviceIdsWithTasks()): Generator<void, number> {
  let deleted = 0;
  for (const sid of serviceIds) {
    if (w.due()) yield;
    const svc = w.services.get(sid);
    const tasks = w.tasksOf(sid);
    if (!svc) {
      for (const t of tasks) {
        if (hasEnded(t) && t.desiredState !== 'RUNNING') {
          w.deleteTask(t);
          deleted++;
        }
      }
      continue;
    }
    const limit = Math.max(keep, historyNeeded(svc.spec?.restart));
    if (svc.spec?.mode === 'REPLICATED_JOB' || svc.spec?.mode === 'GLOBAL_JOB') {
      deleted += yield* reapJob(w, svc, tasks, limit);
      continue;
    }
    // Cheap exit: no slot can exceed the limit.
    let ended = 0;
    for (const t of tasks) if (reapable(t)) ended++;
    if (ended <= limit) continue;
    for (const hist of (yield* groupSlots(w, tasks)).values()) {
      const old = hist.filter(reapable);
      if (old.length <= limit) continue;
      old.sort(byAge);
      for (const t of old.slice(0, old.length - limit)) {
        w.deleteTask(t);
        deleted++;
      }
    }
  }
  return deleted;
}

/** A job's tasks: whole runs beyond the history limit, then per slot within the runs kept. */
function* reapJob(w: Working, svc: Service, tasks: Task[], perSlot: number): Generator<void, number> {
  const history = svc.spec?.job?.historyLimit || DEFAULT_JOB_HISTORY;
  const current = svc.jobStatus?.iteration ?? 0;
  const runs = new Map<number, Task[]>();
  for (const t of tasks) {
    const l = runs.get(t.jobIteration);
    if (l) l.push(t);
    else runs.set(t.jobIteration, [t]);
  }
  const finished = [...runs.keys()].filter((i) => i !== current && !runs.get(i)!.some((t) => !reapable(t))).sort((a, b) => b - a);
  const drop = new Set(finished.slice(history));
  let deleted = 0;
  for (const [i, ts] of runs) {
    if (w.due()) yield;
    if (drop.has(i)) {
      for (const t of ts) {
        w.deleteTask(t);
        deleted++;
      }
      continue;
    }
    if (ts.filter(reapable).length <= perSlot) continue;
    for (const hist of (yield* groupSlots(w, ts)).values()) {
      const old = hist.filter(reapable);
      if (old.length <= perSlot) continue;
      old.sort(byAge);
      for (const t of old.slice(0, old.length - perSlot)) {
        w.deleteTask(t);
        deleted++;
      }
    }
  }
  return deleted;
}
