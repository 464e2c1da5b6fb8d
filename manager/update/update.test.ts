// Rolling updates and rollback: state lives in the service and the tasks only.
import { strict as assert } from 'node:assert';
import type { Service, ServiceSpec, UpdateConfig } from '../../proto/mod';
import { node, service, Sim } from '../orchestrator/testing/fixtures';

const cfg = (o: Partial<UpdateConfig> = {}): UpdateConfig => ({ parallelism: 1, delayMs: 0, failureAction: 'FAILURE_PAUSE', monitorMs: 1000, maxFailureRatio: 0, order: 'STOP_FIRST', ...o });

function update(s: Sim, id: string, image: string, patch: Partial<ServiceSpec> = {}): void {
  s.setService(id, (x): Service => ({
    ...x,
    previousSpec: x.spec,
    specVersion: x.specVersion + 1,
    spec: { ...x.spec!, ...patch, container: { ...x.spec!.container!, image } },
    updateStatus: { state: 'UPDATING', startedAt: s.now, completedAt: 0, message: '' },
  }));
}

const images = (s: Sim, id: string) => s.live(id).map((t) => t.spec?.container?.image).sort();

describe('update supervisor', () => {
  it('replaces tasks one batch at a time, stop-first, and completes after the monitor period', () => {
    const s = new Sim({ services: [service('web', { replicas: 3, update: cfg({ parallelism: 2 }) })], nodes: [node('a'), node('b')] });
    s.tick();
    s.agentsRun();
    update(s, 'web', 'reg/x:2');
    s.tick();
    assert.equal(s.of('web').filter((t) => t.specVersion === 2).length, 2, 'one batch of 2');
    assert.equal(s.of('web').filter((t) => t.specVersion === 1 && t.desiredState === 'SHUTDOWN').length, 2);
    s.tick();
    assert.equal(s.of('web').filter((t) => t.specVersion === 2).length, 2, 'next batch waits for this one');
    s.agentsRun(); // old stop
    s.tick(); // new assigned
    s.agentsRun(); // new run
    s.tick();
    assert.equal(s.of('web').filter((t) => t.specVersion === 2).length, 3);
    s.agentsRun();
    s.tick();
    s.agentsRun();
    s.tick();
    assert.deepEqual(images(s, 'web'), ['reg/x:2', 'reg/x:2', 'reg/x:2']);
    assert.equal(s.services.get('web')!.updateStatus?.state, 'UPDATING', 'monitor period not over');
    s.now += 1000;
    const r = s.tick();
    assert.equal(s.services.get('web')!.updateStatus?.state, 'UPDATE_COMPLETED');
    assert.ok(r.writes.length >= 1);
  });

  it('start-first keeps the old task until the new one runs', () => {
    const s = new Sim({ services: [service('web', { replicas: 1, update: cfg({ order: 'START_FIRST' }) })], nodes: [node('a')] });
    s.tick();
    s.agentsRun();
    update(s, 'web', 'reg/x:2');
    s.tick();
    assert.equal(s.live('web').length, 2, 'old and new both live');
    s.agentsRun();
    s.tick();
    assert.deepEqual(images(s, 'web'), ['reg/x:2']);
  });

  it('waits for a healthcheck to report healthy before the task counts as up', () => {
    const hc = { test: ['CMD', 'true'], intervalMs: 1000, timeoutMs: 1000, retries: 3, startPeriodMs: 0 };
    const s = new Sim({ services: [service('web', { replicas: 2, update: cfg() })], nodes: [node('a')] });
    s.tick();
    s.agentsRun();
    s.setService('web', (x) => ({ ...x, spec: { ...x.spec!, container: { ...x.spec!.container!, healthcheck: hc } } }));
    update(s, 'web', 'reg/x:2');
    s.tick();
    s.agentsRun();
    s.tick();
    s.agentsRun();
    s.tick();
    assert.equal(s.of('web').filter((t) => t.specVersion === 2).length, 1, 'not healthy yet: no second batch');
    s.report((t) => t.specVersion === 2, 'RUNNING', { health: 'healthy' });
    s.tick();
    assert.equal(s.of('web').filter((t) => t.specVersion === 2).length, 2);
  });

  it('pauses when a new task fails (failure action pause)', () => {
    const s = new Sim({ services: [service('web', { replicas: 3, update: cfg() })], nodes: [node('a')] });
    s.tick();
    s.agentsRun();
    update(s, 'web', 'reg/x:bad');
    s.tick();
    s.agentsRun();
    s.tick();
    s.report((t) => t.specVersion === 2, 'FAILED', { err: 'exit code 1' });
    s.tick();
    const st = s.services.get('web')!.updateStatus!;
    assert.equal(st.state, 'UPDATE_PAUSED');
    assert.match(st.message, /update paused: task .* failed: exit code 1/);
    s.tick();
    assert.equal(s.of('web').filter((t) => t.specVersion === 2 && t.attempt === 0).length, 1, 'no further batches');
  });

  it('rolls back to the previous spec with failure action rollback', () => {
    const s = new Sim({ services: [service('web', { replicas: 2, update: cfg({ failureAction: 'FAILURE_ROLLBACK' }), rollback: cfg({ parallelism: 0 }) })], nodes: [node('a')] });
    s.tick();
    s.agentsRun();
    update(s, 'web', 'reg/x:bad');
    s.tick();
    s.agentsRun();
    s.tick();
    s.report((t) => t.specVersion === 2, 'FAILED');
    s.tick();
    const svc = s.services.get('web')!;
    assert.equal(svc.updateStatus?.state, 'ROLLBACK_STARTED');
    assert.equal(svc.spec?.container?.image, 'reg/x:1');
    assert.equal(svc.specVersion, 3);
    for (let i = 0; i < 6; i++) {
      s.agentsRun();
      s.now += 1000;
      s.tick();
    }
    assert.deepEqual(images(s, 'web'), ['reg/x:1', 'reg/x:1']);
    assert.equal(s.services.get('web')!.updateStatus?.state, 'ROLLBACK_COMPLETED');
  });

  it('survives a leader change mid-update: a fresh reconciler continues from the stored state', () => {
    const s = new Sim({ services: [service('web', { replicas: 3, update: cfg() })], nodes: [node('a')] });
    s.tick();
    s.agentsRun();
    update(s, 'web', 'reg/x:2');
    s.tick();
    const s2 = new Sim({ services: [...s.services.values()], nodes: [...s.nodes.values()], tasks: [...s.tasks.values()], opts: { newId: () => `n${Math.random().toString(16).slice(2)}` } });
    s2.networks = s.networks;
    for (let i = 0; i < 10; i++) {
      s2.agentsRun();
      s2.now += 1000;
      s2.tick();
    }
    assert.deepEqual(images(s2, 'web'), ['reg/x:2', 'reg/x:2', 'reg/x:2']);
    assert.equal(s2.services.get('web')!.updateStatus?.state, 'UPDATE_COMPLETED');
  });
});
