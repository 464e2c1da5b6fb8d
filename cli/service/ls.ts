// convoy service ls: ID, NAME, MODE, REPLICAS (running/desired), IMAGE, PORTS, AUTOSCALE.
import { Command } from 'commander';
import type { Service } from '../../proto/mod';
import { withApi, type CliIO, type ControlResponse } from '../client';
import { collect, parseLabels } from '../flags';
import { addOutputOptions, formatPorts, json, modeName, parseFormat, shortId, table, type OutputFlags } from '../format';
import { CliError } from '../client';

type ServiceEntry = ControlResponse<'listServices'>['services'][number];

/** "2-20 cpu 70%" for an enabled policy, "-" otherwise. */
export function autoscaleCell(svc: Service): string {
  const a = svc.spec?.autoscale;
  if (!a?.enabled) return '-';
  const targets = [a.targetCpuPercent ? `cpu ${a.targetCpuPercent}%` : '', a.targetMemoryPercent ? `mem ${a.targetMemoryPercent}%` : ''].filter(Boolean);
  return `${a.minReplicas}-${a.maxReplicas}${targets.length ? ' ' + targets.join(' ') : ''}`;
}

export function replicasCell(e: ServiceEntry): string {
  const running = e.counts?.running ?? 0;
  const desired = e.counts?.desired ?? (e.service?.spec?.replicas ?? 0);
  const max = e.service?.spec?.placement?.maxReplicasPerNode;
  // Jobs as Docker prints them: running/desired, then the current run's completions out of the total.
  const mode = e.service?.spec?.mode;
  if (mode === 'REPLICATED_JOB' || mode === 'GLOBAL_JOB') {
    const completed = e.counts?.completed ?? 0;
    const failed = e.counts?.failed ?? 0;
    const total = mode === 'REPLICATED_JOB' ? Number(e.service?.spec?.replicas ?? 0) : desired + completed + failed;
    return `${running}/${desired} (${completed}/${total} completed${failed ? `, ${failed} failed` : ''})`;
  }
  return `${running}/${desired}${max ? ` (max ${max} per node)` : ''}`;
}

export function renderServices(entries: ServiceEntry[], noTrunc = false): string {
  const rows = entries.map((e) => {
    const s = e.service as Service;
    const ports = s.endpoint?.ports?.length ? s.endpoint.ports : s.spec?.endpoint?.ports;
    return [shortId(s.id, noTrunc), s.spec?.name ?? '', modeName(s), replicasCell(e), s.spec?.container?.image ?? '', formatPorts(ports), autoscaleCell(s)];
  });
  return table(['ID', 'NAME', 'MODE', 'REPLICAS', 'IMAGE', 'PORTS', 'AUTOSCALE'], rows);
}

/** `--filter name=web`, `--filter label=team=a` → the request. */
export function serviceFilters(filters: string[]): { name: string; labels: Record<string, string> } {
  const req = { name: '', labels: {} as Record<string, string> };
  for (const f of filters) {
    const i = f.indexOf('=');
    const k = i < 0 ? f : f.slice(0, i);
    const v = i < 0 ? '' : f.slice(i + 1);
    if (k === 'name') req.name = v;
    else if (k === 'label') Object.assign(req.labels, parseLabels([v], '--filter label'));
    else throw new CliError(`--filter: "${f}": unknown filter (use name=PREFIX or label=KEY=VALUE)`);
  }
  return req;
}

export function serviceLsCommand(io: CliIO): Command {
  const cmd = new Command('ls').alias('list').description('List services');
  addOutputOptions(cmd).option('-f, --filter <filter>', 'name=PREFIX or label=KEY=VALUE (repeatable)', collect);
  return cmd.action(async (opts: OutputFlags & { filter?: string[] }, c: Command) =>
    withApi(io, c, async (api) => {
      const format = parseFormat(opts.format);
      const r = await api.listServices(serviceFilters(opts.filter ?? []));
      const entries = [...r.services].sort((a, b) => (a.service?.spec?.name ?? '').localeCompare(b.service?.spec?.name ?? ''));
      if (opts.quiet) io.out(entries.map((e) => `${shortId(e.service?.id ?? '', opts.trunc === false)}\n`).join(''));
      else if (format === 'json') io.out(json(entries));
      else io.out(renderServices(entries, opts.trunc === false));
    }),
  );
}
