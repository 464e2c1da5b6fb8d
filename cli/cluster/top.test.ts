// convoy node ls (usage columns), node ps and cluster top, against a fake manager.
import { strict as assert } from 'node:assert';
import { run } from '../main';
import { fake, fakeNode, fakeTask, GiB, NOW } from '../testing/fake';
import { pendingGroups, totalsOf } from './top';

const nodes = () => [
  fakeNode('aaaa1111', 'h1', { usage: { reservedNanoCpus: 2e9, reservedMemoryBytes: 6 * GiB, tasks: 3, usedNanoCpus: 5e8, usedMemoryBytes: 1 * GiB, sampledAt: NOW - 1000 } }),
  fakeNode('bbbb2222', 'h2', { usage: { reservedNanoCpus: 1e9, reservedMemoryBytes: 2 * GiB, tasks: 1 } }),
  fakeNode('cccc3333', 'h3', { state: 'NODE_DOWN', usage: { reservedNanoCpus: 4e9, reservedMemoryBytes: 8 * GiB, tasks: 2 } }),
];

describe('cluster as one machine (CLI)', () => {
  it('node ls shows CPU and memory reserved / in use / total, "-" without a sample', async () => {
    const f = fake({ listNodes: async () => ({ nodes: nodes(), leader: '' }) });
    assert.equal(await run(['node', 'ls'], f.io), 0, f.err());
    const lines = f.out().split('\n');
    assert.match(lines[0], /CPU RSV\/USED\/TOTAL\s+MEMORY RSV\/USED\/TOTAL\s+LABELS/);
    assert.match(lines[1], /h1 .* 2 \/ 0\.5 \/ 4\s+6GiB \/ 1GiB \/ 8GiB/);
    assert.match(lines[2], /h2 .* 1 \/ - \/ 4\s+2GiB \/ - \/ 8GiB/);
  });

  it('cluster top sums the ready nodes, per node and in all, and groups what is pending with its reason', async () => {
    const reason = 'no suitable node: insufficient memory on 2 nodes';
    const f = fake({
      listNodes: async () => ({ nodes: nodes(), leader: '' }),
      listTasks: async (req) => {
        assert.deepEqual(req.states, ['NEW', 'PENDING']);
        assert.deepEqual(req.desiredStates, ['RUNNING']);
        return { tasks: [fakeTask('t1', 'big', 1, '', 'PENDING', { message: reason, at: NOW - 120_000 }), fakeTask('t2', 'big', 2, '', 'PENDING', { message: reason, at: NOW - 60_000 }), fakeTask('t3', 'web', 1, '', 'NEW')] };
      },
    });
    assert.equal(await run(['cluster', 'top'], f.io), 0, f.err());
    const out = f.out();
    assert.match(out, /^2 ready nodes of 3, 4 tasks holding them \(no usage sample from 1 node: in use counts the others\)\n/);
    assert.match(out, /\nCPU\s+8\s+3 \(38%\)\s+0\.5 \(6%\)\s+5\n/);
    assert.match(out, /\nMEMORY\s+16GiB\s+8GiB \(50%\)\s+1GiB \(6%\)\s+8GiB\n/);
    assert.match(out, /\nh3\s+Down\s+Active\s+2 /, 'a down node is listed but not counted');
    assert.match(out, /\nPending: 3 tasks\n/);
    assert.match(out, new RegExp(`\\nbig\\s+2\\s+2 minutes ago\\s+${reason}\\n`));
    assert.match(out, /\nweb\s+1\s+5 seconds ago\s+waiting for the scheduler\n/);

    const j = fake({ listNodes: async () => ({ nodes: nodes(), leader: '' }), listTasks: async () => ({ tasks: [] }) });
    assert.equal(await run(['cluster', 'top', '--format', 'json'], j.io), 0, j.err());
    const parsed = JSON.parse(j.out()) as { totals: { cpu: number; reservedMem: number }; pending: unknown[]; nodes: { hostname: string }[] };
    assert.equal(parsed.totals.cpu, 8e9);
    assert.equal(parsed.totals.reservedMem, 8 * GiB);
    assert.deepEqual(parsed.pending, []);
    assert.equal(parsed.nodes.length, 3);
  });

  it('totals and pending groups as plain functions', () => {
    const t = totalsOf(nodes());
    assert.deepEqual([t.nodes, t.unsampled, t.usedCpu, t.tasks], [2, 1, 5e8, 4]);
    assert.deepEqual(pendingGroups([fakeTask('x', 'a', 1, 'n', 'RUNNING'), { ...fakeTask('y', 'a', 2, '', 'PENDING'), desiredState: 'SHUTDOWN' }]), [], 'running or not wanted: not pending');
  });

  it('node ps resolves each node and lists its tasks with the columns of service ps', async () => {
    const f = fake({
      getNode: async (req) => {
        assert.equal(req.node, 'h1');
        return { node: nodes()[0] };
      },
      listTasks: async (req) => {
        assert.equal(req.node, 'aaaa1111', 'the node is resolved to its id first');
        return { tasks: [fakeTask('task1aaaaaaaaaaa', 'web', 1, 'aaaa1111', 'RUNNING')] };
      },
      listNodes: async () => ({ nodes: nodes(), leader: '' }),
    });
    assert.equal(await run(['node', 'ps', 'h1'], f.io), 0, f.err());
    assert.match(f.out(), /^ID\s+NAME\s+IMAGE\s+NODE\s+DESIRED STATE\s+CURRENT STATE\s+ERROR\s+PORTS\n/);
    assert.match(f.out(), /\ntask1aaaaaaa\s+web\.1\s+h1\s+Running\s+Running 5 seconds ago/);
  });
});
