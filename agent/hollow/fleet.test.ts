import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { startHollowFleet } from './fleet';
import { PLAINTEXT_FOR_TESTS } from '../../proto/client';
import { fakeCluster, startFakeManager } from '../session/testing/fake-manager';
import { eventually } from '../../common/eventually';
import { makeTask } from '../controller/testing/fake-executor';

describe('hollow fleet', () => {
  it('runs many hollow agents in one process, each with its own session and node', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'convoy-fleet-test-'));
    const cluster = fakeCluster();
    cluster.heartbeatPeriodMs = 5_000;
    const m = await startFakeManager(cluster);
    const fleet = await startHollowFleet({ count: 20, managers: [m.addr], joinToken: cluster.token, stateRoot: dir, testSecurity: PLAINTEXT_FOR_TESTS });
    try {
      const ids = new Set(fleet.agents.map((a) => a.nodeId()));
      assert.equal(ids.size, 20);
      assert.equal(m.sessions.size, 20);
      // A task for one of them reaches RUNNING on that agent only.
      const target = fleet.agents[7].nodeId();
      cluster.tasks.set('t1', makeTask('t1', { nodeId: target }));
      m.push(target, [{ action: 'UPDATE', task: cluster.tasks.get('t1')! }]);
      await eventually(() => cluster.tasks.get('t1')?.status?.state === 'RUNNING', 't1 RUNNING');
      assert.equal(fleet.executors[7].totalStarts, 1);
      assert.equal(fleet.executors.reduce((n, e) => n + e.totalStarts, 0), 1);
    } finally {
      await fleet.stop();
      m.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
