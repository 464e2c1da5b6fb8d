// The filter pipeline, ranking and explain messages, through reconcile().
import { strict as assert } from 'node:assert';
import type { ServiceSpec } from '../../proto/mod';
import { GiB, node, service, Sim } from '../orchestrator/testing/fixtures';
import { parseConstraint } from './constraint';

const placement = (p: Partial<NonNullable<ServiceSpec['placement']>>) => ({ constraints: [], preferences: [], maxReplicasPerNode: 0, platforms: [], ...p });
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
