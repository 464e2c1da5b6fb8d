// The job flags of service create/update, and how service ls shows jobs.
import { strict as assert } from 'node:assert';
import type { Service, ServiceSpec } from '../../proto/mod';
import { applyServiceUpdate, buildServiceSpec } from '../flags';
import { modeName } from '../format';
import { replicasCell } from './ls';

const svc = (spec: ServiceSpec): Service => ({ id: 's1', meta: null, spec, previousSpec: null, specVersion: 1, updateStatus: null, endpoint: null, jobStatus: null });

describe('service create/update: job flags', () => {
  it('--mode replicated-job --replicas N --max-concurrent M', () => {
    const s = buildServiceSpec('reg/x:1', ['sh', '-c', 'exit 0'], { name: 'j', mode: 'replicated-job', replicas: '5', maxConcurrent: '2' });
    assert.equal(s.mode, 'REPLICATED_JOB');
    assert.equal(s.replicas, 5);
    assert.equal(s.job?.maxConcurrent, 2);
    assert.equal(s.job?.schedule, '');
  });

  it('--mode global-job: no replicas, no max-concurrent', () => {
    const s = buildServiceSpec('reg/x:1', [], { name: 'g', mode: 'global-job' });
    assert.equal(s.mode, 'GLOBAL_JOB');
    assert.equal(s.replicas, 0);
    assert.throws(() => buildServiceSpec('reg/x:1', [], { mode: 'global-job', replicas: '2' }), /^Error: --replicas: not allowed with --mode global-job$|--replicas: not allowed with --mode global-job/);
    assert.throws(() => buildServiceSpec('reg/x:1', [], { mode: 'global-job', maxConcurrent: '2' }), /--max-concurrent: not allowed with --mode global-job/);
  });

  it('a schedule with its time zone, policy, history limit and deadline', () => {
    const s = buildServiceSpec('reg/x:1', [], { mode: 'replicated-job', schedule: '*/5 * * * *', scheduleTimezone: 'Europe/Paris', concurrencyPolicy: 'forbid', historyLimit: '7', scheduleDeadline: '90s' });
    assert.deepEqual(s.job, { maxConcurrent: 0, schedule: '*/5 * * * *', timezone: 'Europe/Paris', concurrencyPolicy: 'CONCURRENCY_FORBID', historyLimit: 7, startingDeadlineMs: 90_000 });
    assert.throws(() => buildServiceSpec('reg/x:1', [], { mode: 'replicated-job', concurrencyPolicy: 'sometimes' }), /--concurrency-policy: "sometimes" is not one of allow, forbid, replace/);
    assert.throws(() => buildServiceSpec('reg/x:1', [], { mode: 'replicated-job', historyLimit: '-1' }), /--history-limit/);
  });

  it('job flags without a job mode are refused by name', () => {
    assert.throws(() => buildServiceSpec('reg/x:1', [], { schedule: '* * * * *' }), /--schedule: only with --mode replicated-job or global-job/);
    assert.throws(() => buildServiceSpec('reg/x:1', [], { mode: 'global', maxConcurrent: '1' }), /--max-concurrent: only with --mode/);
  });

  it('update changes the schedule and keeps the rest of the job', () => {
    const s = buildServiceSpec('reg/x:1', [], { mode: 'replicated-job', replicas: '3', schedule: '@daily', historyLimit: '4' });
    const u = applyServiceUpdate(s, { schedule: '0 6 * * 1-5', scheduleTimezone: 'America/New_York' });
    assert.deepEqual(u.job, { ...s.job!, schedule: '0 6 * * 1-5', timezone: 'America/New_York' });
  });
});

describe('service ls: jobs', () => {
  it('MODE says job (and scheduled); REPLICAS as Docker prints a job: running/desired (completed/total completed)', () => {
    const rj = buildServiceSpec('reg/x:1', [], { mode: 'replicated-job', replicas: '5', maxConcurrent: '2' });
    assert.equal(modeName(svc(rj)), 'replicated job');
    assert.equal(replicasCell({ service: svc(rj), counts: { running: 2, desired: 2, completed: 3, failed: 0 } }), '2/2 (3/5 completed)');
    assert.equal(replicasCell({ service: svc(rj), counts: { running: 0, desired: 0, completed: 4, failed: 1 } }), '0/0 (4/5 completed, 1 failed)');
    const gj = buildServiceSpec('reg/x:1', [], { mode: 'global-job', schedule: '@hourly' });
    assert.equal(modeName(svc(gj)), 'global job (scheduled)');
    assert.equal(replicasCell({ service: svc(gj), counts: { running: 1, desired: 1, completed: 2, failed: 0 } }), '1/1 (2/3 completed)');
  });
});

describe('stack redeploy of a job', () => {
  it('a converted job spec and the one the manager stored (defaults filled) compare equal: an unchanged redeploy restarts no run', async () => {
    const { canonicalSpec } = await import('../stack/deploy');
    const { validateServiceSpec } = await import('../../manager/spec/validate');
    for (const job of [null, { maxConcurrent: 0, schedule: '*/5 * * * *', timezone: '', concurrencyPolicy: 'CONCURRENCY_ALLOW' as const, historyLimit: 0, startingDeadlineMs: 0 }]) {
      const spec = { ...buildServiceSpec('reg/x:1', [], { name: 'app_j', mode: 'replicated-job', replicas: '2' }), job };
      const stored = validateServiceSpec(spec, { nodes: [], services: [] });
      assert.ok(stored.ok);
      assert.equal(canonicalSpec(stored.spec), canonicalSpec(spec), `job ${JSON.stringify(job)}`);
    }
  });
});
