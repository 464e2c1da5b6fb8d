// The global orchestrator (swarmkit orchestrator/global): one task per
// eligible node — ready, availability active, constraints and platform
// matching — following nodes that join, leave, drain or change labels.
//
// A paused node keeps the task it has but gets no new one; a drained node,
// or one whose labels stop matching, loses its task; a down node's task is
// ORPHANED and comes back when the node does. Global tasks are created with
// their node already chosen, PENDING: the scheduler still checks resources
// and ports on that node before it marks them ASSIGNED.
import type { Node, Service } from '../../proto/mod';
import { constraintsOf, platformMatches, constraintMatches, type Constraint } from '../scheduler/constraint';
import { groupBySlot, nodeIsDown, orphan, settleSlot } from './slots';
import { hasEnded, isLive, newTask, shutdown } from './task';
import type { Working } from './working';

export function nodeMatches(svc: Service, cs: readonly Constraint[], n: Node): boolean {
  return cs.every((c) => constraintMatches(c, n)) && platformMatches(svc.spec?.placement?.platforms, n);
}

export function reconcileGlobal(w: Working, svc: Service): void {
  const cs = constraintsOf(svc.id, svc.specVersion, svc.spec?.placement);
  const groups = groupBySlot(w.tasksOf(svc.id).filter((t) => t.slot === 0 && t.nodeId));
  for (const node of w.nodes.values()) {
    const hist = groups.get(node.id) ?? [];
    groups.delete(node.id);
    const matches = nodeMatches(svc, cs, node);
    const eligible = matches && node.status?.state === 'NODE_READY' && (node.spec?.availability ?? 'ACTIVE') === 'ACTIVE';
    const create = (attempt: number) => w.createTask(newTask(svc, w.newId(), w.now, { slot: 0, nodeId: node.id, attempt }, w.taskSpecs));
    if (!hist.length) {
      if (eligible) create(0);
      continue;
    }
    const outcome = settleSlot(w, svc, hist, {
      replace: eligible ? create : undefined,
      mustLeave: () => (node.spec?.availability === 'DRAIN' ? 'node drained' : !matches ? 'node no longer matches the placement constraints' : undefined),
    });
    if (outcome === 'free' && eligible) create(0);
  }
  // Tasks of nodes that were removed from the cluster.
  for (const hist of groups.values())
    for (const t of hist) {
      if (isLive(t) && nodeIsDown(w.nodes.get(t.nodeId))) orphan(w, t, 'node removed');
    }
}

/** Tasks of services that no longer exist: told to stop and be removed (the reaper deletes them once ended). */
export function reconcileRemoved(w: Working, serviceId: string): void {
  for (const t of w.tasksOf(serviceId)) {
    if (t.nodeId && !hasEnded(t) && nodeIsDown(w.nodes.get(t.nodeId))) {
      orphan(w, { ...t, desiredState: 'REMOVE' }, 'service removed; node down');
      w.updateTask({ ...w.tasks.get(t.id)!, desiredState: 'REMOVE' });
      continue;
    }
    if (t.desiredState === 'REMOVE') continue;
    if (isLive(t) || t.desiredState === 'RUNNING' || t.desiredState === 'COMPLETE' || t.desiredState === 'SHUTDOWN')
      w.updateTask(shutdown(t, w.now, 'service removed', 'REMOVE'));
  }
}
