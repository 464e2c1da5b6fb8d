// Validation of the job part of a service spec (docs/jobs.md): modes
// replicated-job and global-job, max concurrency, the schedule (5-field
// cron, IANA time zone), the concurrency policy, the history limit and the
// starting deadline. Every field bounded; a bad schedule is refused with the
// field and the cron field named.
import type { ServiceSpec } from '../../proto/mod';
import { CronError, parseCron } from '../../common/cron';
import { isJobMode } from './defaults';
import type { FieldError } from './errors';
import * as L from './limits';

export function validateJob(spec: ServiceSpec, errs: FieldError[]): void {
  const j = spec.job;
  if (!isJobMode(spec.mode)) {
    if (j) errs.push({ field: 'spec.job', message: `only for modes replicated-job and global-job (mode is ${String(spec.mode).toLowerCase()})` });
    return;
  }
  if (!j) return;
  if (spec.autoscale?.enabled) errs.push({ field: 'spec.autoscale', message: 'a job cannot autoscale' });
  if (!Number.isInteger(j.maxConcurrent) || j.maxConcurrent < 0 || j.maxConcurrent > L.REPLICAS_MAX)
    errs.push({ field: 'spec.job.maxConcurrent', message: `must be an integer from 0 to ${L.REPLICAS_MAX} (0 = replicas; got ${String(j.maxConcurrent)})` });
  else if (spec.mode === 'GLOBAL_JOB' && j.maxConcurrent !== 0) errs.push({ field: 'spec.job.maxConcurrent', message: 'not allowed with mode global-job (one task per node)' });
  if (!Number.isInteger(j.historyLimit) || j.historyLimit < 1 || j.historyLimit > L.JOB_HISTORY_MAX)
    errs.push({ field: 'spec.job.historyLimit', message: `must be an integer from 1 to ${L.JOB_HISTORY_MAX} (got ${String(j.historyLimit)})` });
  if (!Number.isInteger(j.startingDeadlineMs) || j.startingDeadlineMs < 0 || j.startingDeadlineMs > L.DURATION_MAX_MS)
    errs.push({ field: 'spec.job.startingDeadlineMs', message: `must be a whole number of milliseconds from 0 to ${L.DURATION_MAX_MS} (0 = none)` });
  if (!j.schedule) {
    if (j.timezone) errs.push({ field: 'spec.job.timezone', message: 'only with a schedule' });
    if (j.concurrencyPolicy !== 'CONCURRENCY_ALLOW') errs.push({ field: 'spec.job.concurrencyPolicy', message: 'only with a schedule' });
    if (j.startingDeadlineMs) errs.push({ field: 'spec.job.startingDeadlineMs', message: 'only with a schedule' });
    return;
  }
  try {
    parseCron(j.schedule, j.timezone || 'UTC');
  } catch (e) {
    if (!(e instanceof CronError)) throw e;
    const field = e.message.startsWith('time zone:') ? 'spec.job.timezone' : 'spec.job.schedule';
    errs.push({ field, message: e.message });
  }
}
