// The replicated orchestrator (swarmkit orchestrator/replicated): slots are
// numbered from 1; every slot the service wants holds exactly one live task.
//
// - scale up: new tasks in the lowest free slot numbers;
// - scale down: drops whole slots, choosing victims that are not running
//   yet first, then the ones on the nodes with the most tasks of the service,
//   then the highest slot number (so scale-downs also rebalance);
// - a task whose node is down is ORPHANED and replaced at once, a task on a
//   draining node is shut down and replaced at once (neither counts as a
//   restart); a task that ended on its own follows the restart policy.
import type { Service } from '../../proto/mod';
import { groupSlots, settleSlot, type SlotOutcome } from './slots';
import { IndexHeap } from '../scheduler/heap';
import { isLive, newTask, shutdown } from './task';
import type { Working } from './working';

/** A generator: it pauses (yields) when `w`'s slice is used up; reconcileSteps resumes it. */
export function* reconcileReplicated(w: Working, svc: Service): Generator<void, void> {
  const want = Math.max(0, Math.floor(Number(svc.spec?.replicas ?? 0)) || 0);
  const groups = yield* groupSlots(w, w.tasksOf(svc.id));
  const held: { slot: number; outcome: SlotOutcome }[] = [];
  const heldSlots = new Set<number>();
  for (const [k, hist] of groups) {
    if (w.due()) yield;
    const slot = Number(k);
    if (!(slot > 0)) continue;
    const outcome = settleSlot(w, svc, hist, {
      replace: (attempt) => w.createTask(newTask(svc, w.newId(), w.now, { slot, attempt }, w.taskSpecs)),
      mustLeave: (t) => (w.nodes.get(t.nodeId)?.spec?.availability === 'DRAIN' ? 'node drained' : undefined),
    });
    if (outcome !== 'free') {
      held.push({ slot, outcome });
      heldSlots.add(slot);
    }
  }

  if (held.length < want) {
    let next = 1;
    for (let n = held.length; n < want; n++) {
      if (w.due()) yield;
      while (heldSlots.has(next)) next++;
      heldSlots.add(next);
      w.createTask(newTask(svc, w.newId(), w.now, { slot: next, attempt: 0 }, w.taskSpecs));
    }
    return;
  }
  if (held.length === want) return;

  // Scale down: rank the held slots, drop the first (held - want).
  const perNode = new Map<string, number>();
  const liveOf = new Map<number, string>();
  for (const t of w.tasksOf(svc.id)) {
    if (!isLive(t)) continue;
    if (t.nodeId) perNode.set(t.nodeId, (perNode.get(t.nodeId) ?? 0) + 1);
    liveOf.set(t.slot, t.status?.state === 'RUNNING' ? `R${t.nodeId}` : `-${t.nodeId}`);
  }
  const candidates = held.map((h) => {
    const l = liveOf.get(h.slot);
    return { slot: h.slot, category: h.outcome !== 'live' ? 0 : l && l[0] === 'R' ? 2 : 1, node: l ? l.slice(1) : '' };
  });
  // Victims: category by category; within one, always from the node that has
  // the most tasks of the service right now (a heap, so large scale-downs
  // stay O(n log n)), highest slot first.
  const victims: { slot: number }[] = [];
  const need = held.length - want;
  for (const cat of [0, 1, 2]) {
    if (victims.length >= need) break;
    const byNode = new Map<string, number[]>();
    for (const c of candidates) {
      if (c.category !== cat) continue;
      const l = byNode.get(c.node);
      if (l) l.push(c.slot);
      else byNode.set(c.node, [c.slot]);
    }
    const keys = [...byNode.keys()];
    for (const l of byNode.values()) l.sort((a, b) => a - b);
    const load = (i: number) => (keys[i] ? (perNode.get(keys[i]) ?? 0) : 0);
    const top = (i: number) => {
      const l = byNode.get(keys[i])!;
      return l.length ? l[l.length - 1] : -1;
    };
    const heap = new IndexHeap(
      keys.map((_, i) => i),
      (a, b) => load(b) - load(a) < 0 || (load(a) === load(b) && top(a) > top(b)),
    );
    while (victims.length < need && heap.size) {
      const i = heap.peek()!;
      const l = byNode.get(keys[i])!;
      victims.push({ slot: l.pop()! });
      if (keys[i]) perNode.set(keys[i], load(i) - 1);
      if (l.length) heap.topChanged();
      else heap.pop();
    }
  }
  const victimSlots = new Set(victims.map((v) => v.slot));
  for (const t of w.tasksOf(svc.id)) {
    if (!victimSlots.has(t.slot)) continue;
    if (isLive(t)) w.updateTask(shutdown(t, w.now, 'scaled down'));
    else if (t.desiredState === 'RUNNING' || t.desiredState === 'COMPLETE') w.updateTask({ ...t, desiredState: 'SHUTDOWN' });
  }
}
