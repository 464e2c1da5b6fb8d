// One tick of the control plane: every reconciler, composed in order over
// one working copy of the snapshot, so each step sees what the earlier ones
// decided in the same tick (the scheduler places the tasks the orchestrators
// just created; the allocator addresses the tasks the scheduler just placed).
// Pure and synchronous: no I/O, no timers, `snap.now` is the clock. The
// leader loop commits `actions` (one per object) in revision-guarded
// transactions and calls again on the next store event, or at `wakeAt`.
//
// Order, and why:
//  1. allocateCluster — the default network and VNIs, a /24 for every node,
//     VIPs and ingress ports for every service. Nothing here depends on
//     tasks, and the scheduler's address filter needs the node subnets.
//  2. orchestrators, per service — replicated (slots, scale, restart
//     policy, node down/drain) or global (one task per eligible node); tasks
//     of removed services are told to stop. They decide how many tasks exist.
//  3. update supervisor, per service — after the orchestrator so it sees the
//     slots as they are now (a restart it made already uses the new spec) and
//     paces replacements of outdated tasks (parallelism, delay, monitor,
//     failure action, rollback).
//  4. scheduler — places every PENDING task, including the ones created in
//     2 and 3, counting this tick's placements as it goes.
//  5. allocateTasks — addresses and host ports for the tasks placed in 4, so
//     the agent gets a task with its addresses in the same write.
//  6. reaper — last, so it deletes only what is final after this tick.
import type { Action, ClusterSnapshot, Unschedulable } from './state/snapshot';
import { allocateCluster, allocateTasks, type AllocatorOptions } from './allocator/allocator';
import { reconcileGlobal, reconcileRemoved } from './orchestrator/global';
import { reconcileReplicated } from './orchestrator/replicated';
import { idGenerator, Working } from './orchestrator/working';
import { DEFAULT_TASK_HISTORY, reap } from './reaper/reaper';
import { schedule } from './scheduler/scheduler';
import { superviseUpdate } from './update/update';

export interface ReconcileOptions {
  /** Id source for new tasks and networks (tests pass a counter). Default: random prefix + counter. */
  newId?: () => string;
  /**
   * Reconcile only what changed since the last tick. Undefined = everything
   * (the leader must pass undefined on a periodic or `wakeAt` tick, and after
   * becoming leader). A dirty node makes every global service dirty, and
   * every service with a task on that node. The scheduler, the allocator and
   * the reaper always look at the whole snapshot (pending tasks, used
   * addresses); they are cheap when there is nothing to do.
   */
  dirty?: { services?: ReadonlySet<string>; nodes?: ReadonlySet<string> };
  /** Ended tasks kept per slot (docker's task history limit). */
  taskHistory?: number;
  allocator?: AllocatorOptions;
}

export interface ReconcileStats {
  created: number;
  assigned: number;
  unschedulable: number;
  addressed: number;
  reaped: number;
  /** Milliseconds spent per step (for the benchmark; never asserted). */
  ms: { allocate: number; orchestrate: number; schedule: number; addresses: number; reap: number };
}

export interface ReconcileResult {
  actions: Action[];
  unschedulable: Unschedulable[];
  /** Epoch ms at which a time-based decision is due (restart delay, update delay/monitor); undefined = none. */
  wakeAt?: number;
  stats: ReconcileStats;
}

function servicesToVisit(w: Working, dirty: ReconcileOptions['dirty']): Iterable<string> {
  const all = new Set<string>([...w.services.keys(), ...w.serviceIdsWithTasks()]);
  if (!dirty) return all;
  const out = new Set<string>();
  for (const s of dirty.services ?? []) if (all.has(s)) out.add(s);
  const nodes = dirty.nodes;
  if (nodes && nodes.size) {
    for (const s of w.services.values()) if (s.spec?.mode === 'GLOBAL') out.add(s.id);
    for (const t of w.tasks.values()) if (nodes.has(t.nodeId)) out.add(t.serviceId);
  }
  return out;
}

const clock = () => performance.now();

export function reconcile(snap: ClusterSnapshot, opts: ReconcileOptions = {}): ReconcileResult {
  const w = new Working(snap, opts.newId ?? idGenerator());
  const ms = { allocate: 0, orchestrate: 0, schedule: 0, addresses: 0, reap: 0 };
  let t0 = clock();

  allocateCluster(w);
  let t1 = clock();
  ms.allocate = t1 - t0;

  const visit = [...servicesToVisit(w, opts.dirty)];
  const before = w.tasks.size;
  for (const id of visit) {
    const svc = w.services.get(id);
    if (!svc || !svc.spec) {
      reconcileRemoved(w, id);
      continue;
    }
    if (svc.spec.mode === 'GLOBAL') reconcileGlobal(w, svc);
    else reconcileReplicated(w, svc);
    superviseUpdate(w, w.services.get(id)!);
  }
  t0 = clock();
  ms.orchestrate = t0 - t1;

  const sched = schedule(w);
  t1 = clock();
  ms.schedule = t1 - t0;

  const addressed = allocateTasks(w, opts.allocator);
  t0 = clock();
  ms.addresses = t0 - t1;

  const reaped = reap(w, opts.taskHistory ?? DEFAULT_TASK_HISTORY, opts.dirty ? visit : undefined);
  ms.reap = clock() - t0;

  return {
    actions: w.actions(),
    unschedulable: sched.unschedulable,
    wakeAt: Number.isFinite(w.wakeAt) ? w.wakeAt : undefined,
    stats: {
      created: Math.max(0, w.tasks.size - before + reaped),
      assigned: sched.assigned,
      unschedulable: sched.unschedulable.length,
      addressed,
      reaped,
      ms,
    },
  };
}

export { Working } from './orchestrator/working';
