import { strict as assert } from 'node:assert';
import { node, service, Sim } from '../orchestrator/testing/fixtures';

describe('reaper', () => {
  it('keeps the last 5 ended tasks per slot and deletes older ones', () => {
    const s = new Sim({ services: [service('w', { replicas: 1, restart: { condition: 'RESTART_ANY', delayMs: 0, maxAttempts: 0, windowMs: 0 } })], nodes: [node('a')] });
    s.tick();
    for (let i = 0; i < 9; i++) {
      s.agentsRun();
      s.report((t) => t.status?.state === 'RUNNING', 'FAILED');
      s.now += 1000;
      s.tick();
    }
    const ended = s.of('w').filter((t) => t.status?.state === 'FAILED');
    assert.equal(ended.length, 5);
    assert.equal(s.live('w').length, 1);
    assert.equal(Math.min(...ended.map((t) => t.attempt)), 4, 'the oldest went first');
  });

  it('never reaps a task that waits for its restart delay', () => {
    const s = new Sim({ services: [service('w', { replicas: 1 })], nodes: [node('a')], opts: { taskHistory: 0 } });
    s.tick();
    s.agentsRun();
    s.report(() => true, 'FAILED');
    s.tick();
    assert.equal(s.of('w').length, 1);
  });
});
