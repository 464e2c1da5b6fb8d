import { strict as assert } from 'node:assert';
import type { Service, Task, TaskStateName } from '../../proto/mod';
import { contractTask } from '../../proto/testing/dispatcher-contract';
import { service as fixtureService } from '../orchestrator/testing/fixtures';
import type { ClusterSnapshot } from '../state/snapshot';
import { AutoscaleEngine, DEFAULT_SCALE_DOWN_STABILIZATION_MS, STALE_MS, type TaskUsage } from './autoscale';
import { StatsTable } from './stats';

// A service with 0.1 CPU reserved per task and 64 MiB, autoscaled on CPU 50%.
function service(replicas: number, o: Partial<NonNullable<Service['spec']>['autoscale']> = {}): Service {
  return fixtureService('s1', {
    name: 'web',
    mode: 'REPLICATED',
    replicas,
    resources: { reservations: { nanoCpus: 1e8, memoryBytes: 64 << 20, pids: 0 }, limits: null },
    autoscale: { enabled: true, minReplicas: 2, maxReplicas: 10, targetCpuPercent: 50, targetMemoryPercent: 0, scaleDownStabilizationMs: 60_000, ...o },
  });
}

function tasks(n: number, state: TaskStateName = 'RUNNING'): Task[] {
  return Array.from({ length: n }, (_, i) => ({ ...contractTask(`t${i + 1}`, '', state), serviceId: 's1', slot: i + 1 }));
}

function snap(s: Service, ts: Task[], now: number): ClusterSnapshot {
  return { revision: 1, now, cluster: {} as ClusterSnapshot['cluster'], services: new Map([[s.id, s]]), tasks: new Map(ts.map((t) => [t.id, t])), nodes: new Map(), networks: new Map() };
}

/** cpu in cores per task id. */
function usage(now: number, cpu: Record<string, number>): Map<string, TaskUsage> {
  return new Map(Object.entries(cpu).map(([id, c]) => [id, { receivedAt: now, cpuCores: c, memoryBytes: 0 }]));
}

describe('autoscaler (HPA rule)', () => {
  it('scales up at once: desired = ceil(current × usage / target)', () => {
    const u = usage(1000, { t1: 0.1, t2: 0.1, t3: 0.1 }); // 100% of reservation, target 50% → ratio 2
    const e = new AutoscaleEngine((id) => u.get(id));
    const [d] = e.decide(snap(service(3), tasks(3), 1000));
    assert.equal(d.to, 6);
    assert.equal(d.from, 3);
    assert.match(d.reason, /^cpu 200% of target over 3 tasks: 3 → 6$/);
  });

  it('does nothing within the 10% tolerance', () => {
    const u = usage(1000, { t1: 0.054, t2: 0.054, t3: 0.054 }); // 108% of target
    const e = new AutoscaleEngine((id) => u.get(id));
    assert.deepEqual(e.decide(snap(service(3), tasks(3), 1000)), []);
  });

  it('never goes past max', () => {
    const u = usage(1000, { t1: 1, t2: 1, t3: 1 });
    const e = new AutoscaleEngine((id) => u.get(id));
    const [d] = e.decide(snap(service(3), tasks(3), 1000));
    assert.equal(d.to, 10);
    assert.match(d.reason, /capped at max 10/);
  });

  it('counts tasks without a sample as idle when scaling up (no runaway while new replicas start)', () => {
    // 6 replicas asked, 3 running with samples at 100% of reservation: 300/(6×50) = 1 → stay.
    const u = usage(1000, { t1: 0.1, t2: 0.1, t3: 0.1 });
    const e = new AutoscaleEngine((id) => u.get(id));
    assert.deepEqual(e.decide(snap(service(6), [...tasks(3), ...tasks(6, 'STARTING').slice(3)], 1000)), []);
  });

  it('never scales down on missing or stale samples', () => {
    const e1 = new AutoscaleEngine(() => undefined);
    assert.deepEqual(e1.decide(snap(service(8), tasks(8), 1000)), []);
    const stale = usage(1000, { t1: 0, t2: 0 });
    const e2 = new AutoscaleEngine((id) => stale.get(id));
    assert.deepEqual(e2.decide(snap(service(8), tasks(8), 1000 + STALE_MS + 1)), []);
    // Two idle samples among 8 replicas: the 6 without samples count as on target → 8×(0+6×50)/(8×50)=6.
    const e3 = new AutoscaleEngine((id) => stale.get(id));
    const [d] = e3.decide(snap(service(8), tasks(8), 1000));
    assert.equal(d.to, 6);
  });

  it('scales down only to the highest recommendation of the stabilisation window', () => {
    const cpu: Record<string, number> = { t1: 0.1, t2: 0.1, t3: 0.1, t4: 0.1, t5: 0.1, t6: 0.1 };
    let u = usage(0, cpu);
    const e = new AutoscaleEngine((id) => u.get(id));
    assert.deepEqual(e.decide(snap(service(6), tasks(6), 0)).map((d) => d.to), [10]); // recommendation 12 → max 10 (service stays at 6 in this snapshot)
    // Load gone: recommendation falls to the minimum, but the window still remembers 10.
    u = usage(10_000, { t1: 0, t2: 0, t3: 0, t4: 0, t5: 0, t6: 0 });
    assert.deepEqual(e.decide(snap(service(6), tasks(6), 10_000)), []);
    // After the window only low recommendations remain: down to min 2.
    u = usage(70_001, { t1: 0, t2: 0, t3: 0, t4: 0, t5: 0, t6: 0 });
    const [d] = e.decide(snap(service(6), tasks(6), 70_001));
    assert.equal(d.to, 2);
    assert.match(d.reason, /cpu 0% of target over 6 tasks: 6 → 2 \(kept at min 2\)/);
  });

  it('uses the default 5 minute window when the policy leaves it at 0', () => {
    let u = usage(0, { t1: 0.1, t2: 0.1, t3: 0.1, t4: 0.1 });
    const e = new AutoscaleEngine((id) => u.get(id));
    e.decide(snap(service(4, { scaleDownStabilizationMs: 0 }), tasks(4), 0));
    u = usage(DEFAULT_SCALE_DOWN_STABILIZATION_MS - 1, { t1: 0, t2: 0, t3: 0, t4: 0 });
    const d = e.decide(snap(service(4, { scaleDownStabilizationMs: 0 }), tasks(4), DEFAULT_SCALE_DOWN_STABILIZATION_MS - 1));
    assert.deepEqual(d.map((x) => x.to), []);
  });

  it('brings replicas into [min, max] even without samples', () => {
    const e = new AutoscaleEngine(() => undefined);
    assert.deepEqual(e.decide(snap(service(1), tasks(1), 0)).map((d) => [d.to, d.reason]), [[2, 'below the minimum 2: 1 → 2']]);
    assert.deepEqual(e.decide(snap(service(12), tasks(12), 0)).map((d) => d.to), [10]);
  });

  it('takes the larger of the CPU and memory recommendations', () => {
    const u = new Map([['t1', { receivedAt: 0, cpuCores: 0.05, memoryBytes: 64 << 20 }], ['t2', { receivedAt: 0, cpuCores: 0.05, memoryBytes: 64 << 20 }]]);
    const e = new AutoscaleEngine((id) => u.get(id));
    const [d] = e.decide(snap(service(2, { targetMemoryPercent: 50 }), tasks(2), 0)); // cpu 100% of target, memory 200%
    assert.equal(d.to, 4);
    assert.match(d.reason, /memory 200% of target/);
  });

  it('leaves services without an enabled policy alone', () => {
    const u = usage(0, { t1: 1, t2: 1 });
    const e = new AutoscaleEngine((id) => u.get(id));
    assert.deepEqual(e.decide(snap(service(2, { enabled: false }), tasks(2), 0)), []);
  });
});

describe('stats table', () => {
  it('keeps well-formed samples and ignores the rest', () => {
    const t = new StatsTable();
    const onN1 = (id: string) => (id === 'a' || id === 'b' ? 'n1' : undefined);
    const n = t.ingest({ nodeId: 'n1', time: 0, tasks: [{ taskId: 'a', cpuCores: 0.5, memoryBytes: 10 }, { taskId: 'b', cpuCores: -1, memoryBytes: 1 }, { cpuCores: 1 }, null] }, 5, 'n1', onN1);
    assert.equal(n, 1);
    assert.deepEqual(t.get('a'), { receivedAt: 5, cpuCores: 0.5, memoryBytes: 10 });
    assert.equal(t.ingest('garbage', 5, 'n1', onN1), 0);
    t.prune(5 + 10 * STALE_MS);
    assert.equal(t.size, 0);
  });

  it('takes a sample only from the node that runs the task: forged stats for another node’s task are dropped and counted', () => {
    const t = new StatsTable();
    const nodeOf = (id: string) => ({ mine: 'n1', theirs: 'n2' })[id];
    const sample = (taskId: string, cpuCores: number) => ({ taskId, cpuCores, memoryBytes: 1 });
    // n1 reports its own task and, forged, n2's (to make the autoscaler scale n2's service).
    assert.equal(t.ingest({ nodeId: 'n1', time: 0, tasks: [sample('mine', 0.1), sample('theirs', 9), sample('ghost', 9)] }, 5, 'n1', nodeOf), 1);
    assert.equal(t.get('theirs'), undefined);
    assert.equal(t.get('ghost'), undefined);
    // A message naming another node than the subject it came on: all of it dropped.
    assert.equal(t.ingest({ nodeId: 'n2', time: 0, tasks: [sample('theirs', 9)] }, 5, 'n1', nodeOf), 0);
    assert.equal(t.get('theirs'), undefined);
    assert.deepEqual(t.rejected, { 'node-mismatch': 1, 'foreign-task': 1, 'unknown-task': 1 });
    // The real node's sample is taken.
    assert.equal(t.ingest({ nodeId: 'n2', time: 0, tasks: [sample('theirs', 0.2)] }, 6, 'n2', nodeOf), 1);
    assert.equal(t.get('theirs')?.cpuCores, 0.2);
  });
});
