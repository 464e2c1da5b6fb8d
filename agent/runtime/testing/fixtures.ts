// Shared by the runtime's integration tests: Task objects and log reading.
import * as fs from 'node:fs';
import type { ContainerSpec, Resources, Task } from '../../../proto/mod';
import { emptyContainerSpec } from '../../../proto/container-options';

export function makeTask(id: string, container: Partial<ContainerSpec>, limits?: Partial<Resources>): Task {
  return {
    id,
    meta: null,
    serviceId: 'svc-test',
    serviceName: 'web',
    slot: 1,
    nodeId: 'node-test',
    spec: {
      // A stop grace period of 0: the runtime's tests stop their containers at once.
      container: { ...emptyContainerSpec(), stopGracePeriodMs: 0, ...container },
      resources: limits ? { limits: { nanoCpus: 0, memoryBytes: 0, pids: 0, ...limits }, reservations: null } : null,
      restart: null,
      placement: null,
      networks: [],
      ports: [],
    },
    specVersion: 1,
    status: null,
    desiredState: 'RUNNING',
    networks: [],
    endpointPorts: [],
    attempt: 0,
    jobIteration: 0,
  };
}

export interface LogRecord {
  time: string;
  stream: 'stdout' | 'stderr';
  log: string;
}

export function readLog(file: string): LogRecord[] {
  if (!fs.existsSync(file)) return [];
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as LogRecord);
}

export function stdoutLines(file: string): string[] {
  return readLog(file)
    .filter((r) => r.stream === 'stdout')
    .map((r) => r.log);
}
