// The job orchestrator (swarmkit orchestrator/jobs, plus schedules): modes
// replicated-job and global-job. Tasks run to completion: a task that exits
// 0 (COMPLETE) is done and never restarted; a failed one follows the restart
// policy (condition any is on-failure for a job, as in Swarm). Pure, like the
// other reconcilers: everything it knows is in the service (job_status) and
// the tasks (job_iteration), so a new leader goes on from there.
//
// - A run (job iteration) is what the tasks of one execution share. An
//   unscheduled job starts run 1 at creation and a new run at every new spec
//   version (`service update`, `--force`): the old run's tasks still going are
//   shut down.
// - replicated-job: slots 1..replicas each need one COMPLETE task; at most
//   max_concurrent slots (0 = all) are running or waiting to restart at once.
// - global-job: one COMPLETE task per eligible node; a node that becomes
//   eligible while the run is not finished gets its task too.
// - A run is finished when every slot (node) has completed or failed for good;
//   job_status records it (finished_iteration, finished_ok).
// - Scheduled jobs (spec.job.schedule): a run starts at each fire time of the
//   cron expression in its time zone, never at creation. The concurrency
//   policy decides when the last run is still going: allow (both go on),
//   forbid (the fire is skipped), replace (the old run's tasks are shut down).
//   Missed fires (no leader at the time): at most one run starts, for the
//   latest missed fire, and only if it is no older than the starting
//   deadline (0 = no deadline); the others are recorded as missed
//   (Kubernetes CronJob's rule; docs/jobs.md). `--force` starts a run now.
import type { JobStatus, Node, Service, Task } from '../../proto/mod';
import { lastFireIn, nextFire, parseCron, type Cron } from '../../common/cron';
import { constraintsOf } from '../scheduler/constraint';
import { nodeMatches } from './global';
import { groupSlots, settleSlot } from './slots';
import { hasEnded, isLive, newTask, shutdown } from './task';
import type { Working } from './working';

export function isJob(svc: Service | undefined): boolean {
  const m = svc?.spec?.mode;
  return m === 'REPLICATED_JOB' || m === 'GLOBAL_JOB';
}

const crons = new Map<string, Cron | null>();
/** The service's parsed schedule (cached: the tick parses a schedule once), or undefined. */
export function cronOf(svc: Service): Cron | undefined {
  const j = svc.spec?.job;
  if (!j?.schedule) return undefined;
  const key = `${j.timezone || 'UTC'} ${j.schedule}`;
  let c = crons.get(key);
  if (c === undefined) {
    try {
      c = parseCron(j.schedule, j.timezone || 'UTC');
    } catch {
      c = null; // validation refuses it; a stored one that no longer parses never fires
    }
    if (crons.size > 1024) crons.clear();
    crons.set(key, c);
  }
  return c ?? undefined;
}

function initialStatus(svc: Service, now: number, scheduled: boolean): JobStatus {
  return {
    iteration: scheduled ? 0 : 1,
    specVersion: svc.specVersion,
    startedAt: scheduled ? 0 : now,
    lastScheduleAt: scheduled ? svc.meta?.createdAt || now : 0,
    runRequested: false,
    message: scheduled ? 'waiting for the schedule' : 'run 1 started',
    finishedIteration: 0,
    finishedAt: 0,
    finishedOk: false,
  };
}

const fmt = (ms: number, tz: string) => {
  try {
    return `${new Date(ms).toLocaleString('sv-SE', { timeZone: tz })} ${tz}`;
  } catch {
    return new Date(ms).toISOString();
  }
};

type SlotState = 'active' | 'completed' | 'failed' | 'none';

/** The state of one slot's tasks of one run, after settling them (restart policy, node loss, drain). */
function settle(w: Working, svc: Service, hist: Task[], replace: ((attempt: number) => Task) | undefined, mustLeave: (t: Task) => string | undefined): SlotState {
  // A completed task is done: it never restarts, whatever the condition says.
  for (const t0 of hist) {
    const t = w.tasks.get(t0.id) ?? t0;
    if (t.status?.state === 'COMPLETE') {
      if (t.desiredState === 'RUNNING') w.updateTask({ ...t, desiredState: 'COMPLETE' });
      for (const o of hist) {
        const x = w.tasks.get(o.id) ?? o;
        if (x.id !== t.id && isLive(x)) w.updateTask(shutdown(x, w.now, `slot completed by task ${t.id}`));
      }
      return 'completed';
    }
  }
  const outcome = settleSlot(w, svc, hist, { replace, mustLeave });
  if (outcome === 'live' || outcome === 'restarting') return 'active';
  const last = [...hist].map((t) => w.tasks.get(t.id) ?? t).pop()!;
  if (last.desiredState === 'COMPLETE' && hasEnded(last)) return 'failed';
  return 'none';
}

interface RunCounts {
  active: number;
  completed: number;
  failed: number;
  /** Slots (nodes) the run still has to start. */
  pending: number;
}

/** Drives one run of a replicated job; `create` = slots may still be started. */
function* driveReplicated(w: Working, svc: Service, iteration: number, tasks: Task[], create: boolean): Generator<void, RunCounts> {
  const total = Math.max(0, Math.floor(Number(svc.spec?.replicas ?? 0)) || 0);
  const maxC = svc.spec?.job?.maxConcurrent || total;
  const c: RunCounts = { active: 0, completed: 0, failed: 0, pending: 0 };
  const groups = yield* groupSlots(w, tasks);
  const started = new Set<number>();
  for (const [k, hist] of groups) {
    if (w.due()) yield;
    const slot = Number(k);
    if (!(slot > 0)) continue;
    if (slot > total) {
      // Scaled down: slots beyond replicas are not part of the run any more.
      for (const t of hist) if (isLive(w.tasks.get(t.id) ?? t)) w.updateTask(shutdown(w.tasks.get(t.id) ?? t, w.now, 'scaled down'));
      continue;
    }
    started.add(slot);
    const st = settle(
      w,
      svc,
      hist,
      (attempt) => w.createTask(newTask(svc, w.newId(), w.now, { slot, attempt, jobIteration: iteration }, w.taskSpecs)),
      (t) => (w.nodes.get(t.nodeId)?.spec?.availability === 'DRAIN' ? 'node drained' : undefined),
    );
    if (st === 'none') started.delete(slot);
    else c[st]++;
  }
  for (let slot = 1; slot <= total; slot++) {
    if (started.has(slot)) continue;
    if (create && c.active < maxC) {
      if (w.due()) yield;
      w.createTask(newTask(svc, w.newId(), w.now, { slot, attempt: 0, jobIteration: iteration }, w.taskSpecs));
      c.active++;
    } else c.pending++;
  }
  return c;
}

/** Drives one run of a global job over the nodes. */
function driveGlobal(w: Working, svc: Service, iteration: number, tasks: Task[], create: boolean): RunCounts {
  const cs = constraintsOf(svc.id, svc.specVersion, svc.spec?.placement);
  const c: RunCounts = { active: 0, completed: 0, failed: 0, pending: 0 };
  const byNode = new Map<string, Task[]>();
  for (const t of tasks) {
    if (!t.nodeId) continue;
    const l = byNode.get(t.nodeId);
    if (l) l.push(t);
    else byNode.set(t.nodeId, [t]);
  }
  const eligible = (n: Node | undefined) => !!n && nodeMatches(svc, cs, n) && n.status?.state === 'NODE_READY' && (n.spec?.availability ?? 'ACTIVE') === 'ACTIVE';
  for (const [nodeId, hist] of byNode) {
    hist.sort((a, b) => (a.meta?.createdAt ?? 0) - (b.meta?.createdAt ?? 0) || a.attempt - b.attempt);
    const node = w.nodes.get(nodeId);
    const ok = eligible(node);
    const st = settle(
      w,
      svc,
      hist,
      ok ? (attempt) => w.createTask(newTask(svc, w.newId(), w.now, { slot: 0, nodeId, attempt, jobIteration: iteration }, w.taskSpecs)) : undefined,
      () => (node?.spec?.availability === 'DRAIN' ? 'node drained' : node && !nodeMatches(svc, cs, node) ? 'node no longer matches the placement constraints' : undefined),
    );
    if (st !== 'none') c[st]++;
    else if (ok && create) {
      w.createTask(newTask(svc, w.newId(), w.now, { slot: 0, nodeId, attempt: 0, jobIteration: iteration }, w.taskSpecs));
      c.active++;
    }
  }
  for (const n of w.nodes.values()) {
    if (byNode.has(n.id) || !eligible(n)) continue;
    if (create) {
      w.createTask(newTask(svc, w.newId(), w.now, { slot: 0, nodeId: n.id, attempt: 0, jobIteration: iteration }, w.taskSpecs));
      c.active++;
    } else c.pending++;
  }
  return c;
}

/** Tells every task of runs other than `keep` that is still going to stop. */
function stopRuns(w: Working, tasks: Task[], keep: (iteration: number) => boolean, why: string): void {
  for (const t of tasks) {
    const cur = w.tasks.get(t.id) ?? t;
    if (keep(cur.jobIteration)) continue;
    if (isLive(cur)) w.updateTask(shutdown(cur, w.now, why));
    else if (cur.desiredState === 'RUNNING') w.updateTask({ ...cur, desiredState: 'SHUTDOWN' });
  }
}

/** True while a run has a task that should run (live, or ended and waiting for its restart). */
function runGoing(tasks: Task[], iteration: number): boolean {
  return tasks.some((t) => t.jobIteration === iteration && t.desiredState === 'RUNNING');
}

/** A generator: pauses when `w`'s slice is used up (see reconcileSteps). */
export function* reconcileJob(w: Working, svcIn: Service): Generator<void, void> {
  let svc = svcIn;
  const cron = cronOf(svc);
  const scheduled = !!svc.spec?.job?.schedule;
  const tz = svc.spec?.job?.timezone || 'UTC';
  const policy = svc.spec?.job?.concurrencyPolicy ?? 'CONCURRENCY_ALLOW';
  let js: JobStatus = svc.jobStatus ?? initialStatus(svc, w.now, scheduled);
  let changed = !svc.jobStatus;
  const tasks = w.tasksOf(svc.id);

  const startRun = (message: string) => {
    const iteration = js.iteration + 1;
    js = { ...js, iteration, specVersion: svc.specVersion, startedAt: w.now, message: `run ${iteration} started: ${message}` };
    changed = true;
  };

  if (!scheduled) {
    if (js.specVersion !== svc.specVersion) {
      startRun(`spec version ${svc.specVersion}`);
      stopRuns(w, tasks, (i) => i === js.iteration, `replaced by run ${js.iteration}`);
    }
  } else {
    let fire: { at: number; why: string } | undefined;
    if (js.runRequested) {
      fire = { at: w.now, why: 'requested (service update --force)' };
      js = { ...js, runRequested: false };
      changed = true;
    } else if (cron) {
      const due = nextFire(cron, js.lastScheduleAt);
      if (due !== undefined && due <= w.now) {
        const latest = lastFireIn(cron, js.lastScheduleAt, w.now) ?? due;
        const missed = latest !== due || w.now - latest >= 60_000;
        const deadline = svc.spec?.job?.startingDeadlineMs ?? 0;
        js = { ...js, lastScheduleAt: latest };
        changed = true;
        if (deadline > 0 && w.now - latest > deadline) {
          js = { ...js, message: `missed: the fire at ${fmt(latest, tz)} is older than the starting deadline (${Math.round(deadline / 1000)} s); waiting for the next` };
        } else fire = { at: latest, why: missed ? `missed fire at ${fmt(latest, tz)} (started late; earlier missed fires skipped)` : `scheduled ${fmt(latest, tz)}` };
      }
    }
    if (js.specVersion !== svc.specVersion) {
      // A spec change of a scheduled job applies from its next run.
      js = { ...js, specVersion: svc.specVersion };
      changed = true;
    }
    if (fire) {
      const going = js.iteration > 0 && runGoing(tasks, js.iteration);
      if (going && policy === 'CONCURRENCY_FORBID') {
        js = { ...js, message: `skipped: ${fire.why}, run ${js.iteration} is still going (concurrency policy forbid)` };
      } else {
        const prev = js.iteration;
        startRun(fire.why);
        if (going && policy === 'CONCURRENCY_REPLACE') stopRuns(w, tasks, (i) => i !== prev, `replaced by run ${js.iteration} (concurrency policy replace)`);
      }
    }
    const next = cron && nextFire(cron, js.lastScheduleAt);
    if (next !== undefined && next !== null) w.wake(next);
  }

  if (js.iteration > 0) {
    // Runs to drive: the current one, and (concurrency policy allow) older ones still going.
    const byRun = new Map<number, Task[]>();
    for (const t of tasks) {
      const cur = w.tasks.get(t.id) ?? t;
      const l = byRun.get(cur.jobIteration);
      if (l) l.push(cur);
      else byRun.set(cur.jobIteration, [cur]);
    }
    for (const [iteration, ts] of byRun) {
      if (iteration === js.iteration || !ts.some((t) => t.desiredState === 'RUNNING')) continue;
      // Only concurrency policy allow leaves an older run going: it goes on to its end.
      if (svc.spec?.mode === 'GLOBAL_JOB') driveGlobal(w, svc, iteration, ts, true);
      else yield* driveReplicated(w, svc, iteration, ts, true);
    }
    const cur = byRun.get(js.iteration) ?? [];
    const open = js.finishedIteration < js.iteration;
    const c = svc.spec?.mode === 'GLOBAL_JOB' ? driveGlobal(w, svc, js.iteration, cur, open) : yield* driveReplicated(w, svc, js.iteration, cur, open);
    if (open && c.active === 0 && c.pending === 0) {
      js = {
        ...js,
        finishedIteration: js.iteration,
        finishedAt: w.now,
        finishedOk: c.failed === 0,
        message: `run ${js.iteration} ${c.failed === 0 ? 'completed' : 'failed'}: ${c.completed} completed, ${c.failed} failed`,
      };
      changed = true;
    }
  }
  if (changed) svc = w.updateService({ ...svc, jobStatus: js });
}
