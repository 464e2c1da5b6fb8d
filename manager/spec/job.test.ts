// Validation of the job part of a spec: modes, bounds of every field, the
// schedule and its time zone refused with the field (and cron field) named.
import { strict as assert } from 'node:assert';
import type { JobSpec, ServiceSpec } from '../../proto/mod';
import { node } from '../orchestrator/testing/fixtures';
import * as L from './limits';
import { validateServiceSpec, type ValidationResult } from './validate';

const ctx = { nodes: [node('a')], services: [] };
const spec = (o: Partial<ServiceSpec> = {}, j?: Partial<JobSpec>) => ({ name: 'j', mode: 'REPLICATED_JOB', replicas: 3, container: { image: 'reg/x:1' }, ...o, ...(j ? { job: j } : {}) }) as ServiceSpec;
const errs = (r: ValidationResult) => (r.ok ? [] : r.errors.map((e) => `${e.field}: ${e.message}`));
const refuses = (s: ServiceSpec, re: RegExp) => {
  const r = validateServiceSpec(s, ctx);
  assert.ok(!r.ok, 'expected a refusal');
  assert.ok(errs(r).some((e) => re.test(e)), errs(r).join('; '));
};

describe('job specs', () => {
  it('fills the job defaults for job modes: all at once, UTC for a schedule, allow, 3 runs kept', () => {
    const r = validateServiceSpec(spec(), ctx);
    assert.ok(r.ok, errs(r).join('; '));
    assert.deepEqual(r.spec.job, { maxConcurrent: 0, schedule: '', timezone: '', concurrencyPolicy: 'CONCURRENCY_ALLOW', historyLimit: 3, startingDeadlineMs: 0 });
    const c = validateServiceSpec(spec({}, { schedule: ' */5 * * * * ' }), ctx);
    assert.ok(c.ok);
    assert.equal(c.spec.job!.schedule, '*/5 * * * *');
    assert.equal(c.spec.job!.timezone, 'UTC');
    const g = validateServiceSpec(spec({ mode: 'GLOBAL_JOB', replicas: 0 }), ctx);
    assert.ok(g.ok);
    assert.equal(g.spec.replicas, 0);
  });

  it('refuses a job part on a service that is not a job', () => {
    refuses(spec({ mode: 'REPLICATED' }, { schedule: '* * * * *' }), /^spec\.job: only for modes replicated-job and global-job/);
  });

  it('bounds every field', () => {
    refuses(spec({}, { maxConcurrent: -1 }), /^spec\.job\.maxConcurrent: must be an integer from 0/);
    refuses(spec({}, { maxConcurrent: L.REPLICAS_MAX + 1 }), /^spec\.job\.maxConcurrent/);
    refuses(spec({ mode: 'GLOBAL_JOB', replicas: 0 }, { maxConcurrent: 2 }), /^spec\.job\.maxConcurrent: not allowed with mode global-job/);
    refuses(spec({ mode: 'GLOBAL_JOB', replicas: 2 }), /^spec\.replicas: not allowed with mode global-job/);
    refuses(spec({}, { historyLimit: L.JOB_HISTORY_MAX + 1 }), /^spec\.job\.historyLimit: must be an integer from 1 to 100/);
    refuses(spec({}, { schedule: '* * * * *', startingDeadlineMs: -5 }), /^spec\.job\.startingDeadlineMs/);
    refuses(spec({}, { schedule: '* * * * *', startingDeadlineMs: 2 ** 40 }), /^spec\.job\.startingDeadlineMs/);
    refuses(spec({}, { schedule: 'x'.repeat(300) }), /^spec\.job\.schedule: longer than 256/);
  });

  it('refuses a bad schedule naming the cron field, and a bad time zone', () => {
    refuses(spec({}, { schedule: '61 * * * *' }), /^spec\.job\.schedule: minute: 61 is out of range 0-59$/);
    refuses(spec({}, { schedule: '* * * * FUNDAY' }), /^spec\.job\.schedule: day of week: "FUNDAY"/);
    refuses(spec({}, { schedule: '* * *' }), /^spec\.job\.schedule: needs 5 fields/);
    refuses(spec({}, { schedule: '* * * * *', timezone: 'Nowhere/City' }), /^spec\.job\.timezone: time zone: "Nowhere\/City" is not an IANA time zone/);
  });

  it('schedule-only options need a schedule; jobs cannot autoscale', () => {
    refuses(spec({}, { timezone: 'Europe/Paris' }), /^spec\.job\.timezone: only with a schedule/);
    refuses(spec({}, { concurrencyPolicy: 'CONCURRENCY_FORBID' }), /^spec\.job\.concurrencyPolicy: only with a schedule/);
    refuses(
      spec({ autoscale: { enabled: true, minReplicas: 1, maxReplicas: 3, targetCpuPercent: 50, targetMemoryPercent: 0, scaleDownStabilizationMs: 0 }, resources: { limits: { nanoCpus: 1e9, memoryBytes: 0, pids: 0 }, reservations: null } }),
      /^spec\.autoscale: a job cannot autoscale/,
    );
  });

  it('refuses an unknown concurrency policy by name', () => {
    refuses(spec({}, { schedule: '* * * * *', concurrencyPolicy: 'SOMETIMES' as JobSpec['concurrencyPolicy'] }), /^spec\.job\.concurrencyPolicy/);
  });
});
