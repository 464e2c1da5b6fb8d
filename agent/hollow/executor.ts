// A hollow executor: pretends to run tasks. prepare/start resolve at once (or
// after a configured delay), wait() resolves only when the task is stopped,
// unless a failure is injected. Used by scale tests and benchmarks (many
// agents in one process) and by tests of restart policies and failed updates.
// Never the default executor.
//
// Failure injection, per task through the container spec labels, or for
// every task through environment variables (labels win):
//   convoy.hollow.exit=<code>           the task exits with <code> (0 = completes)
//   convoy.hollow.exit-after-ms=<ms>    ... this long after start (default 50)
//   convoy.hollow.prepare-error=<msg>   prepare throws a non-retryable ExecutorError (→ REJECTED)
//   convoy.hollow.start-error=<msg>     start throws a retryable ExecutorError (→ FAILED)
//   convoy.hollow.health=<state>        reported as the task's health after start
//   CONVOY_HOLLOW_EXIT, CONVOY_HOLLOW_EXIT_AFTER_MS, CONVOY_HOLLOW_PREPARE_ERROR,
//   CONVOY_HOLLOW_START_ERROR, CONVOY_HOLLOW_HEALTH: the same for every task.
import * as os from 'node:os';
import type { Task } from '../../proto/mod';
import {
  ExecutorError,
  type ExistingContainer,
  type Executor,
  type ExitResult,
  type HealthState,
  type NodeInfo,
  type TaskStats,
} from '../executor';

export const HOLLOW_LABEL_PREFIX = 'convoy.hollow.';
/** Delay before an injected exit, so the task is seen RUNNING first. */
export const DEFAULT_EXIT_AFTER_MS = 50;

export interface HollowOptions {
  hostname?: string;
  /** Advertised resources; default: this machine's. */
  nanoCpus?: number;
  memoryBytes?: number;
  engineLabels?: Record<string, string>;
  /** Delay of prepare() and start(), to mimic a real runtime (default 0). */
  prepareMs?: number;
  startMs?: number;
  /** Environment to read CONVOY_HOLLOW_* from (default process.env). */
  env?: NodeJS.ProcessEnv;
}

interface HollowContainer {
  task: Task;
  running: boolean;
  startedAt: number;
  exit?: ExitResult;
  waiters: ((r: ExitResult) => void)[];
  exitTimer?: NodeJS.Timeout;
}

function goArch(a: string): string {
  return a === 'x64' ? 'amd64' : a === 'ia32' ? '386' : a;
}

const sleep = (ms: number) => (ms > 0 ? new Promise<void>((r) => setTimeout(r, ms)) : Promise.resolve());

export class HollowExecutor implements Executor {
  private readonly containers = new Map<string, HollowContainer>();
  private readonly healthListeners: ((taskId: string, state: HealthState) => void)[] = [];
  private readonly healthOf = new Map<string, HealthState>();
  private readonly env: NodeJS.ProcessEnv;
  /** How many times start() actually started a process, per task id (tests count restarts). */
  readonly starts = new Map<string, number>();
  prepares = 0;
  stops = 0;
  removes = 0;

  constructor(private readonly opts: HollowOptions = {}) {
    this.env = opts.env ?? process.env;
  }

  /** Total start() calls that started a process. */
  get totalStarts(): number {
    let n = 0;
    for (const v of this.starts.values()) n += v;
    return n;
  }

  /** Ids of tasks currently "running". */
  running(): string[] {
    return [...this.containers.entries()].filter(([, c]) => c.running).map(([id]) => id);
  }

  async describe(): Promise<NodeInfo> {
    return {
      hostname: this.opts.hostname ?? os.hostname(),
      os: 'linux',
      arch: goArch(process.arch),
      nanoCpus: this.opts.nanoCpus ?? os.cpus().length * 1e9,
      memoryBytes: this.opts.memoryBytes ?? os.totalmem(),
      engineLabels: { 'convoy.executor': 'hollow', ...(this.opts.engineLabels ?? {}) },
    };
  }

  private knob(task: Task, name: string): string | undefined {
    const label = task.spec?.container?.labels?.[HOLLOW_LABEL_PREFIX + name];
    if (label !== undefined) return label;
    return this.env['CONVOY_HOLLOW_' + name.toUpperCase().replace(/-/g, '_')];
  }

  async prepare(task: Task): Promise<void> {
    await sleep(this.opts.prepareMs ?? 0);
    const err = this.knob(task, 'prepare-error');
    if (err) throw new ExecutorError(err, false);
    this.prepares++;
    if (!this.containers.has(task.id)) this.containers.set(task.id, { task, running: false, startedAt: 0, waiters: [] });
  }

  async start(task: Task): Promise<void> {
    await sleep(this.opts.startMs ?? 0);
    const err = this.knob(task, 'start-error');
    if (err) throw new ExecutorError(err, true);
    let c = this.containers.get(task.id);
    if (!c) {
      c = { task, running: false, startedAt: 0, waiters: [] };
      this.containers.set(task.id, c);
    }
    if (c.running || c.exit) return; // idempotent: already started
    c.running = true;
    c.startedAt = Date.now();
    this.starts.set(task.id, (this.starts.get(task.id) ?? 0) + 1);
    const exit = this.knob(task, 'exit');
    if (exit !== undefined && exit !== '') {
      const code = Number(exit) || 0;
      const after = Number(this.knob(task, 'exit-after-ms') ?? DEFAULT_EXIT_AFTER_MS);
      c.exitTimer = setTimeout(
        () => this.finish(task.id, { exitCode: code, oomKilled: false, reason: `exit code ${code}` }),
        after,
      );
    }
    const health = this.knob(task, 'health') as HealthState | undefined;
    if (health) {
      setImmediate(() => this.setHealth(task.id, health));
    }
  }

  private setHealth(taskId: string, h: HealthState): void {
    if (!this.containers.get(taskId)?.running) return;
    this.healthOf.set(taskId, h);
    for (const l of this.healthListeners) l(taskId, h);
  }

  private finish(taskId: string, res: ExitResult): void {
    const c = this.containers.get(taskId);
    if (!c || !c.running) return;
    if (c.exitTimer) clearTimeout(c.exitTimer);
    c.running = false;
    c.exit = res;
    const waiters = c.waiters;
    c.waiters = [];
    for (const w of waiters) w(res);
  }

  wait(taskId: string): Promise<ExitResult> {
    const c = this.containers.get(taskId);
    if (!c) return Promise.reject(new ExecutorError(`no container for task ${taskId}`, false));
    if (c.exit) return Promise.resolve(c.exit);
    return new Promise((resolve) => c.waiters.push(resolve));
  }

  async stop(taskId: string, _graceMs: number): Promise<void> {
    const c = this.containers.get(taskId);
    if (!c) return;
    this.stops++;
    this.finish(taskId, { exitCode: 137, signal: 'SIGKILL', oomKilled: false, reason: 'stopped' });
  }

  async remove(taskId: string): Promise<void> {
    const c = this.containers.get(taskId);
    if (!c) return;
    if (c.running) this.finish(taskId, { exitCode: 137, signal: 'SIGKILL', oomKilled: false, reason: 'removed' });
    this.containers.delete(taskId);
    this.healthOf.delete(taskId);
    this.removes++;
  }

  async list(): Promise<ExistingContainer[]> {
    return [...this.containers.entries()].map(([taskId, c]) => ({ taskId, running: c.running }));
  }

  async adopt(taskId: string): Promise<void> {
    if (!this.containers.has(taskId)) throw new ExecutorError(`no container for task ${taskId}`, false);
  }

  async stats(taskId: string): Promise<TaskStats | undefined> {
    const c = this.containers.get(taskId);
    if (!c) return undefined;
    return {
      timestampMs: Date.now(),
      cpuSeconds: 0,
      memoryBytes: 0,
      memoryLimitBytes: c.task.spec?.resources?.limits?.memoryBytes ?? 0,
      pids: c.running ? 1 : 0,
      netRxBytes: 0,
      netTxBytes: 0,
    };
  }

  health(taskId: string): HealthState {
    return this.healthOf.get(taskId) ?? 'none';
  }

  onHealthChange(listener: (taskId: string, state: HealthState) => void): void {
    this.healthListeners.push(listener);
  }

  async close(): Promise<void> {
    for (const c of this.containers.values()) if (c.exitTimer) clearTimeout(c.exitTimer);
  }
}
