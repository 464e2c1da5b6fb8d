// What the replicated and the global orchestrator share: per slot, keep
// exactly one live task (two only while a start-first update brings the new
// one up), react to the task's node going down or draining, and apply the
// restart policy to a task that ended on its own.
import { stateRank, type Node, type Service, type Task } from '../../proto/mod';
import { restartDecision } from '../restart/restart';
import { byAge, hasEnded, isLive, isUp, shutdown, slotKey, transition } from './task';
import { drain, type Working } from './working';

/** Tasks grouped by slot key, each list oldest first. */
export function groupBySlot(tasks: readonly Task[]): Map<string, Task[]> {
  return drain(groupSlots(undefined, tasks));
}

/** groupBySlot in slices of `w`'s clock (a service of 100,000 tasks groups in tens of ms). */
export function* groupSlots(w: Working | undefined, tasks: readonly Task[]): Generator<void, Map<string, Task[]>> {
  const m = new Map<string, Task[]>();
  for (const t of tasks) {
    if (w?.due()) yield;
    const k = slotKey(t);
    const l = m.get(k);
    if (l) l.push(t);
    else m.set(k, [t]);
  }
  for (const l of m.values()) if (l.length > 1) l.sort(byAge);
  return m;
}

export function nodeIsDown(n: Node | undefined): boolean {
  return !n || n.status?.state === 'NODE_DOWN';
}

/** The node will never report on this task again: end it here and let the slot be refilled. */
export function orphan(w: Working, t: Task, why: string): Task {
  return w.updateTask({ ...(transition(t, 'ORPHANED', why, w.now) ?? t), desiredState: 'SHUTDOWN' });
}

/** Update order in force for the service's current operation (rollback uses the rollback config). */
export function orderOf(svc: Service): 'STOP_FIRST' | 'START_FIRST' {
  const rollingBack = svc.updateStatus?.state === 'ROLLBACK_STARTED' || svc.updateStatus?.state === 'ROLLBACK_PAUSED';
  const cfg = rollingBack ? (svc.previousSpec?.rollback ?? svc.spec?.rollback ?? svc.spec?.update) : svc.spec?.update;
  return cfg?.order ?? 'STOP_FIRST';
}

/**
 * More than one live task in a slot. A current-spec task that is up wins
 * (this is how a start-first update retires the old task); a current-spec
 * task still starting next to old ones is the start-first window and is
 * left alone; anything else keeps the most advanced, newest task.
 */
export function dedupeLive(w: Working, svc: Service, live: Task[]): Task[] {
  if (live.length < 2) return live;
  const cur = live.filter((t) => t.specVersion === svc.specVersion);
  const upCur = cur.find(isUp);
  let keep: Task[];
  if (upCur) keep = [upCur];
  else if (cur.length === 1 && orderOf(svc) === 'START_FIRST') return live;
  else {
    const best = [...live].sort((a, b) => stateRank(b.status?.state ?? 'NEW') - stateRank(a.status?.state ?? 'NEW') || byAge(b, a))[0];
    keep = [best];
  }
  for (const t of live) if (!keep.includes(t)) w.updateTask(shutdown(t, w.now, `replaced by task ${keep[0].id}`));
  return keep;
}

export type SlotOutcome =
  /** A live task holds the slot. */
  | 'live'
  /** The last task ended on its own and waits for its restart delay. */
  | 'restarting'
  /** The last task ended and the restart policy says it stays ended. */
  | 'done'
  /** Nothing holds the slot: the orchestrator may fill or drop it. */
  | 'free';

/**
 * Settles one slot: orphans tasks of lost nodes, retires tasks of drained
 * nodes, dedupes, restarts an ended task per policy. `replace(attempt)`
 * creates the slot's next task (the orchestrator knows where it goes);
 * `drained(node)` says whether a live task must leave its node.
 */
export function settleSlot(
  w: Working,
  svc: Service,
  hist: Task[],
  o: { replace: ((attempt: number) => Task) | undefined; mustLeave: (t: Task) => string | undefined },
): SlotOutcome {
  let live = hist.filter(isLive);
  let replaceNow = false;
  for (const t of live) {
    if (!t.nodeId) continue;
    const n = w.nodes.get(t.nodeId);
    if (nodeIsDown(n)) {
      orphan(w, t, n ? 'node down' : 'node removed');
      replaceNow = true;
      continue;
    }
    const why = o.mustLeave(t);
    if (why) {
      w.updateTask(shutdown(t, w.now, why));
      replaceNow = true;
    }
  }
  if (replaceNow) live = live.map((t) => w.tasks.get(t.id)!).filter(isLive);
  live = dedupeLive(w, svc, live);
  if (live.length) {
    // A sibling that ended on its own while another task holds the slot (a
    // failed start-first task, a duplicate): nothing restarts it.
    for (const t of hist) if (t.desiredState === 'RUNNING' && hasEnded(w.tasks.get(t.id) ?? t)) w.updateTask({ ...(w.tasks.get(t.id) ?? t), desiredState: 'SHUTDOWN' });
    return 'live';
  }
  if (replaceNow) {
    if (!o.replace) return 'free';
    o.replace(0);
    return 'live';
  }
  const last = w.tasks.get(hist[hist.length - 1].id) ?? hist[hist.length - 1];
  if (last.desiredState === 'RUNNING' && hasEnded(last)) {
    if (!o.replace) return 'free';
    const d = restartDecision(last.spec?.restart ?? svc.spec?.restart, last, hist, w.now);
    if (d.kind === 'later') {
      w.wake(d.at);
      return 'restarting';
    }
    if (d.kind === 'never') {
      // Same state, a message that says why it stays ended (its timestamp stays the agent's).
      const st = last.status?.state ?? 'NEW';
      const said = transition(last, st, `${last.status?.message || st.toLowerCase()} (not restarted: ${d.reason})`, last.status?.timestamp ?? w.now);
      w.updateTask({ ...(said ?? last), desiredState: 'COMPLETE' });
      return last.specVersion === svc.specVersion ? 'done' : 'free';
    }
    w.updateTask({ ...last, desiredState: 'SHUTDOWN' });
    o.replace(d.attempt);
    return 'live';
  }
  if (last.desiredState === 'COMPLETE' && last.specVersion === svc.specVersion) return 'done';
  return 'free';
}
