// A recording fake Executor for the agent's unit tests (an object literal
// behind a small control surface). Not used outside tests.
import type { ContainerSpec, Task, TaskSpec } from '../../../proto/mod';
import type { ExistingContainer, Executor, ExitResult, HealthState } from '../../executor';
import { makeTask as runtimeTask } from '../../runtime/testing/fixtures';

export interface FakeExecutor {
  executor: Executor;
  calls: string[];
  /** Make the task's main process exit. */
  exit(taskId: string, res: ExitResult): void;
  health(taskId: string, h: HealthState): void;
  failPrepare?: (task: Task) => Error | undefined;
  failStart?: (task: Task) => Error | undefined;
  existing: ExistingContainer[];
  starts(taskId?: string): number;
}

export function fakeExecutor(): FakeExecutor {
  const waiters = new Map<string, ((r: ExitResult) => void)[]>();
  const listeners: ((id: string, h: HealthState) => void)[] = [];
  const f: FakeExecutor = {
    calls: [],
    existing: [],
    exit(taskId, res) {
      const ws = waiters.get(taskId) ?? [];
      waiters.delete(taskId);
      for (const w of ws) w(res);
    },
    health(taskId, h) {
      for (const l of listeners) l(taskId, h);
    },
    starts(taskId) {
      return f.calls.filter((c) => c === `start ${taskId}` || (taskId === undefined && c.startsWith('start '))).length;
    },
    executor: {
      describe: async () => ({ hostname: 'fake', os: 'linux', arch: 'amd64', nanoCpus: 1e9, memoryBytes: 1 << 30, engineLabels: {} }),
      prepare: async (task) => {
        f.calls.push(`prepare ${task.id}`);
        const e = f.failPrepare?.(task);
        if (e) throw e;
      },
      start: async (task) => {
        f.calls.push(`start ${task.id}`);
        const e = f.failStart?.(task);
        if (e) throw e;
      },
      wait: (taskId) =>
        new Promise<ExitResult>((resolve) => {
          waiters.set(taskId, [...(waiters.get(taskId) ?? []), resolve]);
        }),
      stop: async (taskId, graceMs) => {
        f.calls.push(`stop ${taskId} ${graceMs}`);
        f.exit(taskId, { exitCode: 137, signal: 'SIGKILL', oomKilled: false, reason: 'stopped' });
      },
      remove: async (taskId) => {
        f.calls.push(`remove ${taskId}`);
      },
      list: async () => f.existing,
      adopt: async (taskId) => {
        f.calls.push(`adopt ${taskId}`);
      },
      stats: async () => undefined,
      health: () => 'none',
      onHealthChange: (l) => {
        listeners.push(l);
      },
      close: async () => {},
    },
  };
  return f;
}

/** A task as the manager would assign it. */
export function makeTask(id: string, over: Partial<Task> = {}): Task {
  return {
    id,
    meta: null,
    serviceId: 'svc1',
    serviceName: 'web',
    slot: 1,
    nodeId: 'node1',
    spec: null,
    specVersion: 1,
    status: { state: 'ASSIGNED', timestamp: 0, message: '', err: '', exitCode: 0, pid: 0, health: '' },
    desiredState: 'RUNNING',
    networks: [],
    endpointPorts: [],
    attempt: 0,
    jobIteration: 0,
    ...over,
  };
}

/** A task spec with the given container fields (the rest defaulted as the proto loader would: the runtime fixtures' spec). */
export function makeSpec(container: Partial<ContainerSpec>): TaskSpec {
  return runtimeTask('', { image: 'registry.local/web:1', ...container }).spec!;
}
