// Reading a spec as the client sent it, before any rule about its content:
// the size of the whole (bounded work, whatever the input), then the type of
// every known field, into a fresh object that holds only those fields. The
// gRPC decoder already gives the right types; this is for everything else
// that reaches validation (tests, tools, a future JSON gateway) and for the
// fuzzer, so that the rules in validate.ts may take the types for granted.
import type { ContainerSpec, FileReference, Platform, Resources, ServiceSpec, UpdateConfig } from '../../proto/mod';
import { keyPath, quote, type FieldError } from './errors';
import { readContainerOptions } from './container-options';

/**
 * The UTF-8 size of `value` as JSON.stringify would write it, counted
 * without building the text; stops as soon as it exceeds `limit` (and then
 * returns some number above it), so the work is bounded by the limit even
 * for deep, wide or cyclic input. toJSON methods are not called.
 */
export function jsonSizeAtMost(value: unknown, limit: number): number {
  let size = 0;
  const stack: unknown[] = [value];
  while (stack.length) {
    if (size > limit) return size;
    const v = stack.pop();
    if (typeof v === 'string') size += stringSize(v, limit - size);
    else if (typeof v === 'number') size += Number.isFinite(v) ? String(v).length : 4;
    else if (typeof v === 'boolean') size += v ? 4 : 5;
    else if (typeof v === 'bigint') size += String(v).length;
    else if (v === null || typeof v !== 'object') size += 4; // null, and what an array writes as null
    else if (Array.isArray(v)) {
      // "[a,b]": brackets, commas, and at least one byte per element.
      size += 2 + Math.max(0, v.length - 1);
      if (v.length > limit - size) return limit + 1;
      for (let i = v.length - 1; i >= 0; i--) stack.push(v[i]);
    } else {
      size += 2;
      const keys = Object.keys(v);
      if (keys.length > limit - size) return limit + 1;
      let written = 0;
      for (const k of keys) {
        const x: unknown = (v as Record<string, unknown>)[k];
        if (x === undefined || typeof x === 'function' || typeof x === 'symbol') continue;
        size += stringSize(k, limit - size) + 1 + (written++ ? 1 : 0);
        if (size > limit) return size;
        stack.push(x);
      }
    }
  }
  return size;
}

/** A JSON string's UTF-8 size with quotes and escapes; past `budget` code units, only a bound. */
function stringSize(s: string, budget: number): number {
  if (s.length + 2 > budget) return s.length + 2;
  let n = 2;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20) n += c === 0x08 || c === 0x09 || c === 0x0a || c === 0x0c || c === 0x0d ? 2 : 6;
    else if (c === 0x22 || c === 0x5c) n += 2;
    else if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length && s.charCodeAt(i + 1) >= 0xdc00 && s.charCodeAt(i + 1) <= 0xdfff) {
      n += 4;
      i++;
    } else if (c >= 0xd800 && c <= 0xdfff) n += 6; // a lone surrogate is written as \uXXXX
    else n += 3;
  }
  return n;
}

const kind = (v: unknown) => (v === null ? 'null' : Array.isArray(v) ? 'a list' : typeof v === 'object' ? 'an object' : `a ${typeof v}`);

/** Field-by-field readers; each records a type error under its path and returns the field's proto default. */
export class Shape {
  readonly errors: FieldError[] = [];

  private wrong(field: string, want: string, v: unknown): void {
    this.errors.push({ field, message: `must be ${want} (got ${kind(v)})` });
  }

  string(field: string, v: unknown): string {
    if (v === undefined || v === null) return '';
    if (typeof v === 'string') return v;
    this.wrong(field, 'a string', v);
    return '';
  }

  /** Any number, NaN and infinities included: the rules say which range a field takes, with its own message. */
  number(field: string, v: unknown): number {
    if (v === undefined || v === null) return 0;
    if (typeof v === 'number') return v === 0 ? 0 : v; // -0 would not survive JSON (etcd) as itself
    this.wrong(field, 'a number', v);
    return 0;
  }

  bool(field: string, v: unknown): boolean {
    if (v === undefined || v === null) return false;
    if (typeof v === 'boolean') return v;
    this.wrong(field, 'true or false', v);
    return false;
  }

  /** The enum's name as the gRPC decoder gives it; absent is its first value, as in proto3. */
  enumOf<T extends string>(field: string, v: unknown, values: readonly T[]): T {
    if (v === undefined || v === null || v === '') return values[0];
    if (typeof v === 'string' && (values as readonly string[]).includes(v)) return v as T;
    this.errors.push({ field, message: `${typeof v === 'string' ? quote(v) : kind(v)} is not one of ${values.join(', ')}` });
    return values[0];
  }

  /** An object, or null when absent (a message field). */
  message(field: string, v: unknown): Record<string, unknown> | null {
    if (v === undefined || v === null) return null;
    if (typeof v === 'object' && !Array.isArray(v)) return v as Record<string, unknown>;
    this.wrong(field, 'an object', v);
    return null;
  }

  list(field: string, v: unknown): readonly unknown[] {
    if (v === undefined || v === null) return [];
    if (Array.isArray(v)) return v;
    this.wrong(field, 'a list', v);
    return [];
  }

  strings(field: string, v: unknown): string[] {
    const out: string[] = [];
    this.list(field, v).forEach((x, i) => {
      if (typeof x === 'string') out.push(x);
      else this.wrong(`${field}[${i}]`, 'a string', x);
    });
    return out;
  }

  /** A map<string, string>: a fresh object with the same own entries (a "__proto__" key stays a plain entry). */
  stringMap(field: string, v: unknown): Record<string, string> {
    const m = this.message(field, v);
    const entries: [string, string][] = [];
    for (const k of Object.keys(m ?? {})) {
      const x = m![k];
      if (typeof x === 'string') entries.push([k, x]);
      else this.wrong(keyPath(field, k), 'a string', x);
    }
    return Object.fromEntries(entries);
  }

  messages<T>(field: string, v: unknown, read: (f: string, m: Record<string, unknown>) => T): T[] {
    const out: T[] = [];
    this.list(field, v).forEach((x, i) => {
      const f = `${field}[${i}]`;
      const m = this.message(f, x);
      if (m) out.push(read(f, m));
      else if (x === null || x === undefined) this.errors.push({ field: f, message: 'must not be empty' });
    });
    return out;
  }
}

export const SERVICE_MODES = ['REPLICATED', 'GLOBAL', 'REPLICATED_JOB', 'GLOBAL_JOB'] as const;
export const CONCURRENCY_POLICIES = ['CONCURRENCY_ALLOW', 'CONCURRENCY_FORBID', 'CONCURRENCY_REPLACE'] as const;
export const RESTART_CONDITIONS = ['RESTART_ANY', 'RESTART_NONE', 'RESTART_ON_FAILURE'] as const;
export const FAILURE_ACTIONS = ['FAILURE_PAUSE', 'FAILURE_CONTINUE', 'FAILURE_ROLLBACK'] as const;
export const UPDATE_ORDERS = ['STOP_FIRST', 'START_FIRST'] as const;
export const PUBLISH_MODES = ['INGRESS', 'HOST'] as const;
export const MOUNT_TYPES = ['BIND', 'VOLUME', 'TMPFS'] as const;
export const PLACEMENT_STRATEGIES = ['SPREAD', 'BINPACK'] as const;
export const ENDPOINT_MODES = ['VIP', 'DNSRR'] as const;
export const NODE_ROLES = ['WORKER', 'MANAGER'] as const;
export const NODE_AVAILABILITIES = ['ACTIVE', 'PAUSE', 'DRAIN'] as const;

type Msg = Record<string, unknown>;

function resources(r: Shape, f: string, m: Msg | null): Resources | null {
  if (!m) return null;
  return { nanoCpus: r.number(`${f}.nanoCpus`, m.nanoCpus), memoryBytes: r.number(`${f}.memoryBytes`, m.memoryBytes), pids: r.number(`${f}.pids`, m.pids) };
}

function updateConfig(r: Shape, f: string, m: Msg | null): UpdateConfig | null {
  if (!m) return null;
  return {
    parallelism: r.number(`${f}.parallelism`, m.parallelism),
    delayMs: r.number(`${f}.delayMs`, m.delayMs),
    failureAction: r.enumOf(`${f}.failureAction`, m.failureAction, FAILURE_ACTIONS),
    monitorMs: r.number(`${f}.monitorMs`, m.monitorMs),
    maxFailureRatio: r.number(`${f}.maxFailureRatio`, m.maxFailureRatio),
    order: r.enumOf(`${f}.order`, m.order, UPDATE_ORDERS),
  };
}

function container(r: Shape, f: string, m: Msg | null): ContainerSpec | null {
  if (!m) return null;
  const hc = r.message(`${f}.healthcheck`, m.healthcheck);
  return {
    image: r.string(`${f}.image`, m.image),
    command: r.strings(`${f}.command`, m.command),
    args: r.strings(`${f}.args`, m.args),
    env: r.strings(`${f}.env`, m.env),
    dir: r.string(`${f}.dir`, m.dir),
    user: r.string(`${f}.user`, m.user),
    hostname: r.string(`${f}.hostname`, m.hostname),
    mounts: r.messages(`${f}.mounts`, m.mounts, (g, x) => ({
      type: r.enumOf(`${g}.type`, x.type, MOUNT_TYPES),
      source: r.string(`${g}.source`, x.source),
      target: r.string(`${g}.target`, x.target),
      readOnly: r.bool(`${g}.readOnly`, x.readOnly),
      tmpfsSizeBytes: r.number(`${g}.tmpfsSizeBytes`, x.tmpfsSizeBytes),
    })),
    stopSignal: r.string(`${f}.stopSignal`, m.stopSignal),
    stopGracePeriodMs: r.number(`${f}.stopGracePeriodMs`, m.stopGracePeriodMs),
    healthcheck: hc && {
      test: r.strings(`${f}.healthcheck.test`, hc.test),
      intervalMs: r.number(`${f}.healthcheck.intervalMs`, hc.intervalMs),
      timeoutMs: r.number(`${f}.healthcheck.timeoutMs`, hc.timeoutMs),
      retries: r.number(`${f}.healthcheck.retries`, hc.retries),
      startPeriodMs: r.number(`${f}.healthcheck.startPeriodMs`, hc.startPeriodMs),
    },
    labels: r.stringMap(`${f}.labels`, m.labels),
    capAdd: r.strings(`${f}.capAdd`, m.capAdd),
    capDrop: r.strings(`${f}.capDrop`, m.capDrop),
    readOnly: r.bool(`${f}.readOnly`, m.readOnly),
    hostAccess: r.bool(`${f}.hostAccess`, m.hostAccess),
    secrets: fileRefs(r, `${f}.secrets`, m.secrets),
    configs: fileRefs(r, `${f}.configs`, m.configs),
    withRegistryAuth: r.bool(`${f}.withRegistryAuth`, m.withRegistryAuth),
    // Filled in by the manager from withRegistryAuth; never taken from a client.
    registryAuth: null,
    ...readContainerOptions(r, f, m),
  };
}

function fileRefs(r: Shape, f: string, v: unknown): FileReference[] {
  return r.messages(f, v, (g, x) => ({
    id: r.string(`${g}.id`, x.id),
    name: r.string(`${g}.name`, x.name),
    target: r.string(`${g}.target`, x.target),
    uid: r.number(`${g}.uid`, x.uid),
    gid: r.number(`${g}.gid`, x.gid),
    mode: r.number(`${g}.mode`, x.mode),
  }));
}

function platforms(r: Shape, f: string, v: unknown): Platform[] {
  return r.messages(f, v, (g, x) => ({ os: r.string(`${g}.os`, x.os), arch: r.string(`${g}.arch`, x.arch) }));
}

/**
 * The known fields of a ServiceSpec with their types checked, as the gRPC
 * decoder would give them (absent scalars are '', 0, false or an enum's first
 * value; absent messages null). Unknown fields are dropped. Type errors are
 * in `errors`; the spec is then not to be used.
 */
export function readServiceSpec(input: unknown): { spec: ServiceSpec; errors: FieldError[] } {
  const r = new Shape();
  const s = r.message('spec', input) ?? {};
  const res = r.message('spec.resources', s.resources);
  const restart = r.message('spec.restart', s.restart);
  const pl = r.message('spec.placement', s.placement);
  const ep = r.message('spec.endpoint', s.endpoint);
  const as = r.message('spec.autoscale', s.autoscale);
  const job = r.message('spec.job', s.job);
  const spec: ServiceSpec = {
    name: r.string('spec.name', s.name),
    labels: r.stringMap('spec.labels', s.labels),
    container: container(r, 'spec.container', r.message('spec.container', s.container)),
    resources: res && {
      limits: resources(r, 'spec.resources.limits', r.message('spec.resources.limits', res.limits)),
      reservations: resources(r, 'spec.resources.reservations', r.message('spec.resources.reservations', res.reservations)),
    },
    restart: restart && {
      condition: r.enumOf('spec.restart.condition', restart.condition, RESTART_CONDITIONS),
      delayMs: r.number('spec.restart.delayMs', restart.delayMs),
      maxAttempts: r.number('spec.restart.maxAttempts', restart.maxAttempts),
      windowMs: r.number('spec.restart.windowMs', restart.windowMs),
    },
    placement: pl && {
      constraints: r.strings('spec.placement.constraints', pl.constraints),
      preferences: r.strings('spec.placement.preferences', pl.preferences),
      maxReplicasPerNode: r.number('spec.placement.maxReplicasPerNode', pl.maxReplicasPerNode),
      platforms: platforms(r, 'spec.placement.platforms', pl.platforms),
      strategy: r.enumOf('spec.placement.strategy', pl.strategy, PLACEMENT_STRATEGIES),
    },
    mode: r.enumOf('spec.mode', s.mode, SERVICE_MODES),
    replicas: r.number('spec.replicas', s.replicas),
    update: updateConfig(r, 'spec.update', r.message('spec.update', s.update)),
    rollback: updateConfig(r, 'spec.rollback', r.message('spec.rollback', s.rollback)),
    networks: r.strings('spec.networks', s.networks),
    endpoint: ep && {
      mode: r.enumOf('spec.endpoint.mode', ep.mode, ENDPOINT_MODES),
      ports: r.messages('spec.endpoint.ports', ep.ports, (g, x) => ({
        name: r.string(`${g}.name`, x.name),
        protocol: r.string(`${g}.protocol`, x.protocol),
        targetPort: r.number(`${g}.targetPort`, x.targetPort),
        publishedPort: r.number(`${g}.publishedPort`, x.publishedPort),
        publishMode: r.enumOf(`${g}.publishMode`, x.publishMode, PUBLISH_MODES),
      })),
    },
    autoscale: as && {
      enabled: r.bool('spec.autoscale.enabled', as.enabled),
      minReplicas: r.number('spec.autoscale.minReplicas', as.minReplicas),
      maxReplicas: r.number('spec.autoscale.maxReplicas', as.maxReplicas),
      targetCpuPercent: r.number('spec.autoscale.targetCpuPercent', as.targetCpuPercent),
      targetMemoryPercent: r.number('spec.autoscale.targetMemoryPercent', as.targetMemoryPercent),
      scaleDownStabilizationMs: r.number('spec.autoscale.scaleDownStabilizationMs', as.scaleDownStabilizationMs),
    },
    job: job && {
      maxConcurrent: r.number('spec.job.maxConcurrent', job.maxConcurrent),
      schedule: r.string('spec.job.schedule', job.schedule),
      timezone: r.string('spec.job.timezone', job.timezone),
      concurrencyPolicy: r.enumOf('spec.job.concurrencyPolicy', job.concurrencyPolicy, CONCURRENCY_POLICIES),
      historyLimit: r.number('spec.job.historyLimit', job.historyLimit),
      startingDeadlineMs: r.number('spec.job.startingDeadlineMs', job.startingDeadlineMs),
    },
    networkAliases: r.messages('spec.networkAliases', s.networkAliases, (g, x) => ({ network: r.string(`${g}.network`, x.network), aliases: r.strings(`${g}.aliases`, x.aliases) })),
  };
  return { spec, errors: r.errors };
}

/** A map<string,string> field on its own (node and network labels). */
export function readStringMap(field: string, v: unknown): { map: Record<string, string>; errors: FieldError[] } {
  const r = new Shape();
  return { map: r.stringMap(field, v), errors: r.errors };
}
