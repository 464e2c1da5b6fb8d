// The working copy one reconcile tick runs on. Every reconciler reads the
// objects as this tick left them (so the scheduler sees the tasks the
// orchestrators created a moment ago) and records its writes here; at the
// end they become the tick's writes, in the store's own Write type: exactly
// one per object, a create followed by updates stays one create, a create
// followed by a delete disappears. No I/O, no clock but `now` (and the
// slice clock of `due()`, which decides only when to pause, never what).
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { Cluster, Network, Node, Service, Task } from '../../proto/mod';
import type { ClusterSnapshot } from '../state/snapshot';
import type { Write } from '../store/store';

/** Loop iterations between two looks at the slice clock (a look costs ~50 ns; 512 iterations well under 1 ms). */
const SLICE_CHECK_EVERY = 512;

export class Working {
  readonly now: number;
  readonly cluster: Cluster;
  readonly services: Map<string, Service>;
  readonly nodes: Map<string, Node>;
  readonly networks: Map<string, Network>;
  readonly tasks: Map<string, Task>;
  /** serviceId → its tasks, current versions. */
  private readonly byService = new Map<string, Map<string, Task>>();
  /** Service, node and network writes by kind/id. */
  private readonly writes = new Map<string, Write>();
  /** Task writes by id (the hot path: up to one per task per tick); the object is in `tasks`, or `deleted`. */
  private readonly taskOps = new Map<string, 'create' | 'update' | 'delete'>();
  private readonly deleted = new Map<string, Task>();
  /** One TaskSpec object per service and spec version, shared by the tasks created this tick. */
  readonly taskSpecs = new Map<string, { version: number; spec: Task['spec'] }>();
  /** Earliest future time at which a time-based decision changes (restart delay, update pacing). */
  wakeAt = Infinity;
  /** End of the current slice (performance.now() ms); NaN = a slice starts at the next look. */
  private sliceEnd: number;
  private sinceLook = 0;

  /**
   * `sliceMs`: how long the reconcile steps run before they pause (a `yield`
   * of reconcileSteps) so the leader can give the event loop back: the
   * election's keepalive runs on it. Infinity (the default) never pauses.
   */
  constructor(
    readonly snap: ClusterSnapshot,
    readonly newId: () => string,
    private readonly sliceMs = Infinity,
  ) {
    this.sliceEnd = performance.now() + sliceMs;
    this.now = snap.now;
    this.cluster = snap.cluster;
    this.services = new Map(snap.services);
    this.nodes = new Map(snap.nodes);
    this.networks = new Map(snap.networks);
    this.tasks = new Map(snap.tasks);
    for (const t of snap.tasks.values()) this.index(t);
  }

  /**
   * True when the current slice is used up: the step yields. Called once
   * per loop iteration of every step that loops over tasks; looks at the
   * clock every SLICE_CHECK_EVERY calls. After a true, the next look starts
   * a new slice (the caller has yielded and been resumed by then).
   */
  due(): boolean {
    if (++this.sinceLook < SLICE_CHECK_EVERY) return false;
    this.sinceLook = 0;
    const t = performance.now();
    if (Number.isNaN(this.sliceEnd)) {
      this.sliceEnd = t + this.sliceMs;
      return false;
    }
    if (t < this.sliceEnd) return false;
    this.sliceEnd = NaN;
    return true;
  }

  /** Starts a new slice now (the driver calls it when it resumes the steps). */
  resumed(): void {
    this.sinceLook = 0;
    this.sliceEnd = performance.now() + this.sliceMs;
  }

  private index(t: Task): void {
    const m = this.byService.get(t.serviceId);
    if (m) m.set(t.id, t);
    else this.byService.set(t.serviceId, new Map([[t.id, t]]));
  }

  /** The current version of every task of a service. */
  tasksOf(serviceId: string): Task[] {
    const m = this.byService.get(serviceId);
    return m ? Array.from(m.values()) : [];
  }

  /**
   * True when `t` is an object this tick made (not the snapshot's): its
   * owner may change it in place instead of copying it (the hot path of a
   * 100,000-task tick allocates once per task, not three times).
   */
  isOwned(t: Task): boolean {
    return this.taskOps.get(t.id) === 'create' && this.tasks.get(t.id) === t;
  }

  /** Ids of services that have tasks in the working copy (including removed services). */
  serviceIdsWithTasks(): string[] {
    return [...this.byService.keys()];
  }

  createTask(t: Task): Task {
    this.tasks.set(t.id, t);
    this.index(t);
    this.taskOps.set(t.id, 'create');
    return t;
  }

  updateTask(t: Task): Task {
    this.tasks.set(t.id, t);
    this.byService.get(t.serviceId)?.set(t.id, t);
    if (this.taskOps.get(t.id) !== 'create') this.taskOps.set(t.id, 'update');
    return t;
  }

  deleteTask(t: Task): void {
    this.tasks.delete(t.id);
    this.byService.get(t.serviceId)?.delete(t.id);
    if (this.taskOps.get(t.id) === 'create') this.taskOps.delete(t.id);
    else {
      this.taskOps.set(t.id, 'delete');
      this.deleted.set(t.id, this.snap.tasks.get(t.id) ?? t);
    }
  }

  /** Ids of the tasks written so far this tick (created or updated). */
  *writtenTaskIds(): Iterable<string> {
    for (const [id, op] of this.taskOps) if (op !== 'delete') yield id;
  }

  updateService(s: Service): Service {
    this.services.set(s.id, s);
    this.writes.set(`services/${s.id}`, { kind: 'services', op: 'update', obj: s });
    return s;
  }

  updateNode(n: Node): Node {
    this.nodes.set(n.id, n);
    this.writes.set(`nodes/${n.id}`, { kind: 'nodes', op: 'update', obj: n });
    return n;
  }

  createNetwork(n: Network): Network {
    this.networks.set(n.id, n);
    this.writes.set(`networks/${n.id}`, { kind: 'networks', op: 'create', obj: n });
    return n;
  }

  updateNetwork(n: Network): Network {
    this.networks.set(n.id, n);
    const k = `networks/${n.id}`;
    this.writes.set(k, { kind: 'networks', op: this.writes.get(k)?.op === 'create' ? 'create' : 'update', obj: n });
    return n;
  }

  /** True when the task is not in the store yet (created this tick). */
  isNew(taskId: string): boolean {
    return !this.snap.tasks.has(taskId);
  }

  wake(at: number): void {
    if (at > this.now && at < this.wakeAt) this.wakeAt = at;
  }

  get writeCount(): number {
    return this.writes.size + this.taskOps.size;
  }

  /** The tick's writes, one per object: services, nodes and networks first, then tasks. */
  *result(): Generator<void, Write[]> {
    const out: Write[] = [...this.writes.values()];
    for (const [id, op] of this.taskOps) {
      if (this.due()) yield;
      if (op === 'delete') out.push({ op: 'delete', kind: 'tasks', obj: this.deleted.get(id)! });
      else out.push({ op, kind: 'tasks', obj: this.tasks.get(id)! });
    }
    return out;
  }
}

/** Runs a sliced step to its end without pausing (tests, and callers that need no slicing). */
export function drain<T>(g: Generator<void, T>): T {
  for (;;) {
    const r = g.next();
    if (r.done) return r.value;
  }
}

/**
 * Task ids: 25 random hex characters like the rest of Convoy's ids, so the
 * 12 shown in tables tell tasks apart (a shared prefix plus a counter did not).
 * Random bytes are drawn 4,096 ids at a time: 100,000 ids per tick cost a few ms.
 */
export function idGenerator(): () => string {
  let pool = Buffer.alloc(0);
  let off = 0;
  return () => {
    if (off + 13 > pool.length) {
      pool = randomBytes(13 * 4096);
      off = 0;
    }
    const id = pool.toString('hex', off, off + 13).slice(0, 25);
    off += 13;
    return id;
  };
}
