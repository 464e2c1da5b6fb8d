import { strict as assert } from 'node:assert';
import { eventsFor, placements } from './events';
import { node, service, Sim } from './orchestrator/testing/fixtures';
import type { Write } from './state/snapshot';

const ctx = { now: 5000, source: 'manager/m1' };

describe('eventsFor', () => {
  it('reports a node marked down or up, with its hostname', () => {
    const s = new Sim({ nodes: [node('a')] });
    const down: Write = { op: 'update', kind: 'nodes', obj: { ...node('a'), status: { state: 'NODE_DOWN', message: 'heartbeat failure', addr: '', updatedAt: 5000 } } };
    assert.deepEqual(eventsFor(s.snapshot(), [down], ctx), [
      { type: 'node', action: 'down', time: 5000, source: 'manager/m1', nodeId: 'a', hostname: 'host-a', message: 'heartbeat failure' },
    ]);
    const again = node('a', { state: 'NODE_READY' });
    assert.deepEqual(eventsFor(s.snapshot(), [{ op: 'update', kind: 'nodes', obj: again }], ctx), [], 'no change, no event');
  });

  it('reports an autoscale with the decision’s reason, and update milestones', () => {
    const s = new Sim({ services: [service('web', { replicas: 2 })] });
    const web = s.services.get('web')!;
    const scaled: Write = { op: 'update', kind: 'services', obj: { ...web, spec: { ...web.spec!, replicas: 4 } } };
    const ev = eventsFor(s.snapshot(), [scaled], { ...ctx, scale: [{ serviceId: 'web', from: 2, to: 4, reason: 'cpu 150% of target' }] });
    assert.deepEqual(ev, [{ type: 'service', action: 'autoscaled', time: 5000, source: 'manager/m1', serviceId: 'web', serviceName: 'web', from: 2, to: 4, message: 'cpu 150% of target' }]);
    const paused: Write = { op: 'update', kind: 'services', obj: { ...web, updateStatus: { state: 'UPDATE_PAUSED', startedAt: 1, completedAt: 0, message: 'update paused: x' } } };
    assert.deepEqual(eventsFor(s.snapshot(), [paused], ctx).map((e) => e.action), ['update-paused']);
  });

  it('reports the task states the leader decides, not placements; placements are measured', () => {
    const s = new Sim({ services: [service('web', { replicas: 2 })], nodes: [node('a')] });
    s.now = 1000;
    s.tick();
    s.agentsRun();
    const [t1, t2] = s.live('web');
    const before = { ...s.snapshot(), tasks: new Map([[t1.id, { ...t1, status: { ...t1.status!, state: 'PENDING' as const }, meta: { ...t1.meta!, createdAt: 1000 } }], [t2.id, t2]]) };
    const writes: Write[] = [
      { op: 'update', kind: 'tasks', obj: { ...t1, status: { ...t1.status!, state: 'ASSIGNED' } } },
      { op: 'update', kind: 'tasks', obj: { ...t2, status: { ...t2.status!, state: 'ORPHANED', message: 'node down' } } },
    ];
    const ev = eventsFor(before, writes, ctx);
    assert.equal(ev.length, 1);
    assert.deepEqual([ev[0].type, ev[0].type === 'task' && ev[0].state, ev[0].type === 'task' && ev[0].message], ['task', 'ORPHANED', 'node down']);
    assert.deepEqual(placements(before, writes, 5000), [4]);
  });
});
