// Service spec validation: every error names the field
// ("spec.endpoint.ports[1].targetPort: must be 1..65535"), so the Control
// API answers INVALID_ARGUMENT with all of them at once and nothing is
// written. A published ingress port another service holds is a different
// kind of failure (the spec is fine, the cluster is not): `conflict: true`,
// which the API maps to FAILED_PRECONDITION.
//
// Hostile input: the whole spec's size is checked first, with work bounded by
// the limit (shape.ts), then every field's type, then the rules below, each
// string, list and map against its limit (limits.ts, docs/limits.md). Every
// check is linear in what it reads; the only regexes run on strings already
// bounded, and none of them backtracks over its input. The result is a fresh
// object: validating it again gives the same spec.
import type { Network, Node, ServiceSpec, Service, UpdateConfig } from '../../proto/mod';
import { canonicalCapability } from '../../proto/capabilities';
import { CLUSTER_PORTS } from '../../proto/defaults';
import { checkBindSource } from '../../common/bind-policy';
import { ConstraintError, parseConstraint } from '../scheduler/constraint';
import { withDefaults } from './defaults';
import { checkFileRefs } from './files';
import { validateJob } from './job';
import { checkContainerOptions, hostnameRefusal } from './container-options';
import { keyPath, quote, type FieldError } from './errors';
import * as L from './limits';
import { jsonSizeAtMost, readServiceSpec } from './shape';

export type { FieldError } from './errors';

export type ValidationResult = { ok: true; spec: ServiceSpec } | { ok: false; errors: FieldError[]; conflict?: true };

export interface ValidationContext {
  nodes: readonly Node[];
  services: readonly Service[];
  /** The service being updated (its own ports are not a conflict). */
  existingId?: string;
  /** When given, network names must exist ("default" always does). */
  networks?: readonly Network[];
  /** The cluster's bind mount allow list (Cluster.bindAllow); none given = no bind mount admitted. */
  bindAllow?: readonly string[];
  /** Paths of this manager's own state (its data dir, key file) refused as bind sources besides common/bind-policy.ts's list. */
  bindDenied?: readonly string[];
}

/**
 * A service or network name: what `<service>` resolves in the cluster's DNS.
 * A DNS label (RFC 1123) that may also hold '_' inside, as Docker's names do
 * (a stack scopes its objects as `app_web`, docs/stacks.md); Convoy's own DNS
 * server answers such names (RFC 2181 section 11 allows every octet in a label).
 */
export const NAME_RE = /^[a-z0-9]([a-z0-9_-]{0,61}[a-z0-9])?$/;
/** A hostname stays an RFC 1123 label: resolvers and programs refuse '_' in it. */
export const HOSTNAME_RE = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
/**
 * An alias a service answers to in the DNS (ServiceSpec.networkAliases): one
 * label, as a service name. Not a dotted name: the agent's DNS would answer
 * it instead of relaying, so an alias "github.com" would capture its
 * network's lookups of the real one.
 */
const ALIAS_RE = /^[a-z0-9]([a-z0-9_-]{0,61}[a-z0-9])?$/i;
/** Image references, as the distribution spec's grammar: [host[:port]/]path[:tag][@digest]. Only run on at most IMAGE_MAX_BYTES. */
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
const SIGNAL_RE = /^(SIG)?[A-Z0-9+-]+$|^\d+$/;
const LABEL_RE = /^(node|engine)\.labels\.[^.\s]/;

/** The limits as one object, for callers that had it; the named constants in limits.ts are the source. */
export const LIMITS = {
  replicas: L.REPLICAS_MAX,
  labels: L.LABELS_MAX,
  labelKey: L.LABEL_KEY_MAX_BYTES,
  labelValue: L.LABEL_VALUE_MAX_BYTES,
  specBytes: L.SPEC_MAX_BYTES,
  minMemoryLimit: L.MEMORY_LIMIT_MIN_BYTES,
  autoscaleTarget: L.AUTOSCALE_TARGET,
} as const;

const HEALTH_KINDS = ['CMD', 'CMD-SHELL', 'NONE'];

const bytes = (s: string) => Buffer.byteLength(s, 'utf8');
const sizeText = (b: number) => (b >= 1024 && b % 1024 === 0 ? `${b / 1024} KiB` : `${b} bytes`);

/** Checks a string's length in bytes and the NUL byte the kernel would cut it at; true when it may be checked further. */
export function boundedString(field: string, v: string, max: number, errs: FieldError[], opts: { nul?: boolean } = {}): boolean {
  // Cheap first: a string of more than `max` UTF-16 units is more than `max` bytes.
  if (v.length > max || bytes(v) > max) {
    errs.push({ field, message: `longer than ${max} bytes` });
    return false;
  }
  if (opts.nul !== false && v.includes('\0')) {
    errs.push({ field, message: 'must not contain a NUL byte' });
    return false;
  }
  return true;
}

/** A list's length; true when its entries may be checked (a list over its limit is not read further). */
export function boundedList(field: string, v: readonly unknown[], max: number, errs: FieldError[]): boolean {
  if (v.length <= max) return true;
  errs.push({ field, message: `at most ${max} entries (got ${v.length})` });
  return false;
}

/** Labels of a service, a container, a node or a network. */
export function checkLabels(field: string, m: Record<string, string>, errs: FieldError[]): void {
  const keys = Object.keys(m);
  if (keys.length > L.LABELS_MAX) {
    errs.push({ field, message: `at most ${L.LABELS_MAX} labels (got ${keys.length})` });
    return;
  }
  for (const k of keys) {
    const f = keyPath(field, k);
    if (!k || k.length > L.LABEL_KEY_MAX_BYTES || bytes(k) > L.LABEL_KEY_MAX_BYTES) errs.push({ field: f, message: `key must be 1..${L.LABEL_KEY_MAX_BYTES} bytes` });
    // Code that copies labels by assignment would set the object's prototype instead.
    else if (k === '__proto__') errs.push({ field: f, message: 'key "__proto__" is reserved' });
    if (m[k].length > L.LABEL_VALUE_MAX_BYTES || bytes(m[k]) > L.LABEL_VALUE_MAX_BYTES) errs.push({ field: f, message: `value longer than ${L.LABEL_VALUE_MAX_BYTES} bytes` });
  }
}

/** An integer in [min, max]: counts, ports, byte sizes (int64 and uint32 fields). */
function integerIn(field: string, v: number, min: number, max: number, errs: FieldError[], what = ''): boolean {
  if (Number.isInteger(v) && v >= min && v <= max) return true;
  errs.push({ field, message: `must be an integer${what} from ${min} to ${max} (got ${String(v)})` });
  return false;
}

const duration = (field: string, v: number, errs: FieldError[]) => integerIn(field, v, 0, L.DURATION_MAX_MS, errs, ' number of milliseconds');
const uint32 = (field: string, v: number, errs: FieldError[]) => integerIn(field, v, 0, L.UINT32_MAX, errs);
const nonNegativeInt = (field: string, v: number, errs: FieldError[]) => integerIn(field, v, 0, Number.MAX_SAFE_INTEGER, errs);

function updateConfig(field: string, u: UpdateConfig | null | undefined, errs: FieldError[]): void {
  if (!u) return;
  uint32(`${field}.parallelism`, u.parallelism, errs);
  duration(`${field}.delayMs`, u.delayMs, errs);
  duration(`${field}.monitorMs`, u.monitorMs, errs);
  const r = u.maxFailureRatio;
  if (!Number.isFinite(r) || r < 0 || r > 1) errs.push({ field: `${field}.maxFailureRatio`, message: `must be between 0 and 1 (got ${String(r)})` });
}

/** An argv-like list: command, args, healthcheck.test. */
function argv(field: string, v: readonly string[], errs: FieldError[]): void {
  if (boundedList(field, v, L.ARGV_MAX, errs)) v.forEach((a, i) => boundedString(`${field}[${i}]`, a, L.ARG_MAX_BYTES, errs));
}

const fmtBytes = (b: number) => (b >= 1024 ** 3 ? `${(b / 1024 ** 3).toFixed(1)} GiB` : `${Math.round(b / 1024 ** 2)} MiB`);

/** Checks a service spec and fills the defaults (manager/spec/defaults.ts). */
export function validateServiceSpec(input: ServiceSpec, ctx: ValidationContext): ValidationResult {
  if (input === null || input === undefined) return { ok: false, errors: [{ field: 'spec', message: 'missing' }] };
  // Size first, with bounded work: nothing below reads more than this.
  if (jsonSizeAtMost(input, L.SPEC_MAX_BYTES) > L.SPEC_MAX_BYTES)
    return { ok: false, errors: [{ field: 'spec', message: `larger than ${sizeText(L.SPEC_MAX_BYTES)} as JSON (large data belongs in a mounted file, not in the spec)` }] };
  const read = readServiceSpec(input);
  if (read.errors.length) return { ok: false, errors: read.errors };
  const errs: FieldError[] = [];
  const spec = withDefaults(read.spec);
  // Again with the defaults, as it will be stored: what is accepted once is accepted when validated again.
  if (jsonSizeAtMost(spec, L.SPEC_MAX_BYTES) > L.SPEC_MAX_BYTES)
    return { ok: false, errors: [{ field: 'spec', message: `larger than ${sizeText(L.SPEC_MAX_BYTES)} as JSON once its defaults are filled` }] };
  const c = spec.container!;

  if (!spec.name) errs.push({ field: 'spec.name', message: 'must not be empty' });
  else if (!NAME_RE.test(spec.name)) errs.push({ field: 'spec.name', message: `${quote(spec.name)} is not a valid DNS label (lowercase letters, digits, '-' and '_' inside, at most ${L.NAME_MAX_CHARS} characters)` });

  if (!c.image) errs.push({ field: 'spec.container.image', message: 'must not be empty' });
  else if (boundedString('spec.container.image', c.image, L.IMAGE_MAX_BYTES, errs) && (!IMAGE_RE.test(c.image) || !hostPartOk(c.image)))
    errs.push({ field: 'spec.container.image', message: `${quote(c.image, 200)} is not a valid image reference` });

  // As given: the defaults set a global service's replicas to 0.
  const replicas = read.spec.replicas;
  if (!Number.isInteger(replicas) || replicas < 0 || replicas > L.REPLICAS_MAX)
    errs.push({ field: 'spec.replicas', message: `must be an integer from 0 to ${L.REPLICAS_MAX} (got ${String(replicas)})` });
  else if (spec.mode === 'GLOBAL' && replicas !== 0) errs.push({ field: 'spec.replicas', message: 'not allowed with mode global (one task per node)' });
  else if (spec.mode === 'GLOBAL_JOB' && replicas !== 0) errs.push({ field: 'spec.replicas', message: 'not allowed with mode global-job (one task per node)' });

  checkLabels('spec.labels', spec.labels, errs);
  checkLabels('spec.container.labels', c.labels, errs);
  argv('spec.container.command', c.command, errs);
  argv('spec.container.args', c.args, errs);
  if (boundedList('spec.container.env', c.env, L.ENV_MAX, errs))
    c.env.forEach((e, i) => {
      const f = `spec.container.env[${i}]`;
      if (!boundedString(f, e, L.ARG_MAX_BYTES, errs, { nul: false })) return;
      const eq = e.indexOf('=');
      if (eq <= 0 || !ENV_KEY_RE.test(e.slice(0, eq)) || e.includes('\0')) errs.push({ field: f, message: `${quote(e)} is not KEY=value` });
    });
  if (c.dir && boundedString('spec.container.dir', c.dir, L.PATH_MAX_BYTES, errs) && !c.dir.startsWith('/')) errs.push({ field: 'spec.container.dir', message: 'must be an absolute path' });
  boundedString('spec.container.user', c.user, L.USER_MAX_BYTES, errs);
  if (c.hostname && /[{}]/.test(c.hostname)) {
    // A template (docs/container-options.md), rendered per task by the agent.
    const why = hostnameRefusal(c.hostname);
    if (why) errs.push({ field: 'spec.container.hostname', message: why });
  } else if (c.hostname && !HOSTNAME_RE.test(c.hostname)) errs.push({ field: 'spec.container.hostname', message: `${quote(c.hostname)} is not a valid hostname` });
  duration('spec.container.stopGracePeriodMs', c.stopGracePeriodMs, errs);
  if (c.stopSignal && boundedString('spec.container.stopSignal', c.stopSignal, L.SIGNAL_MAX_BYTES, errs) && !SIGNAL_RE.test(c.stopSignal))
    errs.push({ field: 'spec.container.stopSignal', message: `${quote(c.stopSignal)} is not a signal name` });
  const targets = new Set<string>();
  if (boundedList('spec.container.mounts', c.mounts, L.MOUNTS_MAX, errs))
    c.mounts.forEach((m, i) => {
      const f = `spec.container.mounts[${i}]`;
      const type = m.type || 'BIND';
      if (!m.target || !m.target.startsWith('/')) errs.push({ field: `${f}.target`, message: 'must be an absolute path' });
      else if (boundedString(`${f}.target`, m.target, L.PATH_MAX_BYTES, errs)) {
        if (m.target === '/') errs.push({ field: `${f}.target`, message: 'cannot mount over /' });
        else if (targets.has(m.target)) errs.push({ field: `${f}.target`, message: `${quote(m.target)} is mounted twice` });
      }
      targets.add(m.target);
      if (type === 'BIND' && (!m.source || !m.source.startsWith('/'))) errs.push({ field: `${f}.source`, message: 'bind mounts need an absolute host path' });
      else if (type === 'BIND' && boundedString(`${f}.source`, m.source, L.PATH_MAX_BYTES, errs)) {
        const v = checkBindSource(m.source, ctx.bindAllow ?? [], ctx.bindDenied ?? []);
        if (!v.ok) errs.push({ field: `${f}.source`, message: v.reason });
        else m.source = v.path;
      }
      if (type === 'VOLUME' && m.source && boundedString(`${f}.source`, m.source, L.VOLUME_NAME_MAX_BYTES, errs) && !VOLUME_RE.test(m.source))
        errs.push({ field: `${f}.source`, message: `${quote(m.source)} is not a valid volume name` });
      if (type === 'TMPFS' && m.source) errs.push({ field: `${f}.source`, message: 'tmpfs mounts take no source' });
      nonNegativeInt(`${f}.tmpfsSizeBytes`, m.tmpfsSizeBytes, errs);
    });
  // Secrets and configs: targets clean, absolute, not over a mount or each other.
  c.secrets = checkFileRefs('spec.container.secrets', 'secret', c.secrets, targets, errs);
  c.configs = checkFileRefs('spec.container.configs', 'config', c.configs, targets, errs);
  for (const k of ['capAdd', 'capDrop'] as const) {
    const f = `spec.container.${k}`;
    if (boundedList(f, c[k], L.CAPABILITIES_MAX, errs))
      c[k].forEach((n, i) => {
        if (boundedString(`${f}[${i}]`, n, L.CAPABILITY_NAME_MAX_BYTES, errs) && !canonicalCapability(n))
          errs.push({ field: `${f}[${i}]`, message: `${quote(n)} is not a capability (Docker's names: NET_ADMIN, CAP_NET_ADMIN, ALL)` });
      });
  }
  checkContainerOptions(spec, c, errs);
  const hc = c.healthcheck;
  if (hc) {
    argv('spec.container.healthcheck.test', hc.test, errs);
    if (hc.test.length && hc.test.length <= L.ARGV_MAX) {
      if (!HEALTH_KINDS.includes(hc.test[0])) errs.push({ field: 'spec.container.healthcheck.test[0]', message: `must be one of ${HEALTH_KINDS.join(', ')}` });
      else if (hc.test[0] !== 'NONE' && hc.test.length < 2) errs.push({ field: 'spec.container.healthcheck.test', message: `${hc.test[0]} needs a command` });
    }
    for (const k of ['intervalMs', 'timeoutMs', 'startPeriodMs'] as const) duration(`spec.container.healthcheck.${k}`, hc[k], errs);
    uint32('spec.container.healthcheck.retries', hc.retries, errs);
  }

  // Resources.
  const res = spec.resources!;
  const resv = res.reservations!;
  const lim = res.limits!;
  for (const [k, v] of [
    ['reservations.nanoCpus', resv.nanoCpus],
    ['reservations.memoryBytes', resv.memoryBytes],
    ['reservations.pids', resv.pids],
    ['limits.nanoCpus', lim.nanoCpus],
    ['limits.memoryBytes', lim.memoryBytes],
    ['limits.pids', lim.pids],
  ] as const)
    nonNegativeInt(`spec.resources.${k}`, v, errs);
  if (lim.memoryBytes > 0 && lim.memoryBytes < L.MEMORY_LIMIT_MIN_BYTES) errs.push({ field: 'spec.resources.limits.memoryBytes', message: `must be at least ${fmtBytes(L.MEMORY_LIMIT_MIN_BYTES)}` });
  if (lim.memoryBytes > 0 && lim.memoryBytes < resv.memoryBytes) errs.push({ field: 'spec.resources.limits.memoryBytes', message: 'lower than the memory reservation' });
  if (lim.nanoCpus > 0 && lim.nanoCpus < resv.nanoCpus) errs.push({ field: 'spec.resources.limits.nanoCpus', message: 'lower than the CPU reservation' });
  if (ctx.nodes.length) {
    let maxMem = 0;
    let maxCpu = 0;
    for (const n of ctx.nodes) {
      maxMem = Math.max(maxMem, Number(n.description?.resources?.memoryBytes ?? 0));
      maxCpu = Math.max(maxCpu, Number(n.description?.resources?.nanoCpus ?? 0));
    }
    if (resv.memoryBytes > maxMem) errs.push({ field: 'spec.resources.reservations.memoryBytes', message: `no node has that much memory (largest: ${fmtBytes(maxMem)})` });
    if (resv.nanoCpus > maxCpu) errs.push({ field: 'spec.resources.reservations.nanoCpus', message: `no node has that many CPUs (largest: ${maxCpu / 1e9})` });
  }

  // Restart, update, rollback.
  const r = spec.restart!;
  duration('spec.restart.delayMs', r.delayMs, errs);
  duration('spec.restart.windowMs', r.windowMs, errs);
  uint32('spec.restart.maxAttempts', r.maxAttempts, errs);
  updateConfig('spec.update', spec.update, errs);
  updateConfig('spec.rollback', spec.rollback, errs);

  // Placement.
  const pl = spec.placement!;
  if (boundedList('spec.placement.constraints', pl.constraints, L.CONSTRAINTS_MAX, errs))
    pl.constraints.forEach((expr, i) => {
      const f = `spec.placement.constraints[${i}]`;
      if (!boundedString(f, expr, L.CONSTRAINT_MAX_BYTES, errs)) return;
      try {
        parseConstraint(expr);
      } catch (e) {
        errs.push({ field: f, message: e instanceof ConstraintError ? e.message : String(e) });
      }
    });
  if (boundedList('spec.placement.preferences', pl.preferences, L.PREFERENCES_MAX, errs))
    pl.preferences.forEach((p, i) => {
      const f = `spec.placement.preferences[${i}]`;
      if (!boundedString(f, p, L.PREFERENCE_MAX_BYTES, errs)) return;
      const key = p.replace(/^spread=/, '').trim();
      if (!LABEL_RE.test(key)) errs.push({ field: f, message: `${quote(p)} must name a label to spread over: node.labels.<name> or engine.labels.<name>` });
    });
  uint32('spec.placement.maxReplicasPerNode', pl.maxReplicasPerNode, errs);
  // A global service has one task per node: there is nothing to rank.
  if (pl.strategy === 'BINPACK' && spec.mode === 'GLOBAL') errs.push({ field: 'spec.placement.strategy', message: 'binpack ranks nodes for replicated services; a global service runs on every node' });
  if (boundedList('spec.placement.platforms', pl.platforms, L.PLATFORMS_MAX, errs))
    pl.platforms.forEach((p, i) => {
      const f = `spec.placement.platforms[${i}]`;
      if (!p.os && !p.arch) errs.push({ field: f, message: 'needs an os or an arch' });
      boundedString(`${f}.os`, p.os, L.PLATFORM_FIELD_MAX_BYTES, errs);
      boundedString(`${f}.arch`, p.arch, L.PLATFORM_FIELD_MAX_BYTES, errs);
    });

  // Networks: by name (a DNS label) or id.
  const seenNet = new Set<string>();
  if (boundedList('spec.networks', spec.networks, L.NETWORKS_MAX, errs))
    spec.networks.forEach((n, i) => {
      const f = `spec.networks[${i}]`;
      if (!n) errs.push({ field: f, message: 'must not be empty' });
      else if (boundedString(f, n, L.NETWORK_NAME_MAX_CHARS, errs)) {
        if (seenNet.has(n)) errs.push({ field: f, message: `${quote(n)} is attached twice` });
        else if (ctx.networks && n !== 'default' && !ctx.networks.some((x) => x.spec?.name === n || x.id === n)) errs.push({ field: f, message: `network ${quote(n)} not found` });
      }
      seenNet.add(n);
    });

  // DNS aliases, per network of the service.
  const aliasNets = new Set<string>();
  if (boundedList('spec.networkAliases', spec.networkAliases, L.NETWORKS_MAX, errs))
    spec.networkAliases.forEach((a, i) => {
      const f = `spec.networkAliases[${i}]`;
      const attached = spec.networks.length ? spec.networks.includes(a.network) : a.network === 'default';
      if (!attached) errs.push({ field: `${f}.network`, message: `${quote(a.network)} is not one of the service's networks` });
      else if (aliasNets.has(a.network)) errs.push({ field: `${f}.network`, message: `${quote(a.network)} is listed twice` });
      aliasNets.add(a.network);
      if (boundedList(`${f}.aliases`, a.aliases, L.ALIASES_MAX, errs))
        a.aliases.forEach((x, j) => {
          if (boundedString(`${f}.aliases[${j}]`, x, L.HOSTNAME_MAX_BYTES, errs) && !ALIAS_RE.test(x))
            errs.push({ field: `${f}.aliases[${j}]`, message: `${quote(x)} is not a DNS label (one name without dots: letters, digits, '-' and '_' inside)` });
        });
    });

  // Ports.
  const published = new Set<string>();
  const ports = spec.endpoint!.ports;
  if (boundedList('spec.endpoint.ports', ports, L.PORTS_MAX, errs))
    ports.forEach((p, i) => {
      const f = `spec.endpoint.ports[${i}]`;
      boundedString(`${f}.name`, p.name, L.PORT_NAME_MAX_BYTES, errs);
      if (!Number.isInteger(p.targetPort) || p.targetPort < 1 || p.targetPort > 65535) errs.push({ field: `${f}.targetPort`, message: `must be 1..65535 (got ${String(p.targetPort)})` });
      if (!Number.isInteger(p.publishedPort) || p.publishedPort < 0 || p.publishedPort > 65535) errs.push({ field: `${f}.publishedPort`, message: `must be 0..65535 (0 = allocate; got ${String(p.publishedPort)})` });
      if (p.protocol !== 'tcp' && p.protocol !== 'udp') errs.push({ field: `${f}.protocol`, message: `${quote(p.protocol)} is not tcp or udp` });
      const reserved = CLUSTER_PORTS.find((r) => r.port === p.publishedPort);
      if (reserved) errs.push({ field: `${f}.publishedPort`, message: `${p.publishedPort} is ${reserved.what}: the cluster's own ports cannot be published` });
      const k = `${p.protocol}/${p.publishedPort}`;
      if (p.publishedPort && published.has(k)) errs.push({ field: `${f}.publishedPort`, message: `${k} is published twice` });
      published.add(k);
    });
  if (spec.endpoint!.mode === 'DNSRR' && ports.some((p) => p.publishMode === 'INGRESS'))
    errs.push({ field: 'spec.endpoint.mode', message: 'dnsrr services cannot publish ingress ports (there is no VIP to balance them); use mode host' });

  // Autoscale.
  const a = spec.autoscale;
  if (a?.enabled) {
    if (spec.mode === 'GLOBAL') errs.push({ field: 'spec.autoscale', message: 'a global service cannot autoscale' });
    uint32('spec.autoscale.minReplicas', a.minReplicas, errs);
    if (a.maxReplicas < 1) errs.push({ field: 'spec.autoscale.maxReplicas', message: 'must be >= 1' });
    if (a.minReplicas > a.maxReplicas) errs.push({ field: 'spec.autoscale.minReplicas', message: `greater than maxReplicas (${a.minReplicas} > ${a.maxReplicas})` });
    if (a.maxReplicas > L.REPLICAS_MAX || !Number.isInteger(a.maxReplicas)) errs.push({ field: 'spec.autoscale.maxReplicas', message: `at most ${L.REPLICAS_MAX}` });
    const { min, max } = L.AUTOSCALE_TARGET;
    for (const k of ['targetCpuPercent', 'targetMemoryPercent'] as const)
      if (a[k] !== 0 && !(Number.isInteger(a[k]) && a[k] >= min && a[k] <= max)) errs.push({ field: `spec.autoscale.${k}`, message: `must be ${min}..${max} (0 = not used; got ${a[k]})` });
    if (!a.targetCpuPercent && !a.targetMemoryPercent) errs.push({ field: 'spec.autoscale', message: 'needs a CPU or a memory target' });
    if (a.targetCpuPercent && !resv.nanoCpus && !lim.nanoCpus) errs.push({ field: 'spec.autoscale.targetCpuPercent', message: 'needs a CPU reservation or limit to take a percentage of' });
    if (a.targetMemoryPercent && !resv.memoryBytes && !lim.memoryBytes) errs.push({ field: 'spec.autoscale.targetMemoryPercent', message: 'needs a memory reservation or limit to take a percentage of' });
    duration('spec.autoscale.scaleDownStabilizationMs', a.scaleDownStabilizationMs, errs);
  } else if (a) {
    // Kept while autoscaling is off (an update can turn it back on): each value is still a value the rules could take.
    uint32('spec.autoscale.minReplicas', a.minReplicas, errs);
    integerIn('spec.autoscale.maxReplicas', a.maxReplicas, 0, L.REPLICAS_MAX, errs);
    for (const k of ['targetCpuPercent', 'targetMemoryPercent'] as const) integerIn(`spec.autoscale.${k}`, a[k], 0, L.AUTOSCALE_TARGET.max, errs);
    duration('spec.autoscale.scaleDownStabilizationMs', a.scaleDownStabilizationMs, errs);
  }

  // Jobs (docs/jobs.md).
  validateJob(spec, errs);

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
  // A port a node's own processes listen on (sshd, a database): a published port would capture their traffic.
  spec.endpoint!.ports.forEach((p, i) => {
    if (!p.publishedPort) return;
    for (const n of ctx.nodes) {
      const d = n.description;
      const listening = p.protocol === 'udp' ? d?.listeningUdp : d?.listeningTcp;
      if (listening?.includes(p.publishedPort)) {
        conflicts.push({ field: `spec.endpoint.ports[${i}].publishedPort`, message: `port ${p.publishedPort}/${p.protocol} is in use on node "${d?.hostname || n.id}" (a process there listens on it)` });
        return;
      }
    }
  });
  if (conflicts.length) return { ok: false, errors: conflicts, conflict: true };
  return { ok: true, spec };
}
