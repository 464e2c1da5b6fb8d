// One tick of the control plane: every reconciler, composed in order over
// one working copy of the snapshot, so each step sees what the earlier ones
// decided in the same tick (the scheduler places the tasks the orchestrators
// just created; the allocator addresses the tasks the scheduler just placed).
// Pure: no I/O, no timers, `snap.now` is the clock. It returns the store's
// own writes (manager/store Write: create/update/delete of one object), one
// per object; the leader loop commits them in revision-guarded transactions
// and calls again on the next store event, or at `wakeAt`.
//
// reconcileSteps is the same tick as a generator that pauses (yields) when
// its slice of `sliceMs` is used up, so the leader can give the event loop
// back between slices (the election's keepalive runs on it: a 100,000-task
// tick is seconds of CPU, the election TTL 2 s). reconcile() runs the steps
// to the end without pausing. Where a step pauses never changes what it
// decides: the working copy is the tick's own.
//
// Order, and why:
//  0. node liveness (the session keys alive now) and the autoscaler's
//     decisions: they change nodes and replicas, which everything after acts
//     on; the nodes and services they change become dirty.
//  1. allocateCluster — the default network and VNIs, a /24 for every node,
//     VIPs and ingress ports for every service. Nothing here depends on
//     tasks, and the scheduler's address filter needs the node subnets.
//  2. orchestrators, per service — replicated (slots, scale, restart
//     policy, node down/drain) or global (one task per eligible node); tasks
//     of removed services are told to stop. They decide how many tasks exist.
//     Jobs (replicated-job, global-job) have their own orchestrator: runs,
//     completions, schedules (orchestrator/jobs.ts); no update supervisor.
//  3. update supervisor, per service — after the orchestrator so it sees the
//     slots as they are now (a restart it made already uses the new spec) and
//     paces replacements of outdated tasks (parallelism, delay, monitor,
//     failure action, rollback).
//  4. scheduler — places every PENDING task, including the ones created in
//     2 and 3, counting this tick's placements as it goes.
//  5. allocateTasks — addresses and host ports for the tasks placed in 4, so
//     the agent gets a task with its addresses in the same write.
//  6. reaper — last, so it deletes only what is final after this tick.
import type { ClusterSnapshot, Unschedulable } from './state/snapshot';
import type { Write } from './store/store';
import type { ScaleDecision } from './hooks';
import { allocateCluster, allocateTasks, type AllocatorOptions } from './allocator/allocator';
import { applyScale } from './autoscale/apply';
import { reconcileGlobal, reconcileRemoved } from './orchestrator/global';
import { markLiveness, NEW_SESSION_GRACE_MS } from './orchestrator/liveness';
import { reconcileReplicated } from './orchestrator/replicated';
import { isJob, reconcileJob } from './orchestrator/jobs';
import { drain, idGenerator, Working } from './orchestrator/working';
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
  /**
   * Nodes whose session key is alive (the state cache's `alive`): step 0
   * marks nodes ready or down from it. Undefined = node states are taken as
   * they are (tests of the later steps).
   */
  alive?: ReadonlySet<string>;
  /** How long a new session may go without its key before its node is down. Default NEW_SESSION_GRACE_MS. */
  newSessionGraceMs?: number;
  /** The autoscaler's decisions for this tick (step 0). */
  scale?: readonly ScaleDecision[];
  /** Milliseconds reconcileSteps runs before it pauses; default Infinity (never). */
  sliceMs?: number;
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
  /** One per object: the store's write type, committed as they are. */
  writes: Write[];
  unschedulable: Unschedulable[];
  /** Epoch ms at which a time-based decision is due (restart delay, update delay/monitor); undefined = none. */
  wakeAt?: number;
  stats: ReconcileStats;
}

function* servicesToVisit(w: Working, dirty: { services: ReadonlySet<string>; nodes: ReadonlySet<string> } | undefined): Generator<void, Set<string>> {
  const all = new Set<string>([...w.services.keys(), ...w.serviceIdsWithTasks()]);
  if (!dirty) return all;
  const out = new Set<string>();
  for (const s of dirty.services) if (all.has(s)) out.add(s);
  const nodes = dirty.nodes;
  if (nodes.size) {
    for (const s of w.services.values()) if (s.spec?.mode === 'GLOBAL' || s.spec?.mode === 'GLOBAL_JOB') out.add(s.id);
    for (const t of w.tasks.values()) {
      if (w.due()) yield;
      if (nodes.has(t.nodeId)) out.add(t.serviceId);
    }
  }
  return out;
}

const clock = () => performance.now();

export function reconcile(snap: ClusterSnapshot, opts: ReconcileOptions = {}): ReconcileResult {
  return drain(reconcileSteps(snap, { ...opts, sliceMs: Infinity }));
}

/**
 * The tick as a generator: every `yield` is a pause after about `sliceMs`
 * of work; resume it (next()) until it is done. The snapshot must not change
 * while it is paused (the leader hands it a copy).
 */
export function* reconcileSteps(snap: ClusterSnapshot, opts: ReconcileOptions = {}): Generator<void, ReconcileResult> {
  const w = new Working(snap, opts.newId ?? idGenerator(), opts.sliceMs ?? Infinity);
  const ms = { allocate: 0, orchestrate: 0, schedule: 0, addresses: 0, reap: 0 };
  let t0 = clock();

  // Step 0: what changed outside the reconcilers' own writes; it makes its objects dirty.
  const dirty = opts.dirty && { services: new Set(opts.dirty.services ?? []), nodes: new Set(opts.dirty.nodes ?? []) };
  if (opts.alive) for (const id of markLiveness(w, opts.alive, opts.newSessionGraceMs ?? NEW_SESSION_GRACE_MS)) dirty?.nodes.add(id);
  if (opts.scale?.length) for (const id of applyScale(w, opts.scale)) dirty?.services.add(id);

  allocateCluster(w);
  let t1 = clock();
  ms.allocate = t1 - t0;

  const visit = [...(yield* servicesToVisit(w, dirty))];
  const before = w.tasks.size;
  for (const id of visit) {
    if (w.due()) yield;
    const svc = w.services.get(id);
    if (!svc || !svc.spec) {
      reconcileRemoved(w, id);
      continue;
    }
    if (isJob(svc)) {
      // Jobs: a new spec version is a new run, not a rolling update (orchestrator/jobs.ts).
      yield* reconcileJob(w, svc);
      continue;
    }
    if (svc.spec.mode === 'GLOBAL') reconcileGlobal(w, svc);
    else yield* reconcileReplicated(w, svc);
    yield* superviseUpdate(w, w.services.get(id)!);
  }
  t0 = clock();
  ms.orchestrate = t0 - t1;

  const sched = yield* schedule(w);
  t1 = clock();
  ms.schedule = t1 - t0;

  const addressed = yield* allocateTasks(w, opts.allocator);
  t0 = clock();
  ms.addresses = t0 - t1;

  const reaped = yield* reap(w, opts.taskHistory ?? DEFAULT_TASK_HISTORY, dirty ? visit : undefined);
  ms.reap = clock() - t0;

  const writes = yield* w.result();
  return {
    writes,
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
