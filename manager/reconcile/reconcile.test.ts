// The reconcilers as plain functions of a snapshot: no etcd, no timers.
import { strict as assert } from 'node:assert';
import type { Node, Service, ServiceSpec, Task } from '../../proto/mod';
import type { Action, ClusterSnapshot } from '../state/snapshot';
import { mayRestart, newTask, reconcile } from './reconcile';
import { parseConstraint } from './scheduler';
import { validateServiceSpec } from './validate';

const GiB = 1024 ** 3;

function node(id: string, o: { labels?: Record<string, string>; state?: Node['status'] extends infer S ? (S extends { state: infer X } ? X : never) : never; availability?: 'ACTIVE' | 'PAUSE' | 'DRAIN'; mem?: number } = {}): Node {
  return {
    id,
    meta: { version: 1, createdAt: 0, updatedAt: 0 },
    spec: { role: 'WORKER', availability: o.availability ?? 'ACTIVE', labels: o.labels ?? {} },
    description: { hostname: `host-${id}`, platform: { os: 'linux', arch: 'amd64' }, resources: { nanoCpus: 2e9, memoryBytes: o.mem ?? 4 * GiB, pids: 0 }, engineLabels: {} },
    status: { state: o.state ?? 'NODE_READY', message: '', addr: '', updatedAt: 0 },
    subnet: '',
    sessionId: '',
    leaseId: 0,
  };
}

function service(id: string, s: Partial<ServiceSpec> = {}): Service {
  const v = validateServiceSpec({ name: id, replicas: 3, container: { image: 'reg/x:1' }, ...s } as ServiceSpec, { nodes: [] });
  assert.ok(v.ok);
  return { id, meta: { version: 1, createdAt: 0, updatedAt: 0 }, spec: v.spec, previousSpec: null, specVersion: 1, updateStatus: null, endpoint: null };
}

function snap(services: Service[], nodes: Node[], tasks: Task[] = [], now = 1_000_000): ClusterSnapshot {
  return {
    revision: 1,
    now,
    cluster: { id: 'default', meta: null, workerTokenHash: '', managerTokenHash: '', clusterCidr: '', vipCidr: '', ingressPortMin: 0, ingressPortMax: 0, createdAt: 0 },
    services: new Map(services.map((s) => [s.id, s])),
    nodes: new Map(nodes.map((n) => [n.id, n])),
    tasks: new Map(tasks.map((t) => [t.id, t])),
    networks: new Map(),
  };
}

/** Applies the actions to the snapshot, as the leader's commit would. */
function apply(s: ClusterSnapshot, actions: Action[]): ClusterSnapshot {
  const tasks = new Map(s.tasks);
  for (const a of actions) {
    if (a.op === 'createTask' || a.op === 'updateTask') tasks.set(a.task.id, { ...a.task, meta: { version: 2, createdAt: a.task.meta?.createdAt ?? s.now, updatedAt: s.now } });
    if (a.op === 'deleteTask') tasks.delete(a.task.id);
  }
  return { ...s, tasks };
}

function running(s: ClusterSnapshot, state: 'RUNNING' | 'FAILED' = 'RUNNING', ts = s.now): ClusterSnapshot {
  const tasks = new Map([...s.tasks].map(([id, t]) => [id, t.nodeId && t.desiredState === 'RUNNING' && t.status?.state === 'ASSIGNED' ? { ...t, status: { ...t.status!, state, timestamp: ts } } : t]));
  return { ...s, tasks };
}

const live = (s: ClusterSnapshot) => [...s.tasks.values()].filter((t) => t.desiredState === 'RUNNING');

describe('reconcile', () => {
  it('creates one task per slot and spreads them over the nodes', () => {
    let s = snap([service('web', { replicas: 6 })], [node('a'), node('b'), node('c')]);
    s = apply(s, reconcile(s).actions);
    const ts = live(s);
    assert.deepEqual(ts.map((t) => t.slot).sort(), [1, 2, 3, 4, 5, 6]);
    const per = new Map<string, number>();
    for (const t of ts) per.set(t.nodeId, (per.get(t.nodeId) ?? 0) + 1);
    assert.deepEqual([...per.values()], [2, 2, 2]);
    assert.ok(ts.every((t) => t.status?.state === 'ASSIGNED'));
    assert.equal(reconcile(s).actions.length, 0, 'a converged snapshot needs no writes');
  });

  it('scales down by shutting the highest slots', () => {
    let s = snap([service('web', { replicas: 4 })], [node('a')]);
    s = running(apply(s, reconcile(s).actions));
    s = { ...s, services: new Map([['web', { ...s.services.get('web')!, spec: { ...s.services.get('web')!.spec!, replicas: 2 } }]]) };
    s = apply(s, reconcile(s).actions);
    assert.deepEqual(live(s).map((t) => t.slot).sort(), [1, 2]);
  });

  it('explains a task that fits nowhere and places it when a fitting node appears', () => {
    const svc = service('db', { replicas: 1, placement: { constraints: ['node.labels.disk==ssd'], preferences: [], maxReplicasPerNode: 0, platforms: [] }, resources: { reservations: { nanoCpus: 0, memoryBytes: 8 * GiB, pids: 0 }, limits: null } });
    let s = snap([svc], [node('a', { labels: { disk: 'ssd' } }), node('b'), node('c')]);
    const r = reconcile(s);
    assert.equal(r.unschedulable.length, 1);
    assert.equal(r.unschedulable[0].reason, 'no suitable node: constraint mismatch on 2 nodes, insufficient memory on 1 node');
    s = apply(s, r.actions);
    s = { ...s, nodes: new Map([...s.nodes, ['d', node('d', { labels: { disk: 'ssd' }, mem: 16 * GiB })]]) };
    s = apply(s, reconcile(s).actions);
    assert.equal(live(s)[0].nodeId, 'd');
  });

  it('replaces a failed task with a new task for the same slot after the restart delay', () => {
    let s = snap([service('web', { replicas: 1 })], [node('a')]);
    s = running(apply(s, reconcile(s).actions), 'FAILED', s.now);
    assert.equal(reconcile(s).actions.filter((a) => a.op === 'createTask').length, 0, 'waits for the 5 s default delay');
    s = { ...s, now: s.now + 5000 };
    const r = reconcile(s);
    const created = r.actions.filter((a) => a.op === 'createTask');
    assert.equal(created.length, 1);
    assert.equal((created[0] as { task: Task }).task.slot, 1);
    assert.equal((created[0] as { task: Task }).task.attempt, 1);
  });

  it('follows restart conditions and max attempts', () => {
    const svc = service('job', { restart: { condition: 'RESTART_ON_FAILURE', delayMs: 0, maxAttempts: 2, windowMs: 0 } });
    const t = (attempt: number, state: 'COMPLETE' | 'FAILED'): Task => ({ ...newTask(svc, 1, 'a', attempt, 0), status: { state, timestamp: 0, message: '', err: '', exitCode: 1, pid: 0, health: '' } });
    assert.equal(mayRestart(svc, [t(0, 'COMPLETE')], 10).ok, false, 'on-failure: a clean exit stays down');
    assert.equal(mayRestart(svc, [t(0, 'FAILED')], 10).ok, true);
    assert.equal(mayRestart(svc, [t(0, 'FAILED'), t(1, 'FAILED'), t(2, 'FAILED')], 10).ok, false, 'max attempts reached');
  });

  it('orphans the tasks of a node that is down and replaces them elsewhere at once', () => {
    let s = snap([service('web', { replicas: 2 })], [node('a'), node('b')]);
    s = running(apply(s, reconcile(s).actions));
    const onA = live(s).find((t) => t.nodeId === 'a')!;
    s = { ...s, nodes: new Map([['a', node('a', { state: 'NODE_DOWN' })], ['b', node('b')]]) };
    s = apply(s, reconcile(s).actions);
    assert.equal(s.tasks.get(onA.id)?.status?.state, 'ORPHANED');
    const now = live(s);
    assert.equal(now.length, 2);
    assert.ok(now.every((t) => t.nodeId === 'b'));
  });

  it('runs a global service once on every eligible node', () => {
    const svc = service('mon', { mode: 'GLOBAL', replicas: 0, placement: { constraints: ['node.role==worker'], preferences: [], maxReplicasPerNode: 0, platforms: [] } });
    let s = snap([svc], [node('a'), node('b'), node('c', { availability: 'DRAIN' })]);
    s = apply(s, reconcile(s).actions);
    assert.deepEqual(live(s).map((t) => t.nodeId).sort(), ['a', 'b']);
  });

  it('rolls an update one slot at a time and waits for the monitor period', () => {
    let s = snap([service('web', { replicas: 3 })], [node('a')]);
    s = running(apply(s, reconcile(s).actions));
    const svc = s.services.get('web')!;
    s = { ...s, services: new Map([['web', { ...svc, specVersion: 2, spec: { ...svc.spec!, container: { ...svc.spec!.container!, image: 'reg/x:2' } } }]]) };
    s = apply(s, reconcile(s).actions);
    assert.equal(live(s).filter((t) => t.specVersion === 2).length, 1, 'parallelism 1');
    s = apply(s, reconcile(s).actions);
    assert.equal(live(s).filter((t) => t.specVersion === 2).length, 1, 'the new task has not run for the monitor period');
    s = running(s);
    s = { ...s, now: s.now + 5000 };
    s = apply(s, reconcile(s).actions);
    assert.equal(live(s).filter((t) => t.specVersion === 2).length, 2);
  });

  it('validates specs naming the field', () => {
    const bad = validateServiceSpec({ name: 'x', replicas: -2, container: { image: '' } } as ServiceSpec, { nodes: [node('a')] });
    assert.ok(!bad.ok);
    assert.deepEqual(bad.errors.map((e) => e.field).sort(), ['spec.container.image', 'spec.replicas']);
    assert.throws(() => parseConstraint('node.labels.zone=east'), /not of the form/);
  });
});
