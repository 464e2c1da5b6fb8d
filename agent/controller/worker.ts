// The set of task controllers of this node, kept in line with the
// assignments. A COMPLETE set is reconciled against what runs: tasks still
// assigned keep their controller (a running task is not restarted), new ones
// get one, and controllers of tasks no longer in the set stop and remove
// their task. Containers found on the host at start (executor.list) are
// adopted when the first COMPLETE set still assigns them, removed otherwise.
import { stateRank, type Task, type TaskStatus } from '../../proto/mod';
import type { ExistingContainer, Executor } from '../executor';
import { errMsg, nullLogger, type Logger } from '../../common/logger';
import type { EventSink } from '../../proto/events';
import { DEFAULT_STOP_GRACE_MS, TaskController } from './controller';
import type { StatusReporter } from './reporter';

export interface WorkerDeps {
  executor: Executor;
  reporter: Pick<StatusReporter, 'report'>;
  events?: EventSink;
  nodeId?: () => string;
  logger?: Logger;
}

export class Worker {
  private readonly controllers = new Map<string, TaskController>();
  /** Containers found at start, waiting for the first COMPLETE set to decide their fate. */
  private orphans: Map<string, ExistingContainer> | undefined;
  private readonly log: Logger;
  private closed = false;

  constructor(private readonly deps: WorkerDeps) {
    this.log = deps.logger ?? nullLogger;
    deps.executor.onHealthChange((taskId, state) => this.controllers.get(taskId)?.setHealth(state));
  }

  /** Looks at what the executor already runs (after an agent restart). Call once, before any assignments. */
  async init(): Promise<void> {
    const existing = await this.deps.executor.list();
    this.orphans = new Map(existing.map((c) => [c.taskId, c]));
    if (existing.length) this.log.info('found containers from a previous run', { count: existing.length });
  }

  /** Task ids with a controller (tests, metrics). */
  taskIds(): string[] {
    return [...this.controllers.keys()];
  }

  controller(taskId: string): TaskController | undefined {
    return this.controllers.get(taskId);
  }

  /** The whole set assigned to this node replaces what we believed. */
  applyComplete(tasks: Task[]): void {
    if (this.closed) return;
    const assigned = new Set(tasks.map((t) => t.id));
    for (const t of tasks) this.upsert(t);
    for (const [id, c] of this.controllers) if (!assigned.has(id)) c.unassign();
    if (this.orphans) {
      const orphans = this.orphans;
      this.orphans = undefined;
      for (const [id] of orphans) if (!assigned.has(id)) void this.removeOrphan(id);
    }
  }

  applyIncremental(updates: Task[], removes: string[]): void {
    if (this.closed) return;
    for (const t of updates) this.upsert(t);
    for (const id of removes) this.controllers.get(id)?.unassign();
  }

  /** Stops driving tasks (they keep running on the host, to be adopted by the next agent). */
  close(): void {
    this.closed = true;
  }

  private upsert(task: Task): void {
    const c = this.controllers.get(task.id);
    if (c) {
      // The manager's copy may be behind ours (an update lost with a dead
      // manager): report ours again. Forward-only on both sides makes this safe.
      const theirs = task.status?.state ?? 'NEW';
      if (stateRank(theirs) < stateRank(c.state)) c.resend();
      c.update(task);
      return;
    }
    const found = this.orphans?.get(task.id);
    this.orphans?.delete(task.id);
    const adopt = !!found?.running && task.desiredState === 'RUNNING';
    const { executor, events, nodeId, logger } = this.deps;
    const report = (id: string, st: TaskStatus) => this.deps.reporter.report(id, st);
    const nc = new TaskController(task, { executor, events, nodeId, logger, report }, { adopt });
    // A container that exists but is not adopted still holds resources: make
    // sure the controller's stop/remove path cleans it.
    if (found && !adopt) nc.markTouched();
    nc.onFinished = () => {
      if (this.controllers.get(task.id) === nc) this.controllers.delete(task.id);
    };
    this.controllers.set(task.id, nc);
    nc.kick();
  }

  private async removeOrphan(taskId: string): Promise<void> {
    this.log.info('removing container of a task no longer assigned', { 'task.id': taskId });
    try {
      await this.deps.executor.stop(taskId, DEFAULT_STOP_GRACE_MS);
      await this.deps.executor.remove(taskId);
    } catch (e) {
      this.log.warn('could not remove leftover container', { 'task.id': taskId, err: errMsg(e) });
    }
  }
}
