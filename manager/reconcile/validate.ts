// Service spec validation: every error names the field, so `convoy` can print
// "spec.replicas: must be >= 0" and nothing is written.
import type { Node, ServiceSpec } from '../../proto/mod';
import { parseConstraint } from './scheduler';

export interface FieldError {
  field: string;
  message: string;
}

const NAME_RE = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const IMAGE_RE = /^[a-z0-9]+(?:[._\-/:@][A-Za-z0-9._\-]+)*$/i;
const MAX_LABELS = 64;
/** Replicas are uint64 on the wire: a negative number arrives wrapped around, far above this. */
export const MAX_REPLICAS = 1_000_000;
const MAX_LABEL_KEY = 128;
const MAX_LABEL_VALUE = 4096;

function labels(field: string, m: Record<string, string> | undefined, errs: FieldError[]): void {
  const entries = Object.entries(m ?? {});
  if (entries.length > MAX_LABELS) errs.push({ field, message: `at most ${MAX_LABELS} labels` });
  for (const [k, v] of entries) {
    if (!k || k.length > MAX_LABEL_KEY) errs.push({ field: `${field}[${k.slice(0, 20)}]`, message: `key must be 1..${MAX_LABEL_KEY} characters` });
    if (v.length > MAX_LABEL_VALUE) errs.push({ field: `${field}[${k.slice(0, 40)}]`, message: `value longer than ${MAX_LABEL_VALUE} bytes` });
  }
}

/** Fills defaults (as Docker's) and checks the spec; `nodes` bound what reservations can ask for. */
export function validateServiceSpec(spec: ServiceSpec, ctx: { nodes: Node[] }): { ok: true; spec: ServiceSpec } | { ok: false; errors: FieldError[] } {
  const errs: FieldError[] = [];
  if (!spec.name) errs.push({ field: 'spec.name', message: 'must not be empty' });
  else if (!NAME_RE.test(spec.name)) errs.push({ field: 'spec.name', message: `"${spec.name}" is not a valid name (lowercase letters, digits and '-', at most 63)` });
  const image = spec.container?.image ?? '';
  if (!image) errs.push({ field: 'spec.container.image', message: 'must not be empty' });
  else if (!IMAGE_RE.test(image)) errs.push({ field: 'spec.container.image', message: `"${image}" is not a valid image reference` });
  const replicas = Number(spec.replicas);
  if (!Number.isInteger(replicas) || replicas < 0 || replicas > MAX_REPLICAS)
    errs.push({ field: 'spec.replicas', message: `must be an integer from 0 to ${MAX_REPLICAS} (got ${spec.replicas})` });
  if (spec.mode === 'GLOBAL' && replicas > 0) errs.push({ field: 'spec.replicas', message: 'not allowed with mode global' });
  (spec.placement?.constraints ?? []).forEach((c, i) => {
    try {
      parseConstraint(c);
    } catch (e) {
      errs.push({ field: `spec.placement.constraints[${i}]`, message: (e as Error).message });
    }
  });
  const seen = new Set<string>();
  (spec.endpoint?.ports ?? []).forEach((p, i) => {
    const f = `spec.endpoint.ports[${i}]`;
    if (!Number.isInteger(p.targetPort) || p.targetPort < 1 || p.targetPort > 65535) errs.push({ field: `${f}.targetPort`, message: 'must be 1..65535' });
    if (!Number.isInteger(p.publishedPort) || p.publishedPort < 0 || p.publishedPort > 65535) errs.push({ field: `${f}.publishedPort`, message: 'must be 0..65535' });
    const proto = p.protocol || 'tcp';
    if (proto !== 'tcp' && proto !== 'udp') errs.push({ field: `${f}.protocol`, message: `"${proto}" is not tcp or udp` });
    const k = `${proto}/${p.publishedPort}`;
    if (p.publishedPort && seen.has(k)) errs.push({ field: `${f}.publishedPort`, message: `${k} is published twice` });
    seen.add(k);
  });
  const res = spec.resources;
  const mem = Number(res?.reservations?.memoryBytes ?? 0);
  const cpu = Number(res?.reservations?.nanoCpus ?? 0);
  if (mem < 0) errs.push({ field: 'spec.resources.reservations.memoryBytes', message: 'must be >= 0' });
  if (cpu < 0) errs.push({ field: 'spec.resources.reservations.nanoCpus', message: 'must be >= 0' });
  if (ctx.nodes.length) {
    const maxMem = Math.max(...ctx.nodes.map((n) => Number(n.description?.resources?.memoryBytes ?? 0)));
    const maxCpu = Math.max(...ctx.nodes.map((n) => Number(n.description?.resources?.nanoCpus ?? 0)));
    if (mem > maxMem) errs.push({ field: 'spec.resources.reservations.memoryBytes', message: `${mem} bytes is more than any node has (largest: ${maxMem})` });
    if (cpu > maxCpu) errs.push({ field: 'spec.resources.reservations.nanoCpus', message: `${cpu / 1e9} CPUs is more than any node has (largest: ${maxCpu / 1e9})` });
  }
  const lim = res?.limits;
  if (lim && Number(lim.memoryBytes) > 0 && Number(lim.memoryBytes) < mem) errs.push({ field: 'spec.resources.limits.memoryBytes', message: 'lower than the reservation' });
  labels('spec.labels', spec.labels, errs);
  labels('spec.container.labels', spec.container?.labels, errs);
  (spec.container?.env ?? []).forEach((e, i) => {
    if (!/^[^=\s]+=/.test(e) && !/^[^=\s]+$/.test(e)) errs.push({ field: `spec.container.env[${i}]`, message: `"${e}" is not KEY=value` });
  });
  const a = spec.autoscale;
  if (a?.enabled) {
    if (a.minReplicas > a.maxReplicas) errs.push({ field: 'spec.autoscale.minReplicas', message: 'greater than maxReplicas' });
    if (!a.targetCpuPercent && !a.targetMemoryPercent) errs.push({ field: 'spec.autoscale', message: 'needs a cpu or memory target' });
  }
  if (JSON.stringify(spec).length > 256 * 1024) errs.push({ field: 'spec', message: 'larger than 256 KiB' });
  if (errs.length) return { ok: false, errors: errs };

  const filled: ServiceSpec = {
    ...spec,
    mode: spec.mode || 'REPLICATED',
    restart: spec.restart ?? { condition: 'RESTART_ANY', delayMs: 5000, maxAttempts: 0, windowMs: 0 },
    update: spec.update ?? { parallelism: 1, delayMs: 0, failureAction: 'FAILURE_PAUSE', monitorMs: 5000, maxFailureRatio: 0, order: 'STOP_FIRST' },
    endpoint: {
      mode: spec.endpoint?.mode ?? 'VIP',
      ports: (spec.endpoint?.ports ?? []).map((p) => ({ ...p, protocol: p.protocol || 'tcp' })),
    },
  };
  return { ok: true, spec: filled };
}
