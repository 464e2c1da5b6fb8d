// Replicated and global orchestrators, restart policy, node loss and drain,
// through reconcile() on a simulated store (no etcd, no timers).
import { strict as assert } from 'node:assert';
import type { Task } from '../../proto/mod';
import { node, service, Sim } from './testing/fixtures';
import { idGenerator } from './working';

const slots = (ts: Task[]) => ts.map((t) => t.slot).sort((a, b) => a - b);
const perSlotLive = (s: Sim, id: string) => {
  const m = new Map<number, number>();
  for (const t of s.live(id)) m.set(t.slot, (m.get(t.slot) ?? 0) + 1);
  return m;
};

describe('replicated orchestrator', () => {
  it('creates one task per slot 1..replicas, assigned and spread over the nodes', () => {
    const s = new Sim({ services: [service('web', { replicas: 4 })], nodes: [node('a'), node('b')] });
    s.tick();
    const live = s.live('web');
    assert.deepEqual(slots(live), [1, 2, 3, 4]);
    assert.ok(live.every((t) => t.status?.state === 'ASSIGNED' && t.desiredState === 'RUNNING' && t.specVersion === 1));
    assert.equal(live.filter((t) => t.nodeId === 'a').length, 2);
    assert.equal(live[0].spec?.container?.image, 'reg/x:1');
  });

  it('is idempotent: a second tick on the same state writes nothing', () => {
    const s = new Sim({ services: [service('web')], nodes: [node('a')] });
    s.tick();
    s.agentsRun();
    assert.equal(s.tick().writes.length, 0);
  });

  it('scales up into new slots and down by dropping slots from the most loaded node', () => {
    const s = new Sim({ services: [service('web', { replicas: 3 })], nodes: [node('a'), node('b')] });
    s.tick();
    s.agentsRun();
    s.setService('web', (x) => ({ ...x, spec: { ...x.spec!, replicas: 5 } }));
    s.tick();
    assert.deepEqual(slots(s.live('web')), [1, 2, 3, 4, 5]);
    s.agentsRun();
    s.setService('web', (x) => ({ ...x, spec: { ...x.spec!, replicas: 2 } }));
    s.tick();
    const live = s.live('web');
    assert.equal(live.length, 2);
    // Balanced afterwards: one per node.
    assert.deepEqual(live.map((t) => t.nodeId).sort(), ['a', 'b']);
    assert.ok(s.of('web').filter((t) => t.desiredState === 'SHUTDOWN').length === 3);
  });

  it('restarts a failed task after the restart delay, in the same slot, as attempt + 1', () => {
    const s = new Sim({ services: [service('web', { replicas: 1, restart: { condition: 'RESTART_ANY', delayMs: 5000, maxAttempts: 0, windowMs: 0 } })], nodes: [node('a')] });
    s.tick();
    s.agentsRun();
    const [first] = s.report((t) => t.slot === 1, 'FAILED', { err: 'exit code 1', exitCode: 1 });
    let r = s.tick();
    assert.equal(r.writes.length, 0, 'nothing before the delay');
    assert.equal(r.wakeAt, s.now + 5000);
    s.now += 5000;
    r = s.tick();
    const live = s.live('web');
    assert.equal(live.length, 1);
    assert.equal(live[0].slot, 1);
    assert.equal(live[0].attempt, 1);
    assert.equal(s.tasks.get(first.id)?.desiredState, 'SHUTDOWN');
  });

  it('follows the restart condition: none never, on-failure only after a failure', () => {
    const none = new Sim({ services: [service('w', { replicas: 1, restart: { condition: 'RESTART_NONE', delayMs: 0, maxAttempts: 0, windowMs: 0 } })], nodes: [node('a')] });
    none.tick();
    none.agentsRun();
    none.report(() => true, 'FAILED');
    none.tick();
    assert.equal(none.live('w').length, 0);
    assert.equal(none.of('w')[0].desiredState, 'COMPLETE');
    assert.equal(none.tick().writes.length, 0, 'a finished slot stays finished');

    const onf = new Sim({ services: [service('w', { replicas: 2, restart: { condition: 'RESTART_ON_FAILURE', delayMs: 0, maxAttempts: 0, windowMs: 0 } })], nodes: [node('a')] });
    onf.tick();
    onf.agentsRun();
    onf.report((t) => t.slot === 1, 'COMPLETE');
    onf.report((t) => t.slot === 2, 'FAILED');
    onf.tick();
    assert.deepEqual(slots(onf.live('w')), [2]);
  });

  it('stops restarting after max attempts (counted within the window when one is set)', () => {
    const s = new Sim({ services: [service('w', { replicas: 1, restart: { condition: 'RESTART_ANY', delayMs: 0, maxAttempts: 2, windowMs: 0 } })], nodes: [node('a')] });
    s.tick();
    for (let i = 0; i < 3; i++) {
      s.agentsRun();
      s.report((t) => t.status?.state === 'RUNNING', 'FAILED');
      s.now += 1000;
      s.tick();
    }
    assert.equal(s.live('w').length, 0);
    assert.deepEqual(s.of('w').map((t) => t.attempt).sort(), [0, 1, 2]);

    const win = new Sim({ services: [service('w', { replicas: 1, restart: { condition: 'RESTART_ANY', delayMs: 0, maxAttempts: 1, windowMs: 10_000 } })], nodes: [node('a')] });
    win.tick();
    for (let i = 0; i < 3; i++) {
      win.agentsRun();
      win.report((t) => t.status?.state === 'RUNNING', 'FAILED');
      win.now += 20_000; // every restart falls out of the window before the next failure
      win.tick();
    }
    assert.equal(win.live('w').length, 1);
  });

  it('orphans the tasks of a node that went down and replaces them at once elsewhere, same slots', () => {
    const s = new Sim({ services: [service('web', { replicas: 4 })], nodes: [node('a'), node('b')] });
    s.tick();
    s.agentsRun();
    const onA = s.live('web').filter((t) => t.nodeId === 'a');
    s.setNode('a', (n) => ({ ...n, status: { ...n.status!, state: 'NODE_DOWN' } }));
    s.tick();
    for (const t of onA) {
      assert.equal(s.tasks.get(t.id)?.status?.state, 'ORPHANED');
      assert.equal(s.tasks.get(t.id)?.desiredState, 'SHUTDOWN');
    }
    const live = s.live('web');
    assert.deepEqual(slots(live), [1, 2, 3, 4]);
    assert.ok(live.every((t) => t.nodeId === 'b'));
    assert.ok(live.filter((t) => onA.some((o) => o.slot === t.slot)).every((t) => t.attempt === 0));
  });

  it('drains: shuts the tasks down and replaces them on other nodes', () => {
    const s = new Sim({ services: [service('web', { replicas: 2 })], nodes: [node('a'), node('b')] });
    s.tick();
    s.agentsRun();
    s.setNode('a', (n) => ({ ...n, spec: { ...n.spec!, availability: 'DRAIN' } }));
    s.tick();
    assert.ok(s.live('web').every((t) => t.nodeId === 'b'));
    assert.equal(s.live('web').length, 2);
    assert.ok(s.of('web').some((t) => t.nodeId === 'a' && t.desiredState === 'SHUTDOWN' && t.status?.state === 'RUNNING'));
  });

  it('tells every task of a removed service to stop, and deletes them once ended', () => {
    const s = new Sim({ services: [service('web', { replicas: 2 })], nodes: [node('a')] });
    s.tick();
    s.agentsRun();
    s.services.delete('web');
    s.tick();
    assert.ok(s.of('web').every((t) => t.desiredState === 'REMOVE'));
    s.agentsRun();
    s.tick();
    assert.equal(s.of('web').length, 0);
  });

  it('a pending task of a removed service is ended and deleted by the manager itself', () => {
    const s = new Sim({ services: [service('web', { replicas: 2 })], nodes: [] });
    s.tick();
    assert.equal(s.of('web').length, 2);
    s.services.delete('web');
    s.tick();
    assert.equal(s.of('web').length, 0);
  });

  it('never keeps two live tasks in one slot through failures, node loss, drain and scaling', () => {
    const s = new Sim({ services: [service('web', { replicas: 6, restart: { condition: 'RESTART_ANY', delayMs: 0, maxAttempts: 0, windowMs: 0 } })], nodes: [node('a'), node('b'), node('c')] });
    const steps: (() => void)[] = [
      () => s.agentsRun(),
      () => s.report((t) => t.slot % 2 === 0 && t.status?.state === 'RUNNING', 'FAILED'),
      () => s.setNode('b', (n) => ({ ...n, status: { ...n.status!, state: 'NODE_DOWN' } })),
      () => s.setService('web', (x) => ({ ...x, spec: { ...x.spec!, replicas: 3 } })),
      () => s.setNode('b', (n) => ({ ...n, status: { ...n.status!, state: 'NODE_READY' } })),
      () => s.setNode('c', (n) => ({ ...n, spec: { ...n.spec!, availability: 'DRAIN' } })),
      () => s.setService('web', (x) => ({ ...x, spec: { ...x.spec!, replicas: 7 } })),
    ];
    for (const step of steps) {
      step();
      s.now += 1000;
      s.tick();
      for (const [slot, n] of perSlotLive(s, 'web')) assert.equal(n, 1, `slot ${slot} has ${n} live tasks`);
      s.agentsRun();
    }
    assert.equal(s.live('web').length, 7);
  });
});

describe('global orchestrator', () => {
  const g = () => service('agent', { mode: 'GLOBAL', replicas: 0, placement: { constraints: ['node.labels.zone != dmz'], preferences: [], maxReplicasPerNode: 0, platforms: [], strategy: 'SPREAD' as const } });

  it('runs one task per eligible node, with its node chosen', () => {
    const s = new Sim({ services: [g()], nodes: [node('a'), node('b'), node('c', { labels: { zone: 'dmz' } }), node('d', { state: 'NODE_DOWN' })] });
    s.tick();
    const live = s.live('agent');
    assert.deepEqual(live.map((t) => t.nodeId).sort(), ['a', 'b']);
    assert.ok(live.every((t) => t.slot === 0 && t.status?.state === 'ASSIGNED'));
  });

  it('follows nodes that join, drain, pause, change labels and go down', () => {
    const s = new Sim({ services: [g()], nodes: [node('a'), node('b')] });
    s.tick();
    s.agentsRun();
    s.nodes.set('c', node('c'));
    s.tick();
    assert.deepEqual(s.live('agent').map((t) => t.nodeId).sort(), ['a', 'b', 'c']);
    s.agentsRun();

    s.setNode('a', (n) => ({ ...n, spec: { ...n.spec!, availability: 'DRAIN' } }));
    s.setNode('b', (n) => ({ ...n, spec: { ...n.spec!, availability: 'PAUSE' } }));
    s.setNode('c', (n) => ({ ...n, spec: { ...n.spec!, labels: { zone: 'dmz' } } }));
    s.tick();
    assert.deepEqual(s.live('agent').map((t) => t.nodeId), ['b'], 'paused node keeps its task');

    s.setNode('b', (n) => ({ ...n, status: { ...n.status!, state: 'NODE_DOWN' } }));
    s.tick();
    assert.equal(s.live('agent').length, 0);
    assert.ok(s.of('agent').some((t) => t.nodeId === 'b' && t.status?.state === 'ORPHANED'));

    s.setNode('b', (n) => ({ ...n, spec: { ...n.spec!, availability: 'ACTIVE' }, status: { ...n.status!, state: 'NODE_READY' } }));
    s.tick();
    assert.deepEqual(s.live('agent').map((t) => t.nodeId), ['b'], 'comes back with its node');
  });

  it('removes the task of a node that left the cluster', () => {
    const s = new Sim({ services: [g()], nodes: [node('a'), node('b')] });
    s.tick();
    s.agentsRun();
    s.nodes.delete('b');
    s.tick();
    assert.deepEqual(s.live('agent').map((t) => t.nodeId), ['a']);
  });
});

describe('task ids', () => {
  it('are 25 hex characters whose first 12 (what tables show) differ between tasks of one tick', () => {
    const next = idGenerator();
    const ids = Array.from({ length: 10_000 }, next);
    assert.ok(ids.every((id) => /^[0-9a-f]{25}$/.test(id)), ids[0]);
    assert.equal(new Set(ids.map((id) => id.slice(0, 12))).size, ids.length);
  });
});
