// The agent's Prometheus metrics (prom-client, one Registry per agent).
// Per-task series carry exactly three labels (service, task, slot); nothing
// else has a label per task. Usage comes from the executor's stats (for the
// container runtime: the task's cgroup and its network namespace's
// /proc/<pid>/net/dev), collected by the TaskSampler that also feeds the
// autoscaler over NATS.
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { NetworkState, Task } from '../../proto/mod';
import type { TaskEvent } from '../../proto/events';
import type { Executor, TaskStats } from '../executor';
import { ContainerExecutor } from '../runtime/executor';
import { FastStats } from './fast-stats';

/** Container start: STARTING → RUNNING, seconds. */
const START_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
/** Image pulls and task preparation, seconds. */
const PULL_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];
/** How many tasks' stats are read at once. */
const SAMPLE_CONCURRENCY = 16;
/** A scrape within this of the last sample reuses it (the stats loop and Prometheus share samples). */
export const SAMPLE_REUSE_MS = 500;

export interface TaskSample {
  task: Task;
  stats: TaskStats;
  /** CPU over the interval since the previous sample of the task, in cores (0 for the first). */
  cpuCores: number;
}

/** The tasks an agent holds, with their observed state. */
export type TaskSource = () => { task: Task; state: string }[];

/** States in which a task has a container whose usage can be read. */
const HAS_CONTAINER = new Set(['STARTING', 'RUNNING']);

export class TaskSampler {
  private prev = new Map<string, TaskStats>();
  private last: { at: number; samples: TaskSample[] } | undefined;
  private inflight: Promise<TaskSample[]> | undefined;
  /** Wall time of the last collection, ms (bench:metrics reports it). */
  lastCollectMs = 0;

  private readonly fast: FastStats | undefined;

  constructor(private readonly executor: Executor, private readonly tasks: TaskSource) {
    this.fast = executor instanceof ContainerExecutor ? new FastStats(executor) : undefined;
  }

  /** Fresh samples, or the last ones when younger than SAMPLE_REUSE_MS; concurrent callers share one collection. */
  sample(now = Date.now()): Promise<TaskSample[]> {
    if (this.last && now - this.last.at < SAMPLE_REUSE_MS) return Promise.resolve(this.last.samples);
    this.inflight ??= this.collect().finally(() => (this.inflight = undefined));
    return this.inflight;
  }

  private async collect(): Promise<TaskSample[]> {
    const t0 = performance.now();
    const todo = this.tasks().filter((t) => HAS_CONTAINER.has(t.state));
    this.fast?.retain(new Set(todo.map((t) => t.task.id)));
    const out: TaskSample[] = [];
    let i = 0;
    const worker = async () => {
      while (i < todo.length) {
        const { task } = todo[i++];
        const stats = (await this.fast?.stats(task.id).catch(() => undefined)) ?? (await this.executor.stats(task.id).catch(() => undefined));
        if (stats) out.push({ task, stats, cpuCores: 0 });
      }
    };
    await Promise.all(Array.from({ length: Math.min(SAMPLE_CONCURRENCY, todo.length) }, worker));
    const next = new Map<string, TaskStats>();
    for (const s of out) {
      const p = this.prev.get(s.task.id);
      if (p && s.stats.timestampMs > p.timestampMs) s.cpuCores = Math.max(0, (s.stats.cpuSeconds - p.cpuSeconds) / ((s.stats.timestampMs - p.timestampMs) / 1000));
      next.set(s.task.id, s.stats);
    }
    this.prev = next;
    this.last = { at: Date.now(), samples: out };
    this.lastCollectMs = performance.now() - t0;
    return out;
  }
}

export class AgentMetrics {
  readonly registry = new Registry();
  private readonly cpu: Counter<'service' | 'task' | 'slot'>;
  private readonly mem: Gauge<'service' | 'task' | 'slot'>;
  private readonly memLimit: Gauge<'service' | 'task' | 'slot'>;
  private readonly pids: Gauge<'service' | 'task' | 'slot'>;
  private readonly rx: Counter<'service' | 'task' | 'slot'>;
  private readonly tx: Counter<'service' | 'task' | 'slot'>;
  private readonly restarts: Counter<'service' | 'task' | 'slot'>;
  private readonly taskStates: Gauge<'state'>;
  private readonly startLatency: Histogram;
  private readonly prepareLatency: Histogram;
  readonly pullBytes: Counter;
  readonly pullDuration: Histogram;
  private readonly backends: Gauge<'service'>;
  readonly natsConnected: Gauge;
  readonly natsDropped: Counter;
  readonly collectDuration: Gauge;
  private readonly phaseStart = new Map<string, { state: string; at: number }>();

  constructor() {
    const r = [this.registry];
    const L = ['service', 'task', 'slot'] as const;
    this.cpu = new Counter({ name: 'convoy_task_cpu_seconds_total', help: 'CPU time used by the task (user + system).', labelNames: L, registers: r });
    this.mem = new Gauge({ name: 'convoy_task_memory_usage_bytes', help: 'Memory used by the task (cgroup).', labelNames: L, registers: r });
    this.memLimit = new Gauge({ name: 'convoy_task_memory_limit_bytes', help: 'Memory limit of the task; 0 = unlimited.', labelNames: L, registers: r });
    this.pids = new Gauge({ name: 'convoy_task_pids', help: 'Processes and threads of the task.', labelNames: L, registers: r });
    this.rx = new Counter({ name: 'convoy_task_network_receive_bytes_total', help: 'Bytes received by the task (all interfaces but lo).', labelNames: L, registers: r });
    this.tx = new Counter({ name: 'convoy_task_network_transmit_bytes_total', help: 'Bytes sent by the task (all interfaces but lo).', labelNames: L, registers: r });
    this.restarts = new Counter({ name: 'convoy_task_restarts_total', help: 'Earlier attempts of the task slot (the task is attempt N+1 of its slot).', labelNames: L, registers: r });
    this.taskStates = new Gauge({ name: 'convoy_agent_tasks', help: 'Tasks on this node by observed state.', labelNames: ['state'], registers: r });
    this.startLatency = new Histogram({ name: 'convoy_container_start_duration_seconds', help: 'Container start: task STARTING → RUNNING.', buckets: START_BUCKETS, registers: r });
    this.prepareLatency = new Histogram({ name: 'convoy_task_prepare_duration_seconds', help: 'Task preparation (image pull, root filesystem, network): PREPARING → STARTING.', buckets: PULL_BUCKETS, registers: r });
    this.pullBytes = new Counter({ name: 'convoy_image_pull_bytes_total', help: 'Bytes downloaded from registries (manifests, configs, layers).', registers: r });
    this.pullDuration = new Histogram({ name: 'convoy_image_pull_duration_seconds', help: 'Image pulls (including ones that found every layer already here).', buckets: PULL_BUCKETS, registers: r });
    this.backends = new Gauge({ name: 'convoy_lb_backends', help: 'Load-balancer backends (task endpoints) per service in the last network state.', labelNames: ['service'], registers: r });
    this.natsConnected = new Gauge({ name: 'convoy_agent_nats_connected', help: '1 while the agent is connected to NATS.', registers: r });
    this.collectDuration = new Gauge({ name: 'convoy_agent_stats_collect_duration_seconds', help: 'Wall time of the last collection of every task\'s usage.', registers: r });
    this.natsDropped = new Counter({ name: 'convoy_agent_nats_dropped_total', help: 'Events and stats dropped while NATS was away (bounded buffer full).', registers: r });
  }

  /** Refreshes the per-task series from samples (called before every scrape). */
  update(samples: readonly TaskSample[], tasks: { task: Task; state: string }[]): void {
    for (const m of [this.cpu, this.mem, this.memLimit, this.pids, this.rx, this.tx, this.restarts]) m.reset();
    for (const { task, stats } of samples) {
      const l = { service: task.serviceName, task: task.id, slot: String(task.slot) };
      this.cpu.inc(l, stats.cpuSeconds);
      this.mem.set(l, stats.memoryBytes);
      this.memLimit.set(l, stats.memoryLimitBytes);
      this.pids.set(l, stats.pids);
      this.rx.inc(l, stats.netRxBytes);
      this.tx.inc(l, stats.netTxBytes);
      this.restarts.inc(l, task.attempt ?? 0);
    }
    this.taskStates.reset();
    const byState = new Map<string, number>();
    for (const t of tasks) byState.set(t.state, (byState.get(t.state) ?? 0) + 1);
    for (const [state, n] of byState) this.taskStates.set({ state }, n);
  }

  /** Task state events from the controllers: phase latencies. */
  taskEvent(e: TaskEvent): void {
    const prev = this.phaseStart.get(e.taskId);
    if (prev?.state === 'PREPARING' && e.state === 'STARTING') this.prepareLatency.observe(Math.max(0, e.time - prev.at) / 1000);
    if (prev?.state === 'STARTING' && e.state === 'RUNNING') this.startLatency.observe(Math.max(0, e.time - prev.at) / 1000);
    if (e.state === 'PREPARING' || e.state === 'STARTING') this.phaseStart.set(e.taskId, { state: e.state, at: e.time });
    else this.phaseStart.delete(e.taskId);
  }

  network(st: NetworkState): void {
    this.backends.reset();
    for (const s of st.services ?? []) this.backends.set({ service: s.serviceName }, s.tasks?.length ?? 0);
  }
}
