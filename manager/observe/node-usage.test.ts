import { strict as assert } from 'node:assert';
import { NODE_USAGE_FRESH_MS, NodeUsageTable } from './node-usage';

describe('node usage table', () => {
  const msg = (nodeId: string, tasks: unknown[]) => ({ nodeId, time: 0, tasks });

  it("sums a node's task samples from its own subject and forgets them when stale", () => {
    const t = new NodeUsageTable();
    assert.ok(t.ingest(msg('n1', [{ taskId: 'a', cpuCores: 0.5, memoryBytes: 100 }, { taskId: 'b', cpuCores: 0.25, memoryBytes: 50 }, { taskId: 'c', cpuCores: -1, memoryBytes: 1 }]), 1000, 'n1'));
    assert.deepEqual(t.get('n1', 1000), { receivedAt: 1000, cpuCores: 0.75, memoryBytes: 150, tasks: 2 });
    // A newer message replaces the old one (no tasks: zero use, still a fresh sample).
    assert.ok(t.ingest(msg('n1', []), 2000, 'n1'));
    assert.deepEqual(t.get('n1', 2000), { receivedAt: 2000, cpuCores: 0, memoryBytes: 0, tasks: 0 });
    assert.equal(t.get('n1', 2000 + NODE_USAGE_FRESH_MS + 1), undefined);
    t.prune(2000 + NODE_USAGE_FRESH_MS + 1);
    assert.equal(t.size, 0);
  });

  it('drops a message naming another node than its subject, and malformed ones', () => {
    const t = new NodeUsageTable();
    assert.equal(t.ingest(msg('n2', [{ taskId: 'a', cpuCores: 8, memoryBytes: 1 }]), 1, 'n1'), false);
    assert.equal(t.ingest(null, 1, 'n1'), false);
    assert.equal(t.ingest({ nodeId: 'n1', tasks: 'lots' }, 1, 'n1'), false);
    assert.equal(t.ingest(msg('', []), 1, ''), false);
    assert.equal(t.size, 0);
  });
});
