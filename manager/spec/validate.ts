// Service spec validation: every error names the field
// ("spec.endpoint.ports[1].targetPort: must be 1..65535"), so the Control
// API answers INVALID_ARGUMENT with all of them at once and nothing is
// written. A published ingress port another service holds is a different
// kind of failure (the spec is fine, the cluster is not): `conflict: true`,
// which the API maps to FAILED_PRECONDITION.
import type { Network, Node, ServiceSpec, Service, UpdateConfig } from '../../proto/mod';
import { ConstraintError, parseConstraint } from '../scheduler/constraint';
import { withDefaults } from './defaults';

export interface FieldError {
  field: string;
  message: string;
}

export type ValidationResult = { ok: true; spec: ServiceSpec } | { ok: false; errors: FieldError[]; conflict?: true };

export interface ValidationContext {
  nodes: readonly Node[];
  services: readonly Service[];
  /** The service being updated (its own ports are not a conflict). */
  existingId?: string;
  /** When given, network names must exist ("default" always does). */
  networks?: readonly Network[];
}

/** A DNS label (RFC 1123): the name is what `<service>` resolves in the cluster's DNS. */
const NAME_RE = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
/** Image references, as the distribution spec's grammar: [host[:port]/]path[:tag][@digest]. */
const PATH_COMPONENT = '[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*';
const DOMAIN = '(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*(?::[0-9]+)?';
const IMAGE_RE = new RegExp(`^(?:${DOMAIN}/)?${PATH_COMPONENT}(?:/${PATH_COMPONENT})*(?::[\\w][\\w.-]{0,127})?(?:@[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-fA-F0-9]{32,})?$`);
/** As Docker: the first component is a registry host only with a '.' or ':' or as "localhost"; otherwise it is a lowercase path. */
function hostPartOk(image: string): boolean {
  const slash = image.indexOf('/');
  if (slash < 0) return true;
  const first = image.slice(0, slash);
  return /[.:]/.test(first) || first === 'localhost' || first === first.toLowerCase();
}
const ENV_KEY_RE = /^[^=\s\0]+$/;
const VOLUME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

/** Limits that keep a stored service (and every task copy of it) small. */
export const LIMITS = {
  replicas: 1_000_000,
  labels: 64,
  labelKey: 128,
  labelValue: 4096,
  /** JSON size of the whole spec; every task carries a copy of most of it. */
  specBytes: 128 * 1024,
  /** The kernel needs a few MiB to start anything; Docker refuses below 6 MiB. */
  minMemoryLimit: 4 * 1024 * 1024,
  autoscaleTarget: { min: 1, max: 1000 },
} as const;

const HEALTH_KINDS = ['CMD', 'CMD-SHELL', 'NONE'];

function labels(field: string, m: Record<string, string> | null | undefined, errs: FieldError[]): void {
  const entries = Object.entries(m ?? {});
  if (entries.length > LIMITS.labels) errs.push({ field, message: `at most ${LIMITS.labels} labels (got ${entries.length})` });
  for (const [k, v] of entries) {
    if (!k || k.length > LIMITS.labelKey) errs.push({ field: `${field}["${k.slice(0, 32)}"]`, message: `key must be 1..${LIMITS.labelKey} characters` });
    if (String(v).length > LIMITS.labelValue) errs.push({ field: `${field}["${k.slice(0, 32)}"]`, message: `value longer than ${LIMITS.labelValue} bytes` });
  }
}

function nonNegative(field: string, v: unknown, errs: FieldError[]): void {
  const n = Number(v ?? 0);
  if (!Number.isFinite(n) || n < 0) errs.push({ field, message: `must be >= 0 (got ${String(v)})` });
}

function updateConfig(field: string, u: UpdateConfig | null | undefined, errs: FieldError[]): void {
  if (!u) return;
  nonNegative(`${field}.delayMs`, u.delayMs, errs);
  nonNegative(`${field}.monitorMs`, u.monitorMs, errs);
  const r = Number(u.maxFailureRatio ?? 0);
  if (!Number.isFinite(r) || r < 0 || r > 1) errs.push({ field: `${field}.maxFailureRatio`, message: `must be between 0 and 1 (got ${String(u.maxFailureRatio)})` });
}

const fmtBytes = (b: number) => (b >= 1024 ** 3 ? `${(b / 1024 ** 3).toFixed(1)} GiB` : `${Math.round(b / 1024 ** 2)} MiB`);

/** Checks a service spec and fills the defaults (manager/spec/defaults.ts). */
export function validateServiceSpec(input: ServiceSpec, ctx: ValidationContext): ValidationResult {
  const errs: FieldError[] = [];
  if (!input) return { ok: false, errors: [{ field: 'spec', message: 'missing' }] };
  const size = JSON.stringify(input).length;
  if (size > LIMITS.specBytes) errs.push({ field: 'spec', message: `${size} bytes is larger than ${LIMITS.specBytes / 1024} KiB` });
  const spec = withDefaults(input);
  const c = spec.container!;

  if (!spec.name) errs.push({ field: 'spec.name', message: 'must not be empty' });
  else if (!NAME_RE.test(spec.name)) errs.push({ field: 'spec.name', message: `"${spec.name.slice(0, 80)}" is not a valid DNS label (lowercase letters, digits and '-', at most 63 characters)` });

  if (!c.image) errs.push({ field: 'spec.container.image', message: 'must not be empty' });
  else if (!IMAGE_RE.test(c.image) || !hostPartOk(c.image)) errs.push({ field: 'spec.container.image', message: `"${c.image.slice(0, 200)}" is not a valid image reference` });

  if (spec.mode !== 'REPLICATED' && spec.mode !== 'GLOBAL') errs.push({ field: 'spec.mode', message: `"${String(spec.mode)}" is not replicated or global` });
  const replicas = Number(input.replicas ?? 0);
  if (!Number.isInteger(replicas) || replicas < 0 || replicas > LIMITS.replicas)
    errs.push({ field: 'spec.replicas', message: `must be an integer from 0 to ${LIMITS.replicas} (got ${String(input.replicas)})` });
  else if (spec.mode === 'GLOBAL' && replicas !== 0) errs.push({ field: 'spec.replicas', message: 'not allowed with mode global (one task per node)' });

  labels('spec.labels', spec.labels, errs);
  labels('spec.container.labels', c.labels, errs);
  c.env.forEach((e, i) => {
    const eq = e.indexOf('=');
    if (eq <= 0 || !ENV_KEY_RE.test(e.slice(0, eq)) || e.includes('\0')) errs.push({ field: `spec.container.env[${i}]`, message: `"${e.slice(0, 80)}" is not KEY=value` });
  });
  if (c.dir && !c.dir.startsWith('/')) errs.push({ field: 'spec.container.dir', message: 'must be an absolute path' });
  if (c.hostname && !NAME_RE.test(c.hostname)) errs.push({ field: 'spec.container.hostname', message: `"${c.hostname.slice(0, 80)}" is not a valid hostname` });
  nonNegative('spec.container.stopGracePeriodMs', c.stopGracePeriodMs, errs);
  if (c.stopSignal && !/^(SIG)?[A-Z0-9+-]+$|^\d+$/.test(c.stopSignal)) errs.push({ field: 'spec.container.stopSignal', message: `"${c.stopSignal}" is not a signal name` });
  const targets = new Set<string>();
  c.mounts.forEach((m, i) => {
    const f = `spec.container.mounts[${i}]`;
    const type = m.type || 'BIND';
    if (!m.target || !m.target.startsWith('/')) errs.push({ field: `${f}.target`, message: 'must be an absolute path' });
    else if (m.target === '/') errs.push({ field: `${f}.target`, message: 'cannot mount over /' });
    else if (targets.has(m.target)) errs.push({ field: `${f}.target`, message: `${m.target} is mounted twice` });
    targets.add(m.target);
    if (type === 'BIND' && (!m.source || !m.source.startsWith('/'))) errs.push({ field: `${f}.source`, message: 'bind mounts need an absolute host path' });
    if (type === 'VOLUME' && m.source && !VOLUME_RE.test(m.source)) errs.push({ field: `${f}.source`, message: `"${m.source}" is not a valid volume name` });
    if (type === 'TMPFS' && m.source) errs.push({ field: `${f}.source`, message: 'tmpfs mounts take no source' });
    nonNegative(`${f}.tmpfsSizeBytes`, m.tmpfsSizeBytes, errs);
  });
  const hc = c.healthcheck;
  if (hc && hc.test?.length) {
    if (!HEALTH_KINDS.includes(hc.test[0])) errs.push({ field: 'spec.container.healthcheck.test[0]', message: `must be one of ${HEALTH_KINDS.join(', ')}` });
    else if (hc.test[0] !== 'NONE' && hc.test.length < 2) errs.push({ field: 'spec.container.healthcheck.test', message: `${hc.test[0]} needs a command` });
    for (const k of ['intervalMs', 'timeoutMs', 'startPeriodMs'] as const) nonNegative(`spec.container.healthcheck.${k}`, hc[k], errs);
  }

  // Resources.
  const res = spec.resources!;
  const resv = res.reservations!;
  const lim = res.limits!;
  for (const [k, v] of [
    ['reservations.nanoCpus', resv.nanoCpus],
    ['reservations.memoryBytes', resv.memoryBytes],
    ['limits.nanoCpus', lim.nanoCpus],
    ['limits.memoryBytes', lim.memoryBytes],
    ['limits.pids', lim.pids],
  ] as const)
    nonNegative(`spec.resources.${k}`, v, errs);
  if (lim.memoryBytes > 0 && lim.memoryBytes < LIMITS.minMemoryLimit) errs.push({ field: 'spec.resources.limits.memoryBytes', message: `must be at least ${fmtBytes(LIMITS.minMemoryLimit)}` });
  if (lim.memoryBytes > 0 && lim.memoryBytes < resv.memoryBytes) errs.push({ field: 'spec.resources.limits.memoryBytes', message: 'lower than the memory reservation' });
  if (lim.nanoCpus > 0 && lim.nanoCpus < resv.nanoCpus) errs.push({ field: 'spec.resources.limits.nanoCpus', message: 'lower than the CPU reservation' });
  if (ctx.nodes.length) {
    const maxMem = Math.max(...ctx.nodes.map((n) => Number(n.description?.resources?.memoryBytes ?? 0)));
    const maxCpu = Math.max(...ctx.nodes.map((n) => Number(n.description?.resources?.nanoCpus ?? 0)));
    if (resv.memoryBytes > maxMem) errs.push({ field: 'spec.resources.reservations.memoryBytes', message: `no node has that much memory (largest: ${fmtBytes(maxMem)})` });
    if (resv.nanoCpus > maxCpu) errs.push({ field: 'spec.resources.reservations.nanoCpus', message: `no node has that many CPUs (largest: ${maxCpu / 1e9})` });
  }

  // Restart, update, rollback.
  const r = spec.restart!;
  if (!['RESTART_ANY', 'RESTART_NONE', 'RESTART_ON_FAILURE'].includes(r.condition)) errs.push({ field: 'spec.restart.condition', message: `"${String(r.condition)}" is not any, none or on-failure` });
  nonNegative('spec.restart.delayMs', r.delayMs, errs);
  nonNegative('spec.restart.windowMs', r.windowMs, errs);
  updateConfig('spec.update', spec.update, errs);
  updateConfig('spec.rollback', spec.rollback, errs);

  // Placement.
  const pl = spec.placement!;
  pl.constraints.forEach((expr, i) => {
    try {
      parseConstraint(expr);
    } catch (e) {
      errs.push({ field: `spec.placement.constraints[${i}]`, message: e instanceof ConstraintError ? e.message : String(e) });
    }
  });
  pl.preferences.forEach((p, i) => {
    const key = p.replace(/^spread=/, '').trim();
    if (!/^(node|engine)\.labels\.[^.\s]/.test(key)) errs.push({ field: `spec.placement.preferences[${i}]`, message: `"${p}" must name a label to spread over: node.labels.<name> or engine.labels.<name>` });
  });
  pl.platforms.forEach((p, i) => {
    if (!p.os && !p.arch) errs.push({ field: `spec.placement.platforms[${i}]`, message: 'needs an os or an arch' });
  });

  // Networks.
  const seenNet = new Set<string>();
  spec.networks!.forEach((n, i) => {
    if (!n) errs.push({ field: `spec.networks[${i}]`, message: 'must not be empty' });
    else if (seenNet.has(n)) errs.push({ field: `spec.networks[${i}]`, message: `"${n}" is attached twice` });
    else if (ctx.networks && n !== 'default' && !ctx.networks.some((x) => x.spec?.name === n || x.id === n)) errs.push({ field: `spec.networks[${i}]`, message: `network "${n}" not found` });
    seenNet.add(n);
  });

  // Ports.
  const published = new Set<string>();
  spec.endpoint!.ports.forEach((p, i) => {
    const f = `spec.endpoint.ports[${i}]`;
    if (!Number.isInteger(p.targetPort) || p.targetPort < 1 || p.targetPort > 65535) errs.push({ field: `${f}.targetPort`, message: `must be 1..65535 (got ${String(p.targetPort)})` });
    if (!Number.isInteger(p.publishedPort) || p.publishedPort < 0 || p.publishedPort > 65535) errs.push({ field: `${f}.publishedPort`, message: `must be 0..65535 (0 = allocate; got ${String(p.publishedPort)})` });
    if (p.protocol !== 'tcp' && p.protocol !== 'udp') errs.push({ field: `${f}.protocol`, message: `"${p.protocol}" is not tcp or udp` });
    if (p.publishMode !== 'INGRESS' && p.publishMode !== 'HOST') errs.push({ field: `${f}.publishMode`, message: `"${String(p.publishMode)}" is not ingress or host` });
    const k = `${p.protocol}/${p.publishedPort}`;
    if (p.publishedPort && published.has(k)) errs.push({ field: `${f}.publishedPort`, message: `${k} is published twice` });
    published.add(k);
  });
  if (spec.endpoint!.mode !== 'VIP' && spec.endpoint!.mode !== 'DNSRR') errs.push({ field: 'spec.endpoint.mode', message: `"${String(spec.endpoint!.mode)}" is not vip or dnsrr` });
  if (spec.endpoint!.mode === 'DNSRR' && spec.endpoint!.ports.some((p) => p.publishMode === 'INGRESS'))
    errs.push({ field: 'spec.endpoint.mode', message: 'dnsrr services cannot publish ingress ports (there is no VIP to balance them); use mode host' });

  // Autoscale.
  const a = spec.autoscale;
  if (a?.enabled) {
    if (spec.mode === 'GLOBAL') errs.push({ field: 'spec.autoscale', message: 'a global service cannot autoscale' });
    if (a.maxReplicas < 1) errs.push({ field: 'spec.autoscale.maxReplicas', message: 'must be >= 1' });
    if (a.minReplicas > a.maxReplicas) errs.push({ field: 'spec.autoscale.minReplicas', message: `greater than maxReplicas (${a.minReplicas} > ${a.maxReplicas})` });
    if (a.maxReplicas > LIMITS.replicas) errs.push({ field: 'spec.autoscale.maxReplicas', message: `at most ${LIMITS.replicas}` });
    const { min, max } = LIMITS.autoscaleTarget;
    for (const k of ['targetCpuPercent', 'targetMemoryPercent'] as const)
      if (a[k] !== 0 && (a[k] < min || a[k] > max)) errs.push({ field: `spec.autoscale.${k}`, message: `must be ${min}..${max} (0 = not used; got ${a[k]})` });
    if (!a.targetCpuPercent && !a.targetMemoryPercent) errs.push({ field: 'spec.autoscale', message: 'needs a CPU or a memory target' });
    if (a.targetCpuPercent && !resv.nanoCpus && !lim.nanoCpus) errs.push({ field: 'spec.autoscale.targetCpuPercent', message: 'needs a CPU reservation or limit to take a percentage of' });
    if (a.targetMemoryPercent && !resv.memoryBytes && !lim.memoryBytes) errs.push({ field: 'spec.autoscale.targetMemoryPercent', message: 'needs a memory reservation or limit to take a percentage of' });
    nonNegative('spec.autoscale.scaleDownStabilizationMs', a.scaleDownStabilizationMs, errs);
  }

  if (errs.length) return { ok: false, errors: errs };

  // Cluster-wide: an ingress port belongs to one service.
  const conflicts: FieldError[] = [];
  spec.endpoint!.ports.forEach((p, i) => {
    if (p.publishMode !== 'INGRESS' || !p.publishedPort) return;
    for (const s of ctx.services) {
      if (s.id === ctx.existingId) continue;
      const theirs = [...(s.spec?.endpoint?.ports ?? []), ...(s.endpoint?.ports ?? [])];
      if (theirs.some((q) => q.publishMode !== 'HOST' && q.publishedPort === p.publishedPort && (q.protocol || 'tcp') === p.protocol)) {
        conflicts.push({ field: `spec.endpoint.ports[${i}].publishedPort`, message: `port ${p.publishedPort}/${p.protocol} is already published by service "${s.spec?.name ?? s.id}"` });
        return;
      }
    }
  });
  if (conflicts.length) return { ok: false, errors: conflicts, conflict: true };
  return { ok: true, spec };
}
