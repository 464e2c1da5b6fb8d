// The dashboard's view from Control answers and usage samples: node totals,
// reservations of live tasks only, usage from fresh samples only, service
// sums, published ports, the autoscale policy, the task cut.
import { strict as assert } from 'node:assert';
import type { Node, Service, Task } from '../../proto/mod';
import { node as nodeFixture } from '../orchestrator/testing/fixtures';
import { USAGE_STALE_MS, VIEW_MAX_TASKS, buildView } from './view';

const GiB = 1024 ** 3;
const task = (id: string, o: { node?: string; state?: string; desired?: string; cpu?: number; mem?: number } = {}): Task =>
  ({
    id,
    serviceId: 's1',
    serviceName: 'web',
    slot: 1,
    nodeId: o.node ?? 'n1',
    desiredState: o.desired ?? 'RUNNING',
    status: { state: o.state ?? 'RUNNING', message: 'started' },
    spec: { resources: { reservations: { nanoCpus: (o.cpu ?? 0.5) * 1e9, memoryBytes: o.mem ?? GiB, pids: 0 } } },
  }) as unknown as Task;

const service = {
  id: 's1',
  spec: { name: 'web', mode: 'REPLICATED', container: { image: 'r/web:1' }, endpoint: { ports: [] }, autoscale: { enabled: true, minReplicas: 1, maxReplicas: 5, targetCpuPercent: 70, targetMemoryPercent: 0 } },
  endpoint: { ports: [{ protocol: 'tcp', targetPort: 80, publishedPort: 8080, publishMode: 'INGRESS' }] },
  updateStatus: { state: 'UPDATING', message: 'updating 1 of 2' },
} as unknown as Service;

describe('dashboard view', () => {
  it('adds reservations of live tasks and fresh usage per node and per service', () => {
    const now = 1_000_000;
    const usage = (id: string) =>
      ({
        a: { receivedAt: now - 1000, cpuCores: 0.25, memoryBytes: 100 },
        b: { receivedAt: now - USAGE_STALE_MS - 1, cpuCores: 9, memoryBytes: 9 }, // stale
        c: { receivedAt: now, cpuCores: 5, memoryBytes: 5 }, // a shut down task: not counted
      })[id];
    const v = buildView(
      {
        nodes: [nodeFixture('n1', { cpus: 4, mem: 8 * GiB }) as Node],
        leader: 'n1',
        services: [{ service, counts: { running: 2, desired: 3 } }],
        tasks: [task('a'), task('b'), task('c', { state: 'SHUTDOWN', desired: 'SHUTDOWN' })],
      },
      usage,
      now,
    );
    assert.deepEqual(v.nodes[0].cpu, { total: 4, reserved: 1, used: 0.25 });
    assert.deepEqual(v.nodes[0].memory, { total: 8 * GiB, reserved: 2 * GiB, used: 100 });
    assert.equal(v.nodes[0].leader, true);
    assert.equal(v.nodes[0].state, 'READY');
    const s = v.services[0];
    assert.deepEqual([s.name, s.running, s.desired, s.cpu, s.memory], ['web', 2, 3, 0.25, 100]);
    assert.deepEqual(s.ports, ['8080->80/tcp']);
    assert.deepEqual(s.update, { state: 'UPDATING', message: 'updating 1 of 2' });
    assert.deepEqual(s.autoscale, { min: 1, max: 5, cpuPercent: 70, memoryPercent: 0 });
    assert.deepEqual(v.tasks.map((t) => [t.id, t.cpu]), [['a', 0.25], ['b', null], ['c', null]]);
  });

  it('carries at most VIEW_MAX_TASKS tasks and says how many it left out', () => {
    const tasks = Array.from({ length: VIEW_MAX_TASKS + 7 }, (_, i) => task(`t${i}`));
    const v = buildView({ nodes: [], leader: '', services: [], tasks }, () => undefined, 0);
    assert.equal(v.tasks.length, VIEW_MAX_TASKS);
    assert.equal(v.tasksCut, 7);
  });
});
