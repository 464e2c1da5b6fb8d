// Control API: services. Create validates the whole spec against the
// cluster (nodes, services, networks); update, scale and rollback are
// read-modify-writes through store.update (a caller that pinned a version
// gets ABORTED when the service moved on; one that did not is retried).
import * as grpc from '@grpc/grpc-js';
import type { ControlHandlers, Service } from '../../proto/mod';
import { auditTarget, callerOf } from '../auth/authorize';
import { privilegeRefusal } from '../spec/container-options';
import { ApiError } from '../api';
import { newId } from '../ids';
import { validateServiceSpec } from '../spec/validate';
import { isJobMode } from '../spec/defaults';
import type { StateCache } from '../state/cache';
import { ConflictError, UPDATE_ATTEMPTS } from '../store/store';
import { findService, paged, retryConflicts, type Ctx } from './common';
import { resolveFileRefs } from './files';

type Counts = { running: number; desired: number; completed: number; failed: number };

/**
 * Running and desired tasks of each service, in one pass over the tasks.
 * Jobs (as Docker's ServiceStatus): desired = tasks of the current run that
 * are still to complete; completed and failed count the current run's tasks
 * that completed or failed for good.
 */
export function serviceCounts(cache: StateCache, services: Service[]): Map<string, Counts> {
  const want = new Map(services.map((s) => [s.id, s]));
  const running = new Map<string, number>();
  const live = new Map<string, number>();
  const completed = new Map<string, number>();
  const failed = new Map<string, number>();
  const inc = (m: Map<string, number>, id: string) => m.set(id, (m.get(id) ?? 0) + 1);
  for (const t of cache.tasks.values()) {
    const s = want.get(t.serviceId);
    if (!s) continue;
    if (isJobMode(s.spec?.mode)) {
      if (t.jobIteration !== (s.jobStatus?.iteration ?? 0)) continue;
      if (t.desiredState === 'COMPLETE') inc(t.status?.state === 'COMPLETE' ? completed : failed, t.serviceId);
    }
    if (t.desiredState !== 'RUNNING') continue;
    inc(live, t.serviceId);
    if (t.status?.state === 'RUNNING') inc(running, t.serviceId);
  }
  return new Map(
    services.map((s) => [
      s.id,
      {
        running: running.get(s.id) ?? 0,
        desired: s.spec?.mode === 'GLOBAL' || isJobMode(s.spec?.mode) ? (live.get(s.id) ?? 0) : Number(s.spec?.replicas ?? 0),
        completed: completed.get(s.id) ?? 0,
        failed: failed.get(s.id) ?? 0,
      },
    ]),
  );
}

type Handlers = Pick<ControlHandlers, 'CreateService' | 'GetService' | 'ListServices' | 'UpdateService' | 'ScaleService' | 'RollbackService' | 'RemoveService'>;

export function serviceHandlers(c: Ctx): Handlers {
  const { store, cache, reads, unary, log, observer } = c;

  const validated = (spec: Service['spec'], existingId?: string) => {
    if (!spec) throw new ApiError(grpc.status.INVALID_ARGUMENT, 'spec: missing');
    const v = validateServiceSpec(spec, { nodes: [...cache.nodes.values()], services: [...cache.services.values()], existingId, networks: [...cache.networks.values()], bindAllow: cache.cluster?.bindAllow ?? [], bindDenied: c.bindDenied ?? [] });
    if (!v.ok) throw new ApiError(v.conflict ? grpc.status.FAILED_PRECONDITION : grpc.status.INVALID_ARGUMENT, v.errors.map((e) => `${e.field}: ${e.message}`).join('; '));
    // Secrets and configs by name → id; one that does not exist is refused by name.
    return resolveFileRefs(cache, v.spec);
  };
  /**
   * --privileged and --device: only an admin identity, and only where the
   * cluster allows them (docs/container-options.md). A call outside the
   * authorize wrapper has no caller and is refused them.
   */
  const privileged = (spec: Service['spec'], call: object) => {
    const who = callerOf(call)?.identity;
    const r = privilegeRefusal(spec?.container, { role: who?.role, id: who?.id }, cache.cluster?.allowPrivileged ?? false);
    if (r) throw new ApiError(r.kind === 'role' ? grpc.status.PERMISSION_DENIED : grpc.status.FAILED_PRECONDITION, `${r.field}: ${r.message}`);
  };
  const serviceEvent = (action: 'created' | 'updated' | 'scaled' | 'removed' | 'rollback', s: Service, extra: { from?: number; to?: number; message?: string } = {}) =>
    observer.event({ type: 'service', action, time: Date.now(), source: c.source, serviceId: s.id, serviceName: s.spec?.name ?? '', ...extra });
  /** The service as written, once the cache has it (what the response shows). */
  const written = async (s: Service | undefined): Promise<Service> => {
    if (!s) throw new ApiError(grpc.status.NOT_FOUND, 'service not found');
    await reads.seen(s.meta?.version ?? 0);
    return cache.services.get(s.id) ?? s;
  };
  /** store.update of one service; the mutation sees the current one (NOT_FOUND once it is gone). */
  const update = (svc: Service, attempts: number, mutate: (cur: Service) => Service) =>
    store.update<Service>(
      'services',
      svc.id,
      (cur) => {
        if (!cur) throw new ApiError(grpc.status.NOT_FOUND, `service "${svc.spec?.name ?? svc.id}" not found`);
        return mutate(cur);
      },
      attempts,
    );

  return {
    CreateService: unary('CreateService', async (req: { spec: Service['spec'] }, _md, call) => {
      await reads.fresh();
      const spec = validated(req.spec);
      privileged(spec, call);
      const svc: Service = { id: newId(), meta: null, spec, previousSpec: null, specVersion: 1, updateStatus: null, endpoint: null, jobStatus: null };
      let rev: number;
      try {
        rev = await store.createService(svc);
      } catch (e) {
        if (e instanceof ConflictError) throw new ApiError(grpc.status.ALREADY_EXISTS, `spec.name: ${e.message}`);
        throw e;
      }
      log.info('service created', { 'service.id': svc.id, 'service.name': spec.name });
      serviceEvent('created', svc);
      const s = await written({ ...svc, meta: { version: rev, createdAt: 0, updatedAt: 0 } });
      return { service: s, counts: { ...serviceCounts(cache, [s]).get(s.id)!, running: 0 } };
    }),
    GetService: unary('GetService', async (req: { service: string }) => {
      await reads.fresh();
      const s = findService(cache, req.service);
      return { service: s, counts: serviceCounts(cache, [s]).get(s.id)! };
    }),
    ListServices: unary('ListServices', async (req: { name: string; pageSize: number; pageToken: string }) => {
      await reads.fresh();
      const all = [...cache.services.values()].filter((x) => !req.name || (x.spec?.name ?? '').startsWith(req.name));
      const page = paged(all, req, (s) => [s.spec?.name ?? '', s.id]);
      const counts = serviceCounts(cache, page.items);
      return { services: page.items.map((x) => ({ service: x, counts: counts.get(x.id)! })), nextPageToken: page.nextPageToken };
    }),
    UpdateService: unary('UpdateService', async (req: { service: string; version: number; spec: Service['spec']; force: boolean }, _md, call) => {
      await reads.fresh();
      const found = findService(cache, req.service);
      const pinned = !!req.version;
      if (pinned && req.version !== found.meta?.version) throw new ApiError(grpc.status.ABORTED, `service "${found.spec?.name}" changed since version ${req.version}; retry`);
      const spec = validated(req.spec, found.id);
      privileged(spec, call);
      const next = await update(found, pinned ? 1 : UPDATE_ATTEMPTS, (svc) => {
        if (pinned && req.version !== svc.meta?.version) throw new ApiError(grpc.status.ABORTED, `service "${svc.spec?.name}" changed since version ${req.version}; retry`);
        if (spec.name !== svc.spec?.name) throw new ApiError(grpc.status.INVALID_ARGUMENT, `spec.name: a service cannot be renamed ("${svc.spec?.name}" → "${spec.name}")`);
        if (spec.mode !== svc.spec?.mode) throw new ApiError(grpc.status.INVALID_ARGUMENT, `spec.mode: a service's mode cannot change (${svc.spec?.mode} → ${spec.mode})`);
        // Replicas and the autoscale policy change no task: no rolling update for them.
        const strip = (x: Service['spec']) => JSON.stringify({ ...x, replicas: 0, autoscale: null });
        const taskSpecChanged = strip(svc.spec) !== strip(spec) || req.force;
        // Jobs: a new spec version is a new run (unscheduled), no rolling update; --force on a
        // scheduled job asks for a run now (docs/jobs.md).
        const job = isJobMode(spec.mode);
        return {
          ...svc,
          spec,
          previousSpec: taskSpecChanged ? svc.spec : svc.previousSpec,
          specVersion: taskSpecChanged ? svc.specVersion + 1 : svc.specVersion,
          // The update supervisor starts the update when it sees outdated slots.
          updateStatus: taskSpecChanged && !job ? { state: 'UPDATING', startedAt: Date.now(), completedAt: 0, message: 'update in progress' } : svc.updateStatus,
          jobStatus: job && req.force && spec.job?.schedule && svc.jobStatus ? { ...svc.jobStatus, runRequested: true } : svc.jobStatus,
        };
      }).catch((e: unknown) => {
        if (pinned && e instanceof ConflictError) throw new ApiError(grpc.status.ABORTED, `service "${found.spec?.name}" changed since version ${req.version}; retry`);
        throw e;
      });
      const s = await written(next);
      serviceEvent('updated', s, { message: s.specVersion !== found.specVersion ? `spec version ${s.specVersion}` : 'no task change' });
      return { service: s, counts: null };
    }),
    ScaleService: unary('ScaleService', async (req: { service: string; replicas: number }) => {
      await reads.fresh();
      const found = findService(cache, req.service);
      const n = Number(req.replicas);
      let from = 0;
      const next = await update(found, UPDATE_ATTEMPTS, (svc) => {
        if (svc.spec?.mode === 'GLOBAL' || svc.spec?.mode === 'GLOBAL_JOB') throw new ApiError(grpc.status.FAILED_PRECONDITION, `service "${svc.spec.name}" is global: it cannot be scaled`);
        if (!Number.isInteger(n) || n < 0) throw new ApiError(grpc.status.INVALID_ARGUMENT, 'replicas: must be an integer >= 0');
        const a = svc.spec?.autoscale;
        if (a?.enabled && (n < a.minReplicas || n > a.maxReplicas)) {
          throw new ApiError(
            grpc.status.FAILED_PRECONDITION,
            `replicas: ${n} is outside the autoscale bounds ${a.minReplicas}..${a.maxReplicas} of "${svc.spec?.name}"; change them with \`convoy service autoscale\` or turn autoscaling off with --off`,
          );
        }
        from = Number(svc.spec?.replicas ?? 0);
        return { ...svc, spec: { ...svc.spec!, replicas: n } };
      });
      const s = await written(next);
      serviceEvent('scaled', s, { from, to: n, message: 'manual scale' });
      return { service: s, counts: null };
    }),
    RollbackService: unary('RollbackService', async (req: { service: string }, _md, call) => {
      await reads.fresh();
      const found = findService(cache, req.service);
      // Rolling back to a privileged spec is asking for it again.
      if (found.previousSpec) privileged(found.previousSpec, call);
      const next = await update(found, UPDATE_ATTEMPTS, (svc) => {
        if (!svc.previousSpec) throw new ApiError(grpc.status.FAILED_PRECONDITION, `service "${svc.spec?.name}" has no previous spec to roll back to`);
        return {
          ...svc,
          spec: { ...svc.previousSpec, replicas: svc.spec?.replicas ?? svc.previousSpec.replicas, autoscale: svc.spec?.autoscale ?? null },
          previousSpec: svc.spec,
          specVersion: svc.specVersion + 1,
          updateStatus: { state: 'ROLLBACK_STARTED', startedAt: Date.now(), completedAt: 0, message: 'manually requested rollback' },
        };
      });
      const s = await written(next);
      serviceEvent('rollback', s, { message: 'manually requested rollback' });
      return { service: s, counts: null };
    }),
    RemoveService: unary('RemoveService', async (req: { service: string }, _md, call) => {
      await reads.fresh();
      const found = findService(cache, req.service);
      auditTarget(call, { id: found.id, name: found.spec?.name });
      // Guarded by the version read; the leader writing the service meanwhile (update status) costs a retry, not an error.
      const svc = await retryConflicts(false, async () => {
        const cur = await store.get<Service>('services', found.id);
        if (!cur) throw new ApiError(grpc.status.NOT_FOUND, `service "${req.service}" not found`);
        reads.wrote(await store.removeService(cur));
        return cur;
      });
      log.info('service removed', { 'service.id': svc.id, 'service.name': svc.spec?.name ?? '' });
      serviceEvent('removed', svc);
      return {};
    }),
  };
}
