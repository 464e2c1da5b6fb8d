// convoy service inspect SERVICE...: JSON (as docker) or --pretty.
import { Command } from 'commander';
import type { Service } from '../../proto/mod';
import { withApi, type CliIO, type ControlResponse } from '../client';
import { formatBytes, formatCpus, formatDuration, formatLabels, formatPort, json, keyValues, modeName, parseFormat, titleCase } from '../format';

type Entry = ControlResponse<'getService'>;

export function prettyService(e: Entry): string {
  const s = e.service as Service;
  const spec = s.spec;
  const c = spec?.container;
  const pairs: [string, string][] = [
    ['ID', s.id],
    ['Name', spec?.name ?? ''],
    ['Mode', modeName(s)],
  ];
  if (Object.keys(spec?.labels ?? {}).length) pairs.splice(2, 0, ['Labels', formatLabels(spec?.labels)]);
  if (spec?.mode !== 'GLOBAL' && spec?.mode !== 'GLOBAL_JOB') pairs.push(['Replicas', `${e.counts?.running ?? 0} running / ${spec?.replicas ?? 0} desired`]);
  // Jobs (docs/jobs.md): the schedule, and where the current run is.
  const job = spec?.job;
  if (job && (spec?.mode === 'REPLICATED_JOB' || spec?.mode === 'GLOBAL_JOB')) {
    if (spec.mode === 'REPLICATED_JOB') pairs.push(['MaxConcurrent', job.maxConcurrent ? String(job.maxConcurrent) : `${spec.replicas} (all)`]);
    if (job.schedule)
      pairs.push(['Schedule', `${job.schedule} (${job.timezone || 'UTC'}), concurrency ${job.concurrencyPolicy.replace(/^CONCURRENCY_/, '').toLowerCase()}, history ${job.historyLimit}${job.startingDeadlineMs ? `, deadline ${formatDuration(job.startingDeadlineMs)}` : ''}`]);
    if (s.jobStatus) pairs.push(['Job', `run ${s.jobStatus.iteration}: ${s.jobStatus.message}`]);
  }
  if (s.updateStatus && s.updateStatus.state !== 'UPDATE_NONE')
    pairs.push(['UpdateStatus', `${titleCase(s.updateStatus.state)}${s.updateStatus.message ? ` (${s.updateStatus.message})` : ''}`]);
  pairs.push(['Image', c?.image ?? '']);
  if (c?.command?.length) pairs.push(['Entrypoint', c.command.join(' ')]);
  if (c?.args?.length) pairs.push(['Args', c.args.join(' ')]);
  if (c?.env?.length) pairs.push(['Env', c.env.join(', ')]);
  if (c?.dir) pairs.push(['Workdir', c.dir]);
  if (c?.user) pairs.push(['User', c.user]);
  for (const m of c?.mounts ?? []) pairs.push(['Mount', `${m.type.toLowerCase()} ${m.source || '-'} -> ${m.target}${m.readOnly ? ' (ro)' : ''}`]);
  if (c?.healthcheck?.test?.length) pairs.push(['Healthcheck', c.healthcheck.test.join(' ')]);
  const res = spec?.resources;
  if (res?.reservations?.nanoCpus || res?.reservations?.memoryBytes)
    pairs.push(['Reservations', `cpu ${formatCpus(res.reservations.nanoCpus)}, memory ${formatBytes(res.reservations.memoryBytes)}`]);
  if (res?.limits?.nanoCpus || res?.limits?.memoryBytes || res?.limits?.pids)
    pairs.push(['Limits', `cpu ${formatCpus(res.limits.nanoCpus)}, memory ${formatBytes(res.limits.memoryBytes)}, pids ${res.limits.pids}`]);
  if (spec?.restart)
    pairs.push([
      'RestartPolicy',
      `${titleCase(spec.restart.condition.replace(/^RESTART_/, ''))}, delay ${formatDuration(spec.restart.delayMs)}, max attempts ${spec.restart.maxAttempts || 'unlimited'}`,
    ]);
  if (spec?.placement?.constraints?.length) pairs.push(['Constraints', spec.placement.constraints.join(', ')]);
  if (spec?.placement?.preferences?.length) pairs.push(['Preferences', spec.placement.preferences.map((p) => `spread=${p}`).join(', ')]);
  if (spec?.placement?.strategy === 'BINPACK') pairs.push(['Placement strategy', 'binpack']);
  for (const k of ['update', 'rollback'] as const) {
    const u = spec?.[k];
    if (u)
      pairs.push([
        k === 'update' ? 'UpdateConfig' : 'RollbackConfig',
        `parallelism ${u.parallelism}, delay ${formatDuration(u.delayMs)}, on failure ${titleCase(u.failureAction.replace(/^FAILURE_/, ''))}, monitor ${formatDuration(u.monitorMs)}, max failure ratio ${u.maxFailureRatio}, order ${u.order.toLowerCase().replace('_', '-')}`,
      ]);
  }
  if (spec?.networks?.length) pairs.push(['Networks', spec.networks.join(', ')]);
  pairs.push(['EndpointMode', (spec?.endpoint?.mode ?? 'VIP').toLowerCase()]);
  for (const v of s.endpoint?.virtualIps ?? []) pairs.push(['VirtualIP', v.addr]);
  const ports = s.endpoint?.ports?.length ? s.endpoint.ports : spec?.endpoint?.ports ?? [];
  for (const p of ports) pairs.push(['Port', formatPort(p)]);
  const a = spec?.autoscale;
  if (a?.enabled) pairs.push(['Autoscale', `${a.minReplicas}-${a.maxReplicas}, cpu ${a.targetCpuPercent || '-'}%, memory ${a.targetMemoryPercent || '-'}%, scale-down delay ${a.scaleDownStabilizationMs ? formatDuration(Number(a.scaleDownStabilizationMs)) : '5m (default)'}`]);
  return keyValues(pairs);
}

export function serviceInspectCommand(io: CliIO): Command {
  return new Command('inspect')
    .description('Display detailed information on one or more services (JSON, or --pretty)')
    .argument('<service...>', 'service name, id or id prefix')
    .option('--pretty', 'human-readable instead of JSON')
    .option('--format <format>', 'json (default) or table (same as --pretty)')
    .action(async (services: string[], opts: { pretty?: boolean; format?: string }, c: Command) =>
      withApi(io, c, async (api) => {
        const pretty = opts.pretty || (opts.format !== undefined && parseFormat(opts.format) === 'table');
        const found: Entry[] = [];
        for (const s of services) found.push(await api.getService({ service: s }));
        if (pretty) io.out(found.map(prettyService).join('\n'));
        else io.out(json(found.map((e) => ({ ...e.service, counts: e.counts }))));
      }),
    );
}
