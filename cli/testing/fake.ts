// A CliIO whose manager is an object literal:
// for the verb tests of cli/ (main, node, cluster, completion, contexts).
import type { Node, Task } from '../../proto/mod';
import { controlApiOf } from '../../proto/client';
import type { CliIO, ControlMethod, ControlRequest, ControlResponse } from '../client';

export const NOW = Date.parse('2026-01-01T12:00:00Z');

/** A fake's answers; list answers may leave out next_page_token (one page). */
export type FakeApi = { [M in ControlMethod]?: (req: ControlRequest<M>) => Promise<Omit<ControlResponse<M>, 'nextPageToken'>> };

export interface Recorded {
  io: CliIO;
  out: () => string;
  err: () => string;
  hosts: string[];
  calls: { method: ControlMethod; req: unknown }[];
}

export function fake(api: FakeApi, env: NodeJS.ProcessEnv = {}): Recorded {
  let out = '';
  let err = '';
  const hosts: string[] = [];
  const calls: { method: ControlMethod; req: unknown }[] = [];
  const full = controlApiOf(async <M extends ControlMethod>(m: M, req: ControlRequest<M>) => {
    calls.push({ method: m, req });
    const fn = api[m] as ((r: ControlRequest<M>) => Promise<Omit<ControlResponse<M>, 'nextPageToken'>>) | undefined;
    if (!fn) throw new Error(`unexpected call ${m}`);
    return { nextPageToken: '', ...(await fn(req)) } as ControlResponse<M>;
  });
  const io: CliIO = {
    out: (s) => void (out += s),
    err: (s) => void (err += s),
    now: () => NOW,
    // Never the real user's config file (a lab on this machine writes its host there).
    env: { CONVOY_CONFIG: '/nonexistent/convoy-test-config.json', ...env },
    connect: (host) => {
      hosts.push(host);
      return { api: full, close: () => undefined };
    },
    setExitCode: () => undefined,
  };
  return { io, out: () => out, err: () => err, hosts, calls };
}

export const GiB = 1024 ** 3;

export function fakeNode(id: string, hostname: string, o: { cpus?: number; mem?: number; state?: 'NODE_READY' | 'NODE_DOWN'; usage?: Partial<NonNullable<Node['usage']>> | null } = {}): Node {
  return {
    id,
    meta: { version: 1, createdAt: NOW - 3_600_000, updatedAt: NOW },
    spec: { role: 'WORKER', availability: 'ACTIVE', labels: {} },
    description: { hostname, platform: { os: 'linux', arch: 'amd64' }, resources: { nanoCpus: (o.cpus ?? 4) * 1e9, memoryBytes: o.mem ?? 8 * GiB, pids: 0 }, engineLabels: {}, listeningTcp: [], listeningUdp: [], addresses: [] },
    status: { state: o.state ?? 'NODE_READY', message: '', addr: '10.41.0.11', updatedAt: NOW },
    subnet: '10.42.1.0/24',
    sessionId: '',
    leaseId: 0,
    usage: o.usage === null ? null : { reservedNanoCpus: 0, reservedMemoryBytes: 0, tasks: 0, usedNanoCpus: 0, usedMemoryBytes: 0, sampledAt: 0, ...(o.usage ?? {}) },
  };
}

export function fakeTask(id: string, serviceName: string, slot: number, nodeId: string, state: NonNullable<Task['status']>['state'], o: Partial<Task> & { message?: string; at?: number } = {}): Task {
  const at = o.at ?? NOW - 5000;
  return {
    id,
    meta: { version: 1, createdAt: at, updatedAt: at },
    serviceId: `${serviceName}-id`,
    serviceName,
    slot,
    nodeId,
    spec: { container: null, resources: null, restart: null, placement: null, networks: [], ports: [] },
    specVersion: 1,
    status: { state, timestamp: at, message: o.message ?? '', err: '', exitCode: 0, pid: 0, health: '' },
    desiredState: 'RUNNING',
    networks: [],
    endpointPorts: [],
    attempt: 0,
    jobIteration: 0,
    ...o,
  };
}
