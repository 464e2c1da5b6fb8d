// The executor interface: how the agent's task controller drives a container
// runtime. The real implementation lives in agent/runtime/ (Convoy's own
// namespace/cgroup runtime); agent/hollow/ has a fake one for scale tests.
//
// The agent calls, per task, in order: prepare → start → wait … stop → remove.
// Every method is idempotent for the same task id: the agent may call it again
// after a restart or a reconnect.
import type { Task } from '../proto/mod';

/** What this host offers, reported to the manager when the agent registers. */
export interface NodeInfo {
  hostname: string;
  os: string; // "linux"
  arch: string; // "amd64", "arm64" (Go/OCI naming)
  nanoCpus: number; // 1e9 per CPU
  memoryBytes: number;
  engineLabels: Record<string, string>;
}

export interface ExitResult {
  exitCode: number;
  /** Signal name when the process was killed by a signal ("SIGKILL"). */
  signal?: string;
  oomKilled: boolean;
  /** One line an operator can read: "exit code 1", "OOM killed (limit 64MiB)". */
  reason: string;
}

export interface TaskStats {
  timestampMs: number;
  cpuSeconds: number; // cumulative user+system
  memoryBytes: number;
  memoryLimitBytes: number; // 0 = unlimited
  pids: number;
  netRxBytes: number;
  netTxBytes: number;
}

export interface ExistingContainer {
  taskId: string;
  running: boolean;
  pid?: number;
}

export type HealthState = 'none' | 'starting' | 'healthy' | 'unhealthy';

/**
 * Failures the executor reports. The message becomes the task's status
 * message ("image registry.local/web:1 not found"), so write it for an operator.
 * retryable: the same task might succeed later on this node (registry down);
 * false when it never will (unknown image, invalid spec).
 */
export class ExecutorError extends Error {
  override name = 'ExecutorError';
  constructor(message: string, readonly retryable: boolean, override readonly cause?: unknown) {
    super(message);
  }
}

export interface Executor {
  describe(): Promise<NodeInfo>;
  /** Pull the image, build the root filesystem, attach networks. Throws ExecutorError. */
  prepare(task: Task): Promise<void>;
  /** Start the main process; resolves once it runs. Throws ExecutorError. */
  start(task: Task): Promise<void>;
  /** Resolves when the main process of a started or adopted task exits. */
  wait(taskId: string): Promise<ExitResult>;
  /** Stop signal, then SIGKILL after graceMs; resolves when the process is gone. */
  stop(taskId: string, graceMs: number): Promise<void>;
  /** Remove what the task left: mounts, cgroups, upper layer, network. */
  remove(taskId: string): Promise<void>;
  /** Containers this host already has, e.g. after an agent crash. */
  list(): Promise<ExistingContainer[]>;
  /** Re-attach to a running container found by list(); wait() works afterwards. */
  adopt(taskId: string): Promise<void>;
  stats(taskId: string): Promise<TaskStats | undefined>;
  health(taskId: string): HealthState;
  /** Called on every health transition of a running task. */
  onHealthChange(listener: (taskId: string, state: HealthState) => void): void;
  close(): Promise<void>;
}

/** Network wiring for one task; implemented by agent/network/. */
export interface NetworkAttacher {
  /** Create the task's network namespace and interfaces; returns what the runtime joins. */
  attach(task: Task): Promise<{ netnsPath: string; resolvConf?: string; hosts?: string }>;
  detach(taskId: string): Promise<void>;
}

/**
 * Host-level networking the agent programs from the managers' NetworkState
 * stream: overlay peers, service VIPs, published ports, DNS records.
 * Implemented by agent/network/.
 */
export interface NetworkProgrammer {
  /** Called with every new snapshot; must converge the host to it. */
  apply(state: import('../proto/mod').NetworkState): Promise<void>;
  close(): Promise<void>;
}
