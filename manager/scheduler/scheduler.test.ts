// The filter pipeline, ranking and explain messages, through reconcile().
import { strict as assert } from 'node:assert';
import type { ServiceSpec } from '../../proto/mod';
import { GiB, node, service, Sim } from '../orchestrator/testing/fixtures';
import { parseConstraint } from './constraint';
import { binpackScore } from './scheduler';

const placement = (p: Partial<NonNullable<ServiceSpec['placement']>>) => ({ constraints: [], preferences: [], maxReplicasPerNode: 0, platforms: [], strategy: 'SPREAD' as const, ...p });
const reserve = (mem: number, cpus = 0) => ({ limits: null, reservations: { nanoCpus: cpus * 1e9, memoryBytes: mem, pids: 0 } });

describe('scheduler', () => {
  it('spreads: fewest tasks of the service first, then fewest tasks overall', () => {
    const s = new Sim({ services: [service('busy', { replicas: 2 }), service('web', { replicas: 4 })], nodes: [node('a'), node('b'), node('c')] });
    s.tick();
    const busyNodes = new Set(s.live('busy').map((t) => t.nodeId));
    const web = s.live('web');
    const count = (n: string) => web.filter((t) => t.nodeId === n).length;
    const idle = ['a', 'b', 'c'].find((n) => !busyNodes.has(n))!;
    assert.equal(count(idle), 2, 'the node without busy tasks takes the extra one');
  });

  it('respects memory reservations and explains what did not fit', () => {
    const s = new Sim({ services: [service('big', { replicas: 3, resources: reserve(3 * GiB) })], nodes: [node('a', { mem: 4 * GiB }), node('b', { mem: 4 * GiB }), node('c', { state: 'NODE_DOWN' })] });
    const r = s.tick();
    assert.equal(s.live('big').filter((t) => t.nodeId).length, 2);
    assert.equal(r.unschedulable.length, 1);
    assert.equal(r.unschedulable[0].reason, 'no suitable node: insufficient memory on 2 nodes, 1 node not ready or not active');
    const pending = s.live('big').find((t) => !t.nodeId)!;
    assert.equal(pending.status?.message, r.unschedulable[0].reason);
    assert.equal(pending.status?.state, 'PENDING');
    // The same reason is not written again.
    s.agentsRun();
    assert.equal(s.tick().writes.length, 0);
    // Placed as soon as a node that fits appears.
    s.nodes.set('d', node('d', { mem: 4 * GiB }));
    s.tick();
    assert.equal(s.tasks.get(pending.id)?.nodeId, 'd');
  });

  it('filters on constraints (== and !=, labels, role), platform and availability', () => {
    const s = new Sim({
      services: [
        service('east', { replicas: 4, placement: placement({ constraints: ['node.labels.zone == east', 'node.role != manager'] }) }),
        service('arm', { replicas: 1, placement: placement({ platforms: [{ os: 'linux', arch: 'arm64' }] }) }),
      ],
      nodes: [
        node('a', { labels: { zone: 'east' } }),
        node('b', { labels: { zone: 'east' }, role: 'MANAGER' }),
        node('c', { labels: { zone: 'west' } }),
        node('d', { labels: { zone: 'east' }, availability: 'PAUSE' }),
      ],
    });
    const r = s.tick();
    assert.ok(s.live('east').every((t) => t.nodeId === 'a'));
    const arm = r.unschedulable.find((u) => s.tasks.get(u.taskId)?.serviceId === 'arm');
    assert.equal(arm?.reason, 'no suitable node: unsupported platform on 3 nodes, 1 node not ready or not active');
  });

  it('honours max replicas per node and host-mode port conflicts', () => {
    const s = new Sim({
      services: [
        service('one', { replicas: 3, placement: placement({ maxReplicasPerNode: 1 }) }),
        service('hp', { replicas: 3, endpoint: { mode: 'VIP', ports: [{ name: '', protocol: 'tcp', targetPort: 80, publishedPort: 8080, publishMode: 'HOST' }] } }),
      ],
      nodes: [node('a'), node('b')],
    });
    const r = s.tick();
    const reasons = r.unschedulable.map((u) => u.reason).sort();
    assert.deepEqual(reasons, ['no suitable node: host-mode port already in use on 2 nodes', 'no suitable node: max replicas per node reached on 2 nodes']);
    assert.deepEqual(new Set(s.live('hp').filter((t) => t.nodeId).map((t) => t.nodeId)).size, 2);
  });

  it('spreads over the values of a preference label, then over nodes', () => {
    const s = new Sim({
      services: [service('web', { replicas: 6, placement: placement({ preferences: ['node.labels.zone'] }) })],
      nodes: [node('a', { labels: { zone: 'x' } }), node('b', { labels: { zone: 'x' } }), node('c', { labels: { zone: 'x' } }), node('d', { labels: { zone: 'y' } })],
    });
    s.tick();
    const web = s.live('web');
    assert.equal(web.filter((t) => t.nodeId === 'd').length, 3, 'zone y gets half');
  });

  it('binpack fills the fullest node that fits before the next, and never overcommits', () => {
    const bin = placement({ strategy: 'BINPACK' });
    const s = new Sim({
      services: [service('web', { replicas: 5, resources: reserve(2 * GiB, 1), placement: bin })],
      nodes: [node('a', { mem: 8 * GiB, cpus: 4 }), node('b', { mem: 8 * GiB, cpus: 4 }), node('c', { mem: 8 * GiB, cpus: 4 })],
    });
    const r = s.tick();
    assert.equal(r.unschedulable.length, 0);
    const per = (n: string) => s.live('web').filter((t) => t.nodeId === n).length;
    const counts = ['a', 'b', 'c'].map(per).sort();
    assert.deepEqual(counts, [0, 1, 4], 'one node full (4 × 2 GiB of 8 GiB), the fifth on a second node, the third untouched');
    // Spread places the same service 2/2/1.
    const t = new Sim({
      services: [service('web', { replicas: 5, resources: reserve(2 * GiB, 1) })],
      nodes: [node('a', { mem: 8 * GiB, cpus: 4 }), node('b', { mem: 8 * GiB, cpus: 4 }), node('c', { mem: 8 * GiB, cpus: 4 })],
    });
    t.tick();
    assert.deepEqual(['a', 'b', 'c'].map((n) => t.live('web').filter((x) => x.nodeId === n).length).sort(), [1, 2, 2]);
  });

  it('binpack prefers the node already most used, across services and ticks', () => {
    const bin = placement({ strategy: 'BINPACK' });
    const s = new Sim({
      services: [service('db', { replicas: 1, resources: reserve(5 * GiB), placement: placement({ constraints: ['node.id == b'] }) })],
      nodes: [node('a', { mem: 8 * GiB }), node('b', { mem: 8 * GiB }), node('c', { mem: 16 * GiB })],
    });
    s.tick();
    s.services.set('web', service('web', { replicas: 2, resources: reserve(1 * GiB), placement: bin }));
    s.tick();
    assert.deepEqual(s.live('web').map((t) => t.nodeId), ['b', 'b'], 'b has 5 of 8 GiB reserved: the least free');
    // The next one does not fit b (7 of 8 GiB reserved, 2 GiB asked): a is fuller than c in fraction.
    s.services.set('big', service('big', { replicas: 1, resources: reserve(2 * GiB), placement: bin }));
    s.tick();
    assert.equal(s.live('big')[0].nodeId, 'a');
  });

  it('binpack without reservations packs by task count; the score follows Nomad', () => {
    const s = new Sim({ services: [service('web', { replicas: 4, placement: placement({ strategy: 'BINPACK' }) })], nodes: [node('a'), node('b')] });
    s.tick();
    assert.equal(new Set(s.live('web').map((t) => t.nodeId)).size, 1);
    const n = { freeCpu: 4e9, freeMem: 8 * GiB, totalCpu: 4e9, totalMem: 8 * GiB };
    assert.equal(binpackScore(n, { cpu: 0, mem: 0 }), 0, 'empty node');
    assert.equal(binpackScore(n, { cpu: 4e9, mem: 8 * GiB }), 18, 'full node');
    assert.ok(binpackScore(n, { cpu: 0, mem: 4 * GiB }) > binpackScore(n, { cpu: 0, mem: 2 * GiB }));
    assert.equal(binpackScore({ freeCpu: 0, freeMem: 0, totalCpu: 0, totalMem: 0 }, { cpu: 0, mem: 0 }), 0, 'no capacity reported: counts as free');
  });

  it('holds a stop-first replacement until the old task of its slot has stopped', () => {
    const s = new Sim({ services: [service('web', { replicas: 1 })], nodes: [node('a')] });
    s.tick();
    s.agentsRun();
    s.setService('web', (x) => ({ ...x, specVersion: 2, spec: { ...x.spec!, container: { ...x.spec!.container!, image: 'reg/x:2' } } }));
    s.tick();
    const fresh = s.of('web').find((t) => t.specVersion === 2)!;
    assert.equal(fresh.status?.state, 'PENDING');
    assert.match(fresh.status!.message, /waiting for the previous task/);
    s.agentsRun(); // old one stops
    s.tick();
    assert.equal(s.tasks.get(fresh.id)?.status?.state, 'ASSIGNED');
  });

  it('parses constraints and refuses other operators and keys', () => {
    assert.deepEqual(parseConstraint('node.labels.zone==east'), { key: 'node.labels.zone', op: '==', value: 'east' });
    assert.throws(() => parseConstraint('node.labels.zone >= 3'), /only == and !=/);
    assert.throws(() => parseConstraint('node.color == red'), /unknown constraint key/);
  });
});
