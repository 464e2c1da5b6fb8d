// One task's controller: drives the Executor through the task state machine
//   ASSIGNED → ACCEPTED → PREPARING → STARTING → RUNNING → COMPLETE | FAILED
// and, when the desired state goes past RUNNING (SHUTDOWN, REMOVE) or the task
// is no longer assigned, stop → SHUTDOWN → remove. The observed state only
// moves forward (isForward); every transition is reported through the
// StatusReporter (batched) and, when an EventSink is given, published.
//
// All executor calls of one task are serialised: a single loop (`drive`) runs
// at a time and looks at the latest task + desired state after each step.
import {
  isForward,
  isTerminal,
  stateRank,
  type Task,
  type TaskStateName,
  type TaskStatus,
} from '../../proto/mod';
import { ExecutorError, type Executor, type ExitResult, type HealthState } from '../executor';
import { errMsg, nullLogger, type Logger } from '../../common/logger';
import type { EventSink } from '../../proto/events';
import { DEFAULT_STOP_GRACE_MS } from '../../proto/defaults';

export { DEFAULT_STOP_GRACE_MS };

export interface ControllerDeps {
  executor: Executor;
  /** Where statuses go (StatusReporter.report). */
  report: (taskId: string, status: TaskStatus) => void;
  events?: EventSink;
  /** The node id for events ('' until known). */
  nodeId?: () => string;
  logger?: Logger;
  now?: () => number;
}

export interface ControllerOptions {
  /** A container for this task was found running on the host (executor.list) and should be adopted. */
  adopt?: boolean;
}

/**
 * Maps an error of prepare/start to the terminal state it causes. As in
 * swarmkit, a task that could not be prepared here (image not pullable,
 * registry down, a bad mount) is REJECTED whatever the cause; a start failure
 * is REJECTED only when it cannot succeed on a retry, FAILED otherwise. Either
 * way the orchestrator replaces the task per the restart policy.
 */
export function failureState(e: unknown, phase: 'prepare' | 'start'): 'REJECTED' | 'FAILED' {
  if (phase === 'prepare') return 'REJECTED';
  return e instanceof ExecutorError && !e.retryable ? 'REJECTED' : 'FAILED';
}

function wantsStop(desired: TaskStateName): boolean {
  return stateRank(desired) > stateRank('RUNNING');
}

export class TaskController {
  private task: Task;
  private observed: TaskStatus;
  private assigned = true;
  private health: HealthState = 'none';
  private driving: Promise<void> | undefined;
  private again = false;
  private adopt: boolean;
  /** executor.remove() done (or nothing to remove). */
  private removed = false;
  /** stop() was called: a wait() result is a consequence of it, not an exit to report. */
  private stopping = false;
  /** The executor may hold resources for this task (prepare was called or a container was adopted). */
  private touched = false;
  /** prepare() succeeded in this process. */
  private prepared = false;
  /** A wait() is outstanding. */
  private watching = false;
  private readonly log: Logger;
  private readonly now: () => number;
  /** Called once the task is unassigned and cleaned up: the worker forgets it. */
  onFinished: (() => void) | undefined;

  constructor(
    task: Task,
    private readonly deps: ControllerDeps,
    opts: ControllerOptions = {},
  ) {
    this.task = task;
    this.adopt = opts.adopt ?? false;
    this.log = (deps.logger ?? nullLogger).child({ 'task.id': task.id, 'service.name': task.serviceName });
    this.now = deps.now ?? Date.now;
    // Start from what the manager last saw (an agent restart must not move a
    // task backwards), but never before ASSIGNED.
    const from = task.status?.state ?? 'ASSIGNED';
    this.observed = {
      state: isForward('ASSIGNED', from) ? from : 'ASSIGNED',
      timestamp: task.status?.timestamp ?? 0,
      message: task.status?.message ?? '',
      err: task.status?.err ?? '',
      exitCode: task.status?.exitCode ?? 0,
      pid: task.status?.pid ?? 0,
      health: task.status?.health ?? '',
    };
    if (this.adopt) this.touched = true;
  }

  get id(): string {
    return this.task.id;
  }

  get state(): TaskStateName {
    return this.observed.state;
  }

  get status(): TaskStatus {
    return this.observed;
  }

  get current(): Task {
    return this.task;
  }

  /** Whether the task is still assigned (false once unassign() was called). */
  get isAssigned(): boolean {
    return this.assigned;
  }

  /** A newer version of the task arrived (desired state may have changed). */
  update(task: Task): void {
    this.task = task;
    this.kick();
  }

  /** The task is no longer assigned to this node: stop and remove it, then forget it. */
  unassign(): void {
    this.assigned = false;
    this.kick();
  }

  /** Report the current status again (the manager's copy was behind ours). */
  resend(): void {
    this.deps.report(this.task.id, { ...this.observed });
  }

  /** The executor holds something for this task already (a container found on the host). */
  markTouched(): void {
    this.touched = true;
  }

  /** A health transition from the executor. */
  setHealth(h: HealthState): void {
    if (h === this.health) return;
    this.health = h;
    if (this.observed.state === 'RUNNING') {
      this.transition('RUNNING', { message: `health: ${h}`, health: h });
    }
  }

  /** Resolves when the current drive loop is idle (tests, shutdown). */
  async settled(): Promise<void> {
    while (this.driving) await this.driving;
  }

  kick(): void {
    if (this.driving) {
      this.again = true;
      return;
    }
    this.driving = (async () => {
      do {
        this.again = false;
        try {
          await this.step();
        } catch (e) {
          this.log.error('task controller step failed', { err: errMsg(e) });
        }
      } while (this.again);
    })().finally(() => {
      this.driving = undefined;
    });
  }

  private async step(): Promise<void> {
    const ex = this.deps.executor;
    const desired = this.task.desiredState;
    if (!this.assigned || wantsStop(desired)) {
      await this.shutdown();
      return;
    }
    // Desired RUNNING from here on.
    const s = this.observed.state;
    if (isTerminal(s)) return; // never restarted in place: the orchestrator makes a new task
    if (this.adopt) {
      this.adopt = false;
      try {
        await ex.adopt(this.task.id);
        this.transition('RUNNING', { message: 'adopted after agent restart' });
        this.watch();
      } catch (e) {
        this.transition('FAILED', { message: 'could not adopt container', err: errMsg(e) });
      }
      return;
    }
    if (s === 'RUNNING') {
      // Only reachable when the manager says RUNNING but no container was
      // found to adopt: the process is gone and we do not know how it ended.
      if (!this.watching) {
        this.transition('FAILED', { message: 'container not found on the node', err: 'task container is gone (agent or host restarted)' });
      }
      return;
    }
    if (stateRank(s) < stateRank('ACCEPTED')) {
      this.transition('ACCEPTED', { message: 'accepted' });
    }
    if (!this.prepared) {
      // Also re-run after an agent restart that found the task STARTING:
      // prepare is idempotent, and start may need what it builds.
      this.transition('PREPARING', { message: 'preparing' });
      this.touched = true;
      try {
        await ex.prepare(this.task);
      } catch (e) {
        this.transition(failureState(e, 'prepare'), { message: 'prepare failed', err: errMsg(e) });
        return;
      }
      this.prepared = true;
      if (this.stopRequested()) {
        this.again = true; // desired state changed while preparing: go round once more
        return;
      }
    }
    this.transition('STARTING', { message: 'starting' });
    try {
      await ex.start(this.task);
    } catch (e) {
      this.transition(failureState(e, 'start'), { message: 'start failed', err: errMsg(e) });
      return;
    }
    this.transition('RUNNING', { message: 'started' });
    this.watch();
  }

  private stopRequested(): boolean {
    return !this.assigned || wantsStop(this.task.desiredState);
  }

  /** Waits for the main process to exit and reports how it ended. */
  private watch(): void {
    if (this.watching) return;
    this.watching = true;
    const id = this.task.id;
    this.deps.executor.wait(id).then(
      (res: ExitResult) => {
        this.watching = false;
        if (this.stopping) return;
        const ok = res.exitCode === 0 && !res.oomKilled && !res.signal;
        if (ok) this.transition('COMPLETE', { message: 'finished', exitCode: 0 });
        else
          this.transition('FAILED', {
            message: res.oomKilled ? 'OOM killed' : 'task exited',
            err: res.reason || `exit code ${res.exitCode}`,
            exitCode: res.exitCode,
          });
        this.kick();
      },
      (e: unknown) => {
        this.watching = false;
        if (this.stopping) return;
        this.transition('FAILED', { message: 'lost track of the container', err: errMsg(e) });
        this.kick();
      },
    );
  }

  private async shutdown(): Promise<void> {
    const ex = this.deps.executor;
    const s = this.observed.state;
    if (!isTerminal(s)) {
      if (this.touched) {
        this.stopping = true;
        const grace = this.task.spec?.container?.stopGracePeriodMs || DEFAULT_STOP_GRACE_MS;
        try {
          await ex.stop(this.task.id, grace);
        } catch (e) {
          this.log.warn('stop failed', { err: errMsg(e) });
        }
      }
      this.transition('SHUTDOWN', { message: 'shutdown' });
    }
    if (!this.removed) {
      if (this.touched) {
        try {
          await ex.remove(this.task.id);
        } catch (e) {
          this.log.warn('remove failed, will retry on the next change', { err: errMsg(e) });
          return;
        }
      }
      this.removed = true;
    }
    if (!this.assigned) this.onFinished?.();
  }

  /** Moves the observed state (only forward) and reports it. */
  private transition(state: TaskStateName, fields: Partial<TaskStatus>): void {
    const from = this.observed.state;
    if (!isForward(from, state)) {
      this.log.debug('refusing to move task backwards', { from, to: state });
      return;
    }
    this.observed = {
      ...this.observed,
      err: '',
      ...fields,
      state,
      timestamp: this.now(),
      health: fields.health ?? (state === 'RUNNING' ? this.health : this.observed.health),
    };
    if (from !== state) this.log.info('task state', { from, to: state, err: this.observed.err || undefined });
    this.deps.report(this.task.id, { ...this.observed });
    if (this.deps.events && from !== state) {
      this.deps.events.publish({
        type: 'task',
        action: 'state',
        time: this.observed.timestamp,
        source: `agent/${this.deps.nodeId?.() ?? ''}`,
        taskId: this.task.id,
        serviceId: this.task.serviceId,
        serviceName: this.task.serviceName,
        slot: this.task.slot,
        nodeId: this.task.nodeId,
        state,
        desiredState: this.task.desiredState,
        message: this.observed.message,
        err: this.observed.err || undefined,
      });
    }
  }
}
