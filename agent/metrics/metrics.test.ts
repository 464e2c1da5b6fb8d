import { strict as assert } from 'node:assert';
import type { NetworkState, Task } from '../../proto/mod';
import type { Executor, TaskStats } from '../executor';
import { fakeExecutor, makeTask } from '../controller/testing/fake-executor';
import { AgentMetrics, SAMPLE_REUSE_MS, TaskSampler } from './metrics';

const task = (id: string, slot: number, attempt = 0): Task => makeTask(id, { serviceId: 's1', serviceName: 'web', slot, attempt });

describe('agent metrics', () => {
  it('samples running tasks, derives CPU cores from two readings, and shares a recent sample', async () => {
    let now = 1_000;
    let cpu = 10;
    let calls = 0;
    const executor: Executor = {
      ...fakeExecutor().executor,
      stats: async (id: string): Promise<TaskStats | undefined> => {
        calls++;
        return id === 'gone' ? undefined : { timestampMs: now, cpuSeconds: cpu, memoryBytes: 5 << 20, memoryLimitBytes: 0, pids: 3, netRxBytes: 100, netTxBytes: 50 };
      },
    };
    const tasks = [
      { task: task('a', 1), state: 'RUNNING' },
      { task: task('gone', 2), state: 'RUNNING' },
      { task: task('p', 3), state: 'PREPARING' },
    ];
    const s = new TaskSampler(executor, () => tasks);
    const first = await s.sample(0);
    assert.deepEqual(first.map((x) => [x.task.id, x.cpuCores]), [['a', 0]], 'only tasks with a container; none without stats');
    assert.equal(calls, 2);
    assert.equal(await s.sample(Date.now() + SAMPLE_REUSE_MS - 100), first, 'a sample younger than SAMPLE_REUSE_MS is reused');
    now = 3_000; // 2 s later, 1 more CPU second: half a core
    cpu = 11;
    const second = await s.sample(Date.now() + SAMPLE_REUSE_MS + 1);
    assert.equal(second[0].cpuCores, 0.5);
  });

  it('exports per-task series with service, task and slot, and LB backends and phase latencies', async () => {
    const m = new AgentMetrics();
    const t = task('a', 1, 2);
    m.update([{ task: t, stats: { timestampMs: 0, cpuSeconds: 1.5, memoryBytes: 1024, memoryLimitBytes: 4096, pids: 2, netRxBytes: 10, netTxBytes: 20 }, cpuCores: 0 }], [{ task: t, state: 'RUNNING' }]);
    m.network({ services: [{ serviceName: 'web', tasks: [{}, {}] }, { serviceName: 'api', tasks: [] }] } as unknown as NetworkState);
    const ev = (state: string, time: number) => m.taskEvent({ type: 'task', action: 'state', time, source: 'agent/n1', taskId: 'a', serviceId: 's1', serviceName: 'web', slot: 1, nodeId: 'n1', state });
    ev('PREPARING', 0);
    ev('STARTING', 2_000);
    ev('RUNNING', 2_250);
    const text = await m.registry.metrics();
    const L = 'service="web",task="a",slot="1"';
    for (const line of [
      `convoy_task_cpu_seconds_total{${L}} 1.5`,
      `convoy_task_memory_usage_bytes{${L}} 1024`,
      `convoy_task_memory_limit_bytes{${L}} 4096`,
      `convoy_task_pids{${L}} 2`,
      `convoy_task_network_receive_bytes_total{${L}} 10`,
      `convoy_task_network_transmit_bytes_total{${L}} 20`,
      `convoy_task_restarts_total{${L}} 2`,
      'convoy_agent_tasks{state="RUNNING"} 1',
      'convoy_lb_backends{service="web"} 2',
      'convoy_lb_backends{service="api"} 0',
      'convoy_container_start_duration_seconds_sum 0.25',
      'convoy_task_prepare_duration_seconds_sum 2',
    ])
      assert.ok(text.split('\n').includes(line), `missing: ${line}`);
    // A task that is gone disappears on the next update.
    m.update([], []);
    assert.doesNotMatch(await m.registry.metrics(), /task="a"/);
  });
});
