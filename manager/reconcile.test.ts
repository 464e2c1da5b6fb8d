// reconcile() as a whole: its write type, step 0 (liveness, autoscaler
// decisions), and reconcileSteps' pauses (which never change a decision).
import { strict as assert } from 'node:assert';
import { reconcile, reconcileSteps } from './reconcile';
import { counter, node, service, Sim } from './orchestrator/testing/fixtures';
import { isNode, isService } from './state/snapshot';

describe('reconcile', () => {
  it('returns one store write per object, tasks created assigned in the same write', () => {
    const s = new Sim({ services: [service('web', { replicas: 3 })], nodes: [node('a')] });
    const r = reconcile(s.snapshot(), { newId: counter('t') });
    const keys = r.writes.map((w) => `${w.kind}/${w.obj.id}`);
    assert.equal(new Set(keys).size, keys.length, 'no object written twice');
    const tasks = r.writes.filter((w) => w.kind === 'tasks');
    assert.equal(tasks.length, 3);
    assert.ok(tasks.every((w) => w.op === 'create'));
    assert.ok(r.writes.some((w) => w.kind === 'networks' && w.op === 'create'), 'the default network');
  });

  it('marks a node down once its key is gone past the grace period, and replaces its tasks in the same tick', () => {
    const s = new Sim({ services: [service('web', { replicas: 2 })], nodes: [node('a'), node('b')] });
    s.tick({ alive: new Set(['a', 'b']) });
    s.agentsRun();
    const onB = s.live('web').filter((t) => t.nodeId === 'b').length;
    assert.ok(onB > 0);
    s.setNode('b', (n) => ({ ...n, status: { ...n.status!, updatedAt: s.now } }));
    const early = s.tick({ alive: new Set(['a']), newSessionGraceMs: 1500 });
    assert.equal(s.nodes.get('b')?.status?.state, 'NODE_READY', 'inside the grace period');
    assert.equal(early.wakeAt, s.now + 1500, 'wakes when the grace period ends');
    s.now += 1500;
    const r = s.tick({ alive: new Set(['a']), newSessionGraceMs: 1500, dirty: { services: new Set(), nodes: new Set() } });
    assert.equal(s.nodes.get('b')?.status?.state, 'NODE_DOWN');
    assert.ok(r.writes.some((w) => w.kind === 'nodes' && isNode(w.obj) && w.obj.id === 'b'));
    assert.deepEqual(s.live('web').map((t) => t.nodeId), ['a', 'a'], 'the down node made its services dirty');
  });

  it('applies the autoscaler decisions before the orchestrators, which act on them in the same tick', () => {
    const s = new Sim({ services: [service('web', { replicas: 1 })], nodes: [node('a')] });
    s.tick();
    const r = s.tick({ scale: [{ serviceId: 'web', from: 1, to: 3, reason: 'cpu' }], dirty: { services: new Set(), nodes: new Set() } });
    assert.ok(r.writes.some((w) => w.kind === 'services' && isService(w.obj) && w.obj.spec?.replicas === 3));
    assert.equal(s.live('web').length, 3);
  });

  it('decides the same whether its steps pause or not', () => {
    const mk = () => new Sim({ services: [service('web', { replicas: 3000 }), service('api', { replicas: 500 })], nodes: Array.from({ length: 20 }, (_, i) => node(`n${i}`)) });
    const whole = reconcile(mk().snapshot(), { newId: counter('t') });
    const steps = reconcileSteps(mk().snapshot(), { newId: counter('t'), sliceMs: 0 });
    let pauses = 0;
    let r = steps.next();
    for (; !r.done; r = steps.next()) pauses++;
    assert.ok(pauses > 1, `paused ${pauses} times`);
    const norm = (ws: typeof whole.writes) => ws.map((w) => JSON.stringify({ ...w, obj: { ...w.obj, meta: null } })).sort();
    assert.deepEqual(norm(r.value.writes), norm(whole.writes));
  });
});
