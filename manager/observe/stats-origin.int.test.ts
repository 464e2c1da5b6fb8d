// The leader's autoscaler takes a task's usage only from the node that runs
// it: over a real NATS, a worker that reports usage of another node's task
// (on its own subject: NATS refuses any other) is dropped and counted.
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createTestCa } from '../../common/testing/test-ca';
import { eventually } from '../../common/eventually';
import { NatsLink } from '../../common/nats';
import { createLogger, nullLogger } from '../../common/logger';
import { statsSubject, type StatsMessage } from '../../proto/events';
import { startNats, type EmbeddedNats } from '../embedded/nats';
import type { ClusterSnapshot } from '../state/snapshot';
import { startManagerObservability, type ManagerObservability } from './mod';

describe('autoscaler stats origin (integration, real nats-server)', function () {
  this.timeout(60_000);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'convoy-stats-origin-'));
  let nats: EmbeddedNats | undefined;
  let obs: ManagerObservability | undefined;
  let n1: NatsLink | undefined;
  after(async () => {
    await n1?.close();
    await obs?.observer.close();
    await obs?.autoscaler.close();
    await nats?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('drops a forged sample for another node’s task and counts it in convoy_autoscale_stats_rejected_total', async () => {
    const ca = await createTestCa('c1');
    const m1 = await ca.bundle({ id: 'm1', role: 'manager', ips: ['127.0.0.1'] });
    const w1 = await ca.bundle({ id: 'n1', role: 'worker' });
    nats = await startNats({ dataDir: path.join(dir, 'nats'), tls: m1, identities: [{ id: 'm1', role: 'manager', cluster: 'c1' }, { id: 'n1', role: 'worker', cluster: 'c1' }] });
    obs = await startManagerObservability({ managerId: 'm1', natsUrl: nats.url, natsTls: m1, metricsListen: '127.0.0.1:0', logger: process.env.DEBUG_H3 ? createLogger('t') : nullLogger });
    const tasks = new Map([
      ['t-mine', { id: 't-mine', nodeId: 'n1' }],
      ['t-theirs', { id: 't-theirs', nodeId: 'n2' }],
    ]);
    const snap = { revision: 1, now: Date.now(), services: new Map(), tasks, nodes: new Map(), networks: new Map() } as unknown as ClusterSnapshot;
    obs.autoscaler.leading(true);
    obs.autoscaler.decide(snap);
    const scrape = async () => (await fetch(`http://${obs!.metricsAddr}/metrics`)).text();
    const rejected = (text: string, reason: string) => Number(new RegExp(`convoy_autoscale_stats_rejected_total\\{[^}]*reason="${reason}"[^}]*\\} (\\d+)`).exec(text)?.[1] ?? 0);

    n1 = new NatsLink({ url: nats.url, tls: w1, name: 'n1' }).start();
    await eventually(() => n1!.connected, 'the worker connected');
    const sample = (taskId: string) => ({ taskId, serviceId: 's', serviceName: 'web', slot: 1, cpuCores: 8, cpuSeconds: 1, memoryBytes: 1, memoryLimitBytes: 0 });
    const forged: StatsMessage = { nodeId: 'n1', time: Date.now(), tasks: [sample('t-theirs')] };
    // Published until the leader's subscription is in place and has counted it.
    await eventually(
      async () => {
        n1!.publish(statsSubject('n1'), forged);
        return rejected(await scrape(), 'foreign-task') >= 1;
      },
      'the forged sample counted',
      { pollMs: 200 },
    );
    assert.equal(rejected(await scrape(), 'node-mismatch'), 0);
    n1.publish(statsSubject('n1'), { nodeId: 'n2', time: Date.now(), tasks: [sample('t-theirs')] });
    await eventually(async () => rejected(await scrape(), 'node-mismatch') >= 1, 'a message naming another node counted');
  });
});
