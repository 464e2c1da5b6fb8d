// The working copy one reconcile tick runs on. Every reconciler reads the
// objects as this tick left them (so the scheduler sees the tasks the
// orchestrators created a moment ago) and records its writes here; at the
// end the writes become the tick's Action[]: exactly one action per object,
// a create followed by updates stays one create, a create followed by a
// delete disappears. No I/O, no clock but `now`.
import { randomBytes } from 'node:crypto';
import type { Cluster, Network, Node, Service, Task } from '../../proto/mod';
import type { Action, ClusterSnapshot } from '../state/snapshot';

type Write =
  | { kind: 'service'; op: 'update'; obj: Service }
  | { kind: 'node'; op: 'update'; obj: Node }
  | { kind: 'network'; op: 'create' | 'update'; obj: Network };

export class Working {
  readonly now: number;
  readonly cluster: Cluster;
  readonly services: Map<string, Service>;
  readonly nodes: Map<string, Node>;
  readonly networks: Map<string, Network>;
  readonly tasks: Map<string, Task>;
  /** serviceId → its tasks, current versions. */
  private readonly byService = new Map<string, Map<string, Task>>();
  private readonly writes = new Map<string, Write>();
  /** Task writes by id (the hot path: up to one per task per tick); the object is in `tasks`, or `deleted`. */
  private readonly taskOps = new Map<string, 'create' | 'update' | 'delete'>();
  private readonly deleted = new Map<string, Task>();
  /** One TaskSpec object per service and spec version, shared by the tasks created this tick. */
  readonly taskSpecs = new Map<string, { version: number; spec: Task['spec'] }>();
  /** Earliest future time at which a time-based decision changes (restart delay, update pacing). */
  wakeAt = Infinity;

  constructor(
    readonly snap: ClusterSnapshot,
    readonly newId: () => string,
  ) {
    this.now = snap.now;
    this.cluster = snap.cluster;
    this.services = new Map(snap.services);
    this.nodes = new Map(snap.nodes);
    this.networks = new Map(snap.networks);
    this.tasks = new Map(snap.tasks);
    for (const t of snap.tasks.values()) this.index(t);
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
    this.writes.set(`s/${s.id}`, { kind: 'service', op: 'update', obj: s });
    return s;
  }

  updateNode(n: Node): Node {
    this.nodes.set(n.id, n);
    this.writes.set(`n/${n.id}`, { kind: 'node', op: 'update', obj: n });
    return n;
  }

  createNetwork(n: Network): Network {
    this.networks.set(n.id, n);
    this.writes.set(`w/${n.id}`, { kind: 'network', op: 'create', obj: n });
    return n;
  }

  updateNetwork(n: Network): Network {
    this.networks.set(n.id, n);
    const k = `w/${n.id}`;
    this.writes.set(k, { kind: 'network', op: this.writes.get(k)?.op === 'create' ? 'create' : 'update', obj: n });
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

  actions(): Action[] {
    const out: Action[] = [];
    for (const w of this.writes.values()) {
      switch (w.kind) {
        case 'service':
          out.push({ op: 'updateService', service: w.obj });
          break;
        case 'node':
          out.push({ op: 'updateNode', node: w.obj });
          break;
        case 'network':
          out.push(w.op === 'create' ? { op: 'createNetwork', network: w.obj } : { op: 'updateNetwork', network: w.obj });
          break;
      }
    }
    for (const [id, op] of this.taskOps) {
      if (op === 'delete') out.push({ op: 'deleteTask', task: this.deleted.get(id)! });
      else out.push(op === 'create' ? { op: 'createTask', task: this.tasks.get(id)! } : { op: 'updateTask', task: this.tasks.get(id)! });
    }
    return out;
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
