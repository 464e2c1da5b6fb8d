// Docker-style flags → Convoy's ServiceSpec. Commander hands every value over
// as the string the operator typed (repeatable flags as string[]); all the
// parsing happens here, in plain functions, so a bad value is refused with
// the flag's name ("--reserve-memory: "64X" is not a size (e.g. 512k, 64M,
// 1G)") and the whole mapping is unit-tested without a manager.
import * as fs from 'node:fs';
import { Option, type Command } from 'commander';
import type { FileReference, HealthConfig, Mount, PortConfig, ServiceSpec } from '../proto/mod';
import { canonicalCapability } from '../proto/capabilities';
import { emptyContainerSpec } from '../proto/container-options';
import { CliError } from './client';
import { DEFAULT_RESTART_POLICY as DEFAULT_RESTART, DEFAULT_UPDATE_CONFIG as DEFAULT_UPDATE, DEFAULT_STOP_GRACE_MS } from '../proto/defaults';

// ---- values ---------------------------------------------------------------

const SIZE_UNITS: Record<string, number> = { '': 1, b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };

/** "64M", "1g", "512k", "1.5G", "64MiB", "64mb", "1000" → bytes (binary units, as Docker's RAMInBytes). */
export function parseSize(s: string, flag = 'size'): number {
  const m = /^(\d+(?:\.\d+)?)\s*([bkmgt]?)(?:i?b)?$/i.exec(s.trim());
  if (!m) throw new CliError(`${flag}: "${s}" is not a size (e.g. 512k, 64M, 1G)`);
  return Math.round(Number(m[1]) * SIZE_UNITS[m[2].toLowerCase()]);
}

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Go durations: "5s", "1m30s", "500ms", "1.5h", "0" → milliseconds. */
export function parseDuration(s: string, flag = 'duration'): number {
  const t = s.trim();
  if (t === '0') return 0;
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h)/gy;
  let total = 0;
  let end = 0;
  for (let m = re.exec(t); m; m = re.exec(t)) {
    total += Number(m[1]) * DURATION_UNITS[m[2]];
    end = re.lastIndex;
  }
  if (!t || end !== t.length) throw new CliError(`${flag}: "${s}" is not a duration (e.g. 500ms, 5s, 1m30s)`);
  return Math.round(total);
}

/** "0.5" CPUs → nano-CPUs. */
export function parseCpus(s: string, flag = 'cpus'): number {
  const n = Number(s.trim());
  if (!s.trim() || !Number.isFinite(n) || n < 0) throw new CliError(`${flag}: "${s}" is not a number of CPUs (e.g. 0.5, 2)`);
  return Math.round(n * 1e9);
}

export function parseInteger(s: string, flag: string, min = 0): number {
  const n = Number(s.trim());
  if (!/^-?\d+$/.test(s.trim()) || !Number.isSafeInteger(n)) throw new CliError(`${flag}: "${s}" is not an integer`);
  if (n < min) throw new CliError(`${flag}: must be >= ${min}`);
  return n;
}

export function parseRatio(s: string, flag: string): number {
  const n = Number(s.trim());
  if (!s.trim() || !Number.isFinite(n) || n < 0 || n > 1) throw new CliError(`${flag}: "${s}" is not a fraction from 0 to 1`);
  return n;
}

function parseBool(s: string | undefined, flag: string): boolean {
  if (s === undefined || s === '' || /^(1|true|yes)$/i.test(s)) return true;
  if (/^(0|false|no)$/i.test(s)) return false;
  throw new CliError(`${flag}: "${s}" is not true or false`);
}

/** "a=1,b=2,flag" → [["a","1"],["b","2"],["flag",undefined]]. */
function csvPairs(s: string): [string, string | undefined][] {
  return s
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean)
    .map((p) => {
      const i = p.indexOf('=');
      return i < 0 ? [p.toLowerCase(), undefined] : [p.slice(0, i).trim().toLowerCase(), p.slice(i + 1).trim()];
    });
}

function portNumber(v: string | undefined, flag: string, s: string, what: string): number {
  const n = Number(v);
  if (v === undefined || !/^\d+$/.test(v) || n < 1 || n > 65535) throw new CliError(`${flag}: "${s}": ${what} must be a port number 1..65535`);
  return n;
}

function protocol(v: string | undefined, flag: string, s: string): string {
  const p = (v ?? 'tcp').toLowerCase();
  if (p !== 'tcp' && p !== 'udp') throw new CliError(`${flag}: "${s}": protocol must be tcp or udp`);
  return p;
}

/**
 * A published port. Short: "8080:80", "8080:80/udp", "80" (published port
 * allocated by the cluster). Long: "mode=host,target=80,published=8080,protocol=tcp".
 */
export function parsePort(s: string, flag = '--publish'): PortConfig {
  if (s.includes('=')) {
    let target: number | undefined;
    let published = 0;
    let proto = 'tcp';
    let mode: 'INGRESS' | 'HOST' = 'INGRESS';
    for (const [k, v] of csvPairs(s)) {
      switch (k) {
        case 'target':
          target = portNumber(v, flag, s, 'target');
          break;
        case 'published':
          published = portNumber(v, flag, s, 'published');
          break;
        case 'protocol':
          proto = protocol(v, flag, s);
          break;
        case 'mode': {
          const m = (v ?? '').toLowerCase();
          if (m !== 'ingress' && m !== 'host') throw new CliError(`${flag}: "${s}": mode must be ingress or host`);
          mode = m === 'host' ? 'HOST' : 'INGRESS';
          break;
        }
        default:
          throw new CliError(`${flag}: "${s}": unknown field "${k}" (use mode, target, published, protocol)`);
      }
    }
    if (target === undefined) throw new CliError(`${flag}: "${s}": target= is required`);
    return { name: '', protocol: proto, targetPort: target, publishedPort: published, publishMode: mode };
  }
  const m = /^(?:(\d+):)?(\d+)(?:\/(\w+))?$/.exec(s.trim());
  if (!m) throw new CliError(`${flag}: "${s}" is not a port mapping (e.g. 8080:80, 8080:80/udp, mode=host,target=80,published=8080)`);
  return {
    name: '',
    protocol: protocol(m[3], flag, s),
    targetPort: portNumber(m[2], flag, s, 'target'),
    publishedPort: m[1] === undefined ? 0 : portNumber(m[1], flag, s, 'published'),
    publishMode: 'INGRESS',
  };
}

/** `--publish-rm`: "80", "80/udp" or a full mapping; what counts is the target port and protocol. */
export function parsePortKey(s: string, flag = '--publish-rm'): { targetPort: number; protocol: string } {
  const p = parsePort(s, flag);
  return { targetPort: p.targetPort, protocol: p.protocol };
}

const MOUNT_TYPES = { bind: 'BIND', volume: 'VOLUME', tmpfs: 'TMPFS' } as const;

/** "type=bind,source=/srv,target=/data,readonly" (Docker's --mount; src/dst/destination/ro accepted). */
export function parseMount(s: string, flag = '--mount'): Mount {
  const m: Mount = { type: 'VOLUME', source: '', target: '', readOnly: false, tmpfsSizeBytes: 0 };
  for (const [k, v] of csvPairs(s)) {
    switch (k) {
      case 'type': {
        const t = MOUNT_TYPES[(v ?? '').toLowerCase() as keyof typeof MOUNT_TYPES];
        if (!t) throw new CliError(`${flag}: "${s}": type must be bind, volume or tmpfs`);
        m.type = t;
        break;
      }
      case 'source':
      case 'src':
        m.source = v ?? '';
        break;
      case 'target':
      case 'destination':
      case 'dst':
        m.target = v ?? '';
        break;
      case 'readonly':
      case 'ro':
        m.readOnly = parseBool(v, `${flag} ${k}`);
        break;
      case 'tmpfs-size':
        m.tmpfsSizeBytes = parseSize(v ?? '', `${flag} tmpfs-size`);
        break;
      default:
        throw new CliError(`${flag}: "${s}": unknown field "${k}" (use type, source, target, readonly, tmpfs-size)`);
    }
  }
  if (!m.target) throw new CliError(`${flag}: "${s}": target= is required`);
  if (!m.target.startsWith('/')) throw new CliError(`${flag}: "${s}": target must be an absolute path`);
  if (m.type === 'BIND' && !m.source.startsWith('/')) throw new CliError(`${flag}: "${s}": a bind mount needs an absolute source path`);
  if (m.type === 'TMPFS' && m.source) throw new CliError(`${flag}: "${s}": a tmpfs mount has no source`);
  if (m.type !== 'TMPFS' && m.tmpfsSizeBytes) throw new CliError(`${flag}: "${s}": tmpfs-size is only for type=tmpfs`);
  return m;
}

/** A uid, gid or mode value: Go's base-0 rule as Docker parses them ("0400" and "0o400" octal, "0x1ff" hex, else decimal). */
function parseUintBase0(v: string | undefined, flag: string, s: string, k: string): number {
  const t = (v ?? '').trim();
  let n = NaN;
  if (/^0[oO][0-7]+$/.test(t)) n = parseInt(t.slice(2), 8);
  else if (/^0[xX][0-9a-fA-F]+$/.test(t)) n = parseInt(t.slice(2), 16);
  else if (/^0[0-7]+$/.test(t)) n = parseInt(t, 8);
  else if (/^\d+$/.test(t)) n = Number(t);
  if (!Number.isSafeInteger(n) || n > 2 ** 32 - 1) throw new CliError(`${flag}: "${s}": ${k} must be a number (mode in octal: 0400)`);
  return n;
}

/**
 * Docker's --secret / --config: "NAME", or "source=NAME,target=PATH,uid=0,
 * gid=0,mode=0400" (src= and the bare name as the first field accepted).
 * An empty target means the manager's default (/run/secrets/NAME, /NAME).
 */
export function parseFileRef(s: string, flag: string): FileReference {
  const r: FileReference = { id: '', name: '', target: '', uid: 0, gid: 0, mode: 0 };
  if (!s.includes('=')) {
    r.name = s.trim();
  } else {
    for (const [k, v] of csvPairs(s)) {
      switch (k) {
        case 'source':
        case 'src':
          r.name = v ?? '';
          break;
        case 'target':
          r.target = v ?? '';
          break;
        case 'uid':
        case 'gid':
        case 'mode':
          r[k] = parseUintBase0(v, flag, s, k);
          break;
        default:
          throw new CliError(`${flag}: "${s}": unknown field "${k}" (use source, target, uid, gid, mode)`);
      }
    }
  }
  if (!r.name) throw new CliError(`${flag}: "${s}": source= (the name) is required`);
  if (r.mode > 0o777) throw new CliError(`${flag}: "${s}": mode must be permission bits (0000..0777)`);
  return r;
}

/** "KEY=value" list → map; a bare "KEY" means an empty value (as Docker's --label). */
export function parseLabels(list: string[], flag: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const s of list) {
    const i = s.indexOf('=');
    const k = (i < 0 ? s : s.slice(0, i)).trim();
    if (!k) throw new CliError(`${flag}: "${s}" is not KEY=VALUE`);
    out[k] = i < 0 ? '' : s.slice(i + 1);
  }
  return out;
}

/** Strict "KEY=VALUE" list → map (node labels, agent labels). */
export function parseKv(list: string[], flag: string): Record<string, string> {
  for (const s of list) if (s.indexOf('=') <= 0) throw new CliError(`${flag}: "${s}" is not KEY=VALUE`);
  return parseLabels(list, flag);
}

/** `-e KEY=value`; a bare `-e KEY` takes KEY's value from this shell (Docker does the same). */
export function parseEnv(s: string, env: NodeJS.ProcessEnv = process.env, flag = '--env'): string | undefined {
  const i = s.indexOf('=');
  if (i === 0 || !s.trim()) throw new CliError(`${flag}: "${s}" is not KEY=value`);
  if (i > 0) return s;
  const v = env[s];
  return v === undefined ? undefined : `${s}=${v}`;
}

/**
 * An env file: KEY=value lines, '#' comments and blank lines skipped, a bare
 * KEY taken from this shell. A bad line is refused as `<where>:<line>: ...`
 * (where: the file, or the flag), as Docker: a key holds no blank.
 */
export function parseEnvFile(text: string, env: NodeJS.ProcessEnv = process.env, flag = '--env-file'): string[] {
  const out: string[] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.replace(/^\s+/, '');
    if (!line || line.startsWith('#')) return;
    const at = `${flag}:${i + 1}`;
    const eq = line.indexOf('=');
    const key = eq < 0 ? line.trimEnd() : line.slice(0, eq);
    if (/\s/.test(key)) throw new CliError(`${at}: variable ${JSON.stringify(key.slice(0, 64))} contains blanks`);
    if (line.includes('\0')) throw new CliError(`${at}: a NUL byte`);
    const v = parseEnv(eq < 0 ? key : line, env, at);
    if (v !== undefined) out.push(v);
  });
  return out;
}

/** "spread=node.labels.zone" → "node.labels.zone" (the only strategy, as in Docker). */
/** --placement-strategy: spread (the default) | binpack (docs/scheduling.md). */
export function parsePlacementStrategy(s: string, flag = '--placement-strategy'): 'SPREAD' | 'BINPACK' {
  const v = s.trim().toLowerCase();
  if (v === 'spread') return 'SPREAD';
  if (v === 'binpack') return 'BINPACK';
  throw new CliError(`${flag}: "${s}" is not spread or binpack`);
}

export function parsePlacementPref(s: string, flag = '--placement-pref'): string {
  const m = /^spread=(.+)$/.exec(s.trim());
  if (!m) throw new CliError(`${flag}: "${s}" is not spread=<label> (e.g. spread=node.labels.zone)`);
  return m[1].trim();
}

/** Constraints are compared without blanks: "node.role==manager" removes "node.role == manager". */
function sameConstraint(a: string, b: string): boolean {
  return a.replace(/\s+/g, '') === b.replace(/\s+/g, '');
}

function choice<T extends string>(v: string, flag: string, map: Record<string, T>): T {
  const r = map[v.trim().toLowerCase()];
  if (!r) throw new CliError(`${flag}: "${v}" is not one of ${Object.keys(map).join(', ')}`);
  return r;
}

const RESTART_CONDITIONS = { 'none': 'RESTART_NONE', 'on-failure': 'RESTART_ON_FAILURE', 'any': 'RESTART_ANY' } as const;
const FAILURE_ACTIONS = { pause: 'FAILURE_PAUSE', continue: 'FAILURE_CONTINUE', rollback: 'FAILURE_ROLLBACK' } as const;
const UPDATE_ORDERS = { 'stop-first': 'STOP_FIRST', 'start-first': 'START_FIRST' } as const;
const ENDPOINT_MODES = { vip: 'VIP', dnsrr: 'DNSRR' } as const;
const SERVICE_MODES = { 'replicated': 'REPLICATED', 'global': 'GLOBAL', 'replicated-job': 'REPLICATED_JOB', 'global-job': 'GLOBAL_JOB' } as const;
const CONCURRENCY_POLICIES = { allow: 'CONCURRENCY_ALLOW', forbid: 'CONCURRENCY_FORBID', replace: 'CONCURRENCY_REPLACE' } as const;

// ---- defaults (Docker's) ---------------------------------------------------

export { DEFAULT_RESTART };
export { DEFAULT_UPDATE };
export { DEFAULT_STOP_GRACE_MS };

// ---- flags ---------------------------------------------------------------

/**
 * Flags shared by `service create` and `service update` (commander's
 * camelCase names; every value the raw string typed). Repeatable flags are
 * arrays.
 */
export interface ServiceFlags {
  replicas?: string;
  maxReplicas?: string;
  placementStrategy?: string;
  reserveCpu?: string;
  reserveMemory?: string;
  limitCpu?: string;
  limitMemory?: string;
  limitPids?: string;
  restartCondition?: string;
  restartDelay?: string;
  restartMaxAttempts?: string;
  restartWindow?: string;
  updateParallelism?: string;
  updateDelay?: string;
  updateOrder?: string;
  updateFailureAction?: string;
  updateMonitor?: string;
  updateMaxFailureRatio?: string;
  rollbackParallelism?: string;
  rollbackDelay?: string;
  rollbackOrder?: string;
  rollbackFailureAction?: string;
  rollbackMonitor?: string;
  rollbackMaxFailureRatio?: string;
  endpointMode?: string;
  healthCmd?: string;
  healthInterval?: string;
  healthRetries?: string;
  healthTimeout?: string;
  healthStartPeriod?: string;
  /** false when --no-healthcheck was given (commander's negatable flag). */
  healthcheck?: boolean;
  stopSignal?: string;
  stopGracePeriod?: string;
  hostname?: string;
  workdir?: string;
  user?: string;
  entrypoint?: string;
  /** --read-only (true), on update also --no-read-only (false). */
  readOnly?: boolean;
  /** --host-access (true), on update also --no-host-access (false). */
  hostAccess?: boolean;
  withRegistryAuth?: boolean;
  // Jobs (docs/jobs.md).
  maxConcurrent?: string;
  schedule?: string;
  scheduleTimezone?: string;
  concurrencyPolicy?: string;
  historyLimit?: string;
  scheduleDeadline?: string;
}

/** `service create`: the shared flags plus the ones only creation has. */
export interface CreateFlags extends ServiceFlags {
  name?: string;
  mode?: string;
  publish?: string[];
  env?: string[];
  envFile?: string[];
  label?: string[];
  containerLabel?: string[];
  constraint?: string[];
  placementPref?: string[];
  network?: string[];
  mount?: string[];
  capAdd?: string[];
  capDrop?: string[];
  secret?: string[];
  config?: string[];
}

/** `service update`: the shared flags plus -add/-rm lists and the replacements. */
export interface UpdateFlags extends ServiceFlags {
  image?: string;
  /** Replaces the command's arguments (Docker's --args), split like a shell would, simply. */
  args?: string;
  envAdd?: string[];
  envRm?: string[];
  labelAdd?: string[];
  labelRm?: string[];
  containerLabelAdd?: string[];
  containerLabelRm?: string[];
  constraintAdd?: string[];
  constraintRm?: string[];
  placementPrefAdd?: string[];
  placementPrefRm?: string[];
  publishAdd?: string[];
  publishRm?: string[];
  mountAdd?: string[];
  mountRm?: string[];
  secretAdd?: string[];
  secretRm?: string[];
  configAdd?: string[];
  configRm?: string[];
  networkAdd?: string[];
  networkRm?: string[];
  /** Docker's update flags: --cap-add adds (and takes the name out of the drops), --cap-drop the reverse. */
  capAdd?: string[];
  capDrop?: string[];
  force?: boolean;
}

/** What flag parsing needs from the outside world (tests pass their own). */
export interface FlagEnv {
  env: NodeJS.ProcessEnv;
  readFile(path: string): string;
}

// ---- spec construction ---------------------------------------------------

/** A fresh ServiceSpec with every field present and nothing asked: what `service create` and the stack converter fill in. */
export function emptyServiceSpec(): ServiceSpec {
  return {
    name: '',
    labels: {},
    container: emptyContainerSpec(),
    resources: null,
    restart: null,
    placement: null,
    mode: 'REPLICATED',
    replicas: 1,
    update: null,
    rollback: null,
    networks: [],
    endpoint: null,
    autoscale: null,
    networkAliases: [],
    job: null,
  };
}

/** A deep copy, with every sub-message present, so updates can assign fields freely. */
function fullCopy(spec: ServiceSpec): ServiceSpec & {
  container: NonNullable<ServiceSpec['container']>;
} {
  const s = JSON.parse(JSON.stringify(spec)) as ServiceSpec;
  const base = emptyServiceSpec();
  return {
    ...base,
    ...s,
    labels: s.labels ?? {},
    container: { ...(base.container as NonNullable<ServiceSpec['container']>), ...(s.container ?? {}) },
    networks: s.networks ?? [],
  };
}

/** Docker's capability names, any case, with or without CAP_, or ALL → the canonical names ("CAP_NET_ADMIN", "ALL"). */
export function parseCapabilities(names: readonly string[], flag: string): string[] {
  const out: string[] = [];
  for (const n of names) {
    const c = canonicalCapability(n);
    if (!c) throw new CliError(`${flag}: "${n}" is not a capability (e.g. NET_ADMIN, CAP_SYS_TIME, ALL)`);
    if (!out.includes(c)) out.push(c);
  }
  return out;
}

/** "--entrypoint 'sh -c'" → ["sh", "-c"]: split on blanks, quotes honoured (no expansion). */
export function splitWords(s: string): string[] {
  const out: string[] = [];
  const re = /"((?:[^"\\]|\\.)*)"|'([^']*)'|(\S+)/g;
  for (let m = re.exec(s); m; m = re.exec(s)) out.push(m[1] !== undefined ? m[1].replace(/\\(.)/g, '$1') : (m[2] ?? m[3]));
  return out;
}

/** Applies the flags create and update share onto `spec` (in place). */
function applyShared(spec: ReturnType<typeof fullCopy>, f: ServiceFlags): void {
  const c = spec.container;
  applyJobFlags(spec, f);
  if (f.replicas !== undefined) {
    if (spec.mode === 'GLOBAL') throw new CliError('--replicas: not allowed with --mode global');
    if (spec.mode === 'GLOBAL_JOB') throw new CliError('--replicas: not allowed with --mode global-job');
    spec.replicas = parseInteger(f.replicas, '--replicas', Number.MIN_SAFE_INTEGER);
  }
  if (f.maxReplicas !== undefined) {
    spec.placement = { ...placement(spec), maxReplicasPerNode: parseInteger(f.maxReplicas, '--max-replicas') };
  }
  if (f.placementStrategy !== undefined) placement(spec).strategy = parsePlacementStrategy(f.placementStrategy);

  const res = () => {
    const zero = { nanoCpus: 0, memoryBytes: 0, pids: 0 };
    spec.resources = {
      limits: { ...zero, ...(spec.resources?.limits ?? {}) },
      reservations: { ...zero, ...(spec.resources?.reservations ?? {}) },
    };
    return spec.resources as { limits: typeof zero; reservations: typeof zero };
  };
  if (f.reserveCpu !== undefined) res().reservations.nanoCpus = parseCpus(f.reserveCpu, '--reserve-cpu');
  if (f.reserveMemory !== undefined) res().reservations.memoryBytes = parseSize(f.reserveMemory, '--reserve-memory');
  if (f.limitCpu !== undefined) res().limits.nanoCpus = parseCpus(f.limitCpu, '--limit-cpu');
  if (f.limitMemory !== undefined) res().limits.memoryBytes = parseSize(f.limitMemory, '--limit-memory');
  if (f.limitPids !== undefined) res().limits.pids = parseInteger(f.limitPids, '--limit-pids');

  const restart = () => (spec.restart = { ...DEFAULT_RESTART, ...(spec.restart ?? {}) });
  if (f.restartCondition !== undefined) restart().condition = choice(f.restartCondition, '--restart-condition', RESTART_CONDITIONS);
  if (f.restartDelay !== undefined) restart().delayMs = parseDuration(f.restartDelay, '--restart-delay');
  if (f.restartMaxAttempts !== undefined) restart().maxAttempts = parseInteger(f.restartMaxAttempts, '--restart-max-attempts');
  if (f.restartWindow !== undefined) restart().windowMs = parseDuration(f.restartWindow, '--restart-window');

  for (const kind of ['update', 'rollback'] as const) {
    const get = (k: string) => f[`${kind}${k}` as keyof ServiceFlags] as string | undefined;
    const cfg = () => (spec[kind] = { ...DEFAULT_UPDATE, ...(spec[kind] ?? {}) });
    const v = {
      parallelism: get('Parallelism'),
      delay: get('Delay'),
      order: get('Order'),
      failureAction: get('FailureAction'),
      monitor: get('Monitor'),
      ratio: get('MaxFailureRatio'),
    };
    if (v.parallelism !== undefined) cfg().parallelism = parseInteger(v.parallelism, `--${kind}-parallelism`);
    if (v.delay !== undefined) cfg().delayMs = parseDuration(v.delay, `--${kind}-delay`);
    if (v.order !== undefined) cfg().order = choice(v.order, `--${kind}-order`, UPDATE_ORDERS);
    if (v.failureAction !== undefined) {
      const a = choice(v.failureAction, `--${kind}-failure-action`, FAILURE_ACTIONS);
      if (kind === 'rollback' && a === 'FAILURE_ROLLBACK') throw new CliError('--rollback-failure-action: must be pause or continue');
      cfg().failureAction = a;
    }
    if (v.monitor !== undefined) cfg().monitorMs = parseDuration(v.monitor, `--${kind}-monitor`);
    if (v.ratio !== undefined) cfg().maxFailureRatio = parseRatio(v.ratio, `--${kind}-max-failure-ratio`);
  }

  if (f.endpointMode !== undefined) {
    const mode = choice(f.endpointMode, '--endpoint-mode', ENDPOINT_MODES);
    spec.endpoint = { mode, ports: spec.endpoint?.ports ?? [] };
  }

  const anyHealth = [f.healthCmd, f.healthInterval, f.healthRetries, f.healthTimeout, f.healthStartPeriod].some((x) => x !== undefined);
  if (f.healthcheck === false) {
    if (anyHealth) throw new CliError('--no-healthcheck: conflicts with --health-* options');
    c.healthcheck = { test: ['NONE'], intervalMs: 0, timeoutMs: 0, retries: 0, startPeriodMs: 0 };
  } else if (anyHealth) {
    const prev = c.healthcheck && c.healthcheck.test[0] !== 'NONE' ? c.healthcheck : null;
    const h: HealthConfig = { test: [], intervalMs: 0, timeoutMs: 0, retries: 0, startPeriodMs: 0, ...(prev ?? {}) };
    if (f.healthCmd !== undefined) h.test = f.healthCmd ? ['CMD-SHELL', f.healthCmd] : [];
    if (f.healthInterval !== undefined) h.intervalMs = parseDuration(f.healthInterval, '--health-interval');
    if (f.healthTimeout !== undefined) h.timeoutMs = parseDuration(f.healthTimeout, '--health-timeout');
    if (f.healthRetries !== undefined) h.retries = parseInteger(f.healthRetries, '--health-retries');
    if (f.healthStartPeriod !== undefined) h.startPeriodMs = parseDuration(f.healthStartPeriod, '--health-start-period');
    c.healthcheck = h;
  }

  if (f.stopSignal !== undefined) c.stopSignal = f.stopSignal;
  if (f.stopGracePeriod !== undefined) c.stopGracePeriodMs = parseDuration(f.stopGracePeriod, '--stop-grace-period');
  if (f.hostname !== undefined) c.hostname = f.hostname;
  if (f.workdir !== undefined) c.dir = f.workdir;
  if (f.user !== undefined) c.user = f.user;
  if (f.entrypoint !== undefined) c.command = splitWords(f.entrypoint);
  if (f.readOnly !== undefined) c.readOnly = f.readOnly;
  if (f.hostAccess !== undefined) c.hostAccess = f.hostAccess;
  if (f.withRegistryAuth !== undefined) c.withRegistryAuth = f.withRegistryAuth;
}

function withPorts(spec: ServiceSpec, ports: PortConfig[]): void {
  spec.endpoint = { mode: spec.endpoint?.mode ?? 'VIP', ports };
}

function placement(spec: ServiceSpec): NonNullable<ServiceSpec['placement']> {
  const p: NonNullable<ServiceSpec['placement']> = { constraints: [], preferences: [], maxReplicasPerNode: 0, platforms: [], strategy: 'SPREAD', ...(spec.placement ?? {}) };
  spec.placement = p;
  return p;
}

const realEnv: FlagEnv = {
  env: process.env,
  readFile: (p) => fs.readFileSync(p, 'utf8'),
};

function readEnvFiles(files: string[], fe: FlagEnv): string[] {
  const out: string[] = [];
  for (const file of files) {
    let text: string;
    try {
      text = fe.readFile(file);
    } catch (e) {
      throw new CliError(`--env-file: cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
    out.push(...parseEnvFile(text, fe.env, `--env-file ${file}`));
  }
  return out;
}

/** Later KEY=... entries replace earlier ones with the same KEY, keeping the first position. */
function mergeEnv(list: string[]): string[] {
  const byKey = new Map<string, string>();
  for (const e of list) byKey.set(e.split('=', 1)[0], e);
  return [...byKey.values()];
}

/** `convoy service create [flags] IMAGE [COMMAND] [ARG...]` → the spec to send. */
export function buildServiceSpec(image: string, args: string[], f: CreateFlags, fe: FlagEnv = realEnv): ServiceSpec {
  if (!image) throw new CliError('an IMAGE is required');
  const spec = fullCopy(emptyServiceSpec());
  spec.name = f.name ?? '';
  spec.container.image = image;
  spec.container.args = [...args];
  if (f.mode !== undefined) {
    spec.mode = choice(f.mode, '--mode', SERVICE_MODES);
    if (spec.mode === 'GLOBAL' || spec.mode === 'GLOBAL_JOB') spec.replicas = 0;
  }
  applyShared(spec, f);
  spec.labels = parseLabels(f.label ?? [], '--label');
  spec.container.labels = parseLabels(f.containerLabel ?? [], '--container-label');
  const env = [...readEnvFiles(f.envFile ?? [], fe)];
  for (const e of f.env ?? []) {
    const v = parseEnv(e, fe.env);
    if (v !== undefined) env.push(v);
  }
  spec.container.env = mergeEnv(env);
  spec.container.mounts = (f.mount ?? []).map((m) => parseMount(m));
  if ((f.constraint ?? []).length) placement(spec).constraints = [...(f.constraint ?? [])];
  if ((f.placementPref ?? []).length) placement(spec).preferences = (f.placementPref ?? []).map((p) => parsePlacementPref(p));
  if ((f.publish ?? []).length) withPorts(spec, (f.publish ?? []).map((p) => parsePort(p)));
  spec.networks = [...(f.network ?? [])];
  spec.container.capAdd = parseCapabilities(f.capAdd ?? [], '--cap-add');
  spec.container.capDrop = parseCapabilities(f.capDrop ?? [], '--cap-drop');
  spec.container.secrets = (f.secret ?? []).map((x) => parseFileRef(x, '--secret'));
  spec.container.configs = (f.config ?? []).map((x) => parseFileRef(x, '--config'));
  return spec;
}

/** Kept for callers of the first CLI draft: same as buildServiceSpec. */
export const specFromFlags = (image: string, args: string[], f: CreateFlags): ServiceSpec => buildServiceSpec(image, args, f);

/**
 * `convoy service update [flags] SERVICE`: the flags applied to the current
 * spec (the caller fetched it and sends its meta.version). Removals apply
 * before additions, as Docker does, so "--env-rm A --env-add A=2" replaces.
 */
export function applyServiceUpdate(current: ServiceSpec, f: UpdateFlags, fe: FlagEnv = realEnv): ServiceSpec {
  const spec = fullCopy(current);
  const c = spec.container;
  if (f.image !== undefined) {
    if (!f.image) throw new CliError('--image: must not be empty');
    c.image = f.image;
  }
  if (f.args !== undefined) c.args = splitWords(f.args);
  applyShared(spec, f);

  // env
  if (f.envRm?.length || f.envAdd?.length) {
    const rm = new Set(f.envRm ?? []);
    let env = c.env.filter((e) => !rm.has(e.split('=', 1)[0]));
    const add: string[] = [];
    for (const e of f.envAdd ?? []) {
      const v = parseEnv(e, fe.env, '--env-add');
      if (v !== undefined) add.push(v);
    }
    env = mergeEnv([...env, ...add]);
    c.env = env;
  }
  // labels
  const editMap = (m: Record<string, string>, add: string[] | undefined, rm: string[] | undefined, flag: string) => {
    const out = { ...m };
    for (const k of rm ?? []) delete out[k];
    Object.assign(out, parseLabels(add ?? [], flag));
    return out;
  };
  if (f.labelAdd?.length || f.labelRm?.length) spec.labels = editMap(spec.labels, f.labelAdd, f.labelRm, '--label-add');
  if (f.containerLabelAdd?.length || f.containerLabelRm?.length) c.labels = editMap(c.labels, f.containerLabelAdd, f.containerLabelRm, '--container-label-add');
  // placement
  if (f.constraintAdd?.length || f.constraintRm?.length) {
    const p = placement(spec);
    const kept = p.constraints.filter((x) => !(f.constraintRm ?? []).some((r) => sameConstraint(r, x)));
    for (const a of f.constraintAdd ?? []) if (!kept.some((k) => sameConstraint(k, a))) kept.push(a);
    p.constraints = kept;
  }
  if (f.placementPrefAdd?.length || f.placementPrefRm?.length) {
    const p = placement(spec);
    const rm = (f.placementPrefRm ?? []).map((x) => parsePlacementPref(x, '--placement-pref-rm'));
    const kept = p.preferences.filter((x) => !rm.includes(x));
    for (const a of f.placementPrefAdd ?? []) {
      const v = parsePlacementPref(a, '--placement-pref-add');
      if (!kept.includes(v)) kept.push(v);
    }
    p.preferences = kept;
  }
  // ports: removed by target port and protocol; an added port replaces one with the same target.
  if (f.publishAdd?.length || f.publishRm?.length) {
    const rm = (f.publishRm ?? []).map((p) => parsePortKey(p));
    const add = (f.publishAdd ?? []).map((p) => parsePort(p, '--publish-add'));
    const same = (a: { targetPort: number; protocol: string }, b: { targetPort: number; protocol: string }) =>
      a.targetPort === b.targetPort && (a.protocol || 'tcp') === (b.protocol || 'tcp');
    const kept = (spec.endpoint?.ports ?? []).filter((p) => !rm.some((r) => same(r, p)) && !add.some((a) => same(a, p)));
    withPorts(spec, [...kept, ...add]);
  }
  // mounts: removed by target path.
  if (f.mountAdd?.length || f.mountRm?.length) {
    const add = (f.mountAdd ?? []).map((m) => parseMount(m, '--mount-add'));
    const rm = new Set([...(f.mountRm ?? []), ...add.map((m) => m.target)]);
    c.mounts = [...c.mounts.filter((m) => !rm.has(m.target)), ...add];
  }
  // secrets and configs: removed by name; an added one replaces one of the same name and target.
  for (const kind of ['secret', 'config'] as const) {
    const addF = kind === 'secret' ? f.secretAdd : f.configAdd;
    const rmF = kind === 'secret' ? f.secretRm : f.configRm;
    if (!addF?.length && !rmF?.length) continue;
    const list = kind === 'secret' ? 'secrets' : 'configs';
    const add = (addF ?? []).map((x) => parseFileRef(x, `--${kind}-add`));
    const rm = new Set(rmF ?? []);
    const unknown = [...rm].filter((n) => !(c[list] ?? []).some((r) => r.name === n) && !add.some((a) => a.name === n));
    if (unknown.length) throw new CliError(`--${kind}-rm: the service has no ${kind} ${unknown.map((n) => JSON.stringify(n)).join(', ')}`);
    const kept = (c[list] ?? []).filter((r) => !rm.has(r.name) && !add.some((a) => a.name === r.name && a.target === r.target));
    c[list] = [...kept, ...add];
  }
  // networks
  if (f.networkAdd?.length || f.networkRm?.length) {
    const kept = spec.networks.filter((n) => !(f.networkRm ?? []).includes(n));
    for (const n of f.networkAdd ?? []) if (!kept.includes(n)) kept.push(n);
    spec.networks = kept;
  }
  // capabilities: drops first, then adds (so a name in both ends up added), as the other lists
  if (f.capAdd?.length || f.capDrop?.length) {
    const drop = parseCapabilities(f.capDrop ?? [], '--cap-drop');
    const add = parseCapabilities(f.capAdd ?? [], '--cap-add');
    let capAdd = parseCapabilities(c.capAdd ?? [], 'spec.container.capAdd').filter((x) => !drop.includes(x));
    let capDrop = parseCapabilities(c.capDrop ?? [], 'spec.container.capDrop');
    for (const x of drop) if (!capDrop.includes(x)) capDrop.push(x);
    capDrop = capDrop.filter((x) => !add.includes(x));
    for (const x of add) if (!capAdd.includes(x)) capAdd.push(x);
    c.capAdd = capAdd;
    c.capDrop = capDrop;
  }
  return spec;
}

/** `service scale web=5 api=3` → [["web",5],["api",3]]. */
export function parseScaleArgs(args: string[]): [string, number][] {
  if (!args.length) throw new CliError('scale needs at least one SERVICE=REPLICAS');
  return args.map((a) => {
    const i = a.lastIndexOf('=');
    if (i <= 0) throw new CliError(`"${a}" is not SERVICE=REPLICAS`);
    return [a.slice(0, i), parseInteger(a.slice(i + 1), a.slice(0, i), Number.MIN_SAFE_INTEGER)];
  });
}

/** Repeatable flag collector for commander: `-e A=1 -e B=2` → ["A=1","B=2"]. */
export function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

// ---- commander wiring ------------------------------------------------------

/**
 * Declares the service flags on `service create` or `service update`. Values
 * stay strings (parsed by buildServiceSpec / applyServiceUpdate); repeatable
 * flags collect into arrays.
 */
export function addServiceOptions(cmd: Command, kind: 'create' | 'update'): Command {
  const many = (flags: string, desc: string) => cmd.addOption(new Option(flags, desc).argParser(collect));
  const one = (flags: string, desc: string) => cmd.option(flags, desc);
  if (kind === 'create') {
    one('--name <name>', 'service name');
    one('--mode <mode>', 'replicated | global | replicated-job | global-job (default replicated)');
    many('-p, --publish <port>', 'publish a port: 8080:80[/udp] or mode=host,target=80,published=8080,protocol=tcp (repeatable)');
    many('-e, --env <KEY=value>', 'set an environment variable; a bare KEY takes its value from this shell (repeatable)');
    many('--env-file <file>', 'read environment variables from a file (repeatable)');
    many('-l, --label <k=v>', 'service label (repeatable)');
    many('--container-label <k=v>', 'container label (repeatable)');
    many('--constraint <expr>', 'placement constraint: node.labels.zone==east, node.role!=manager (repeatable)');
    many('--placement-pref <pref>', 'placement preference: spread=node.labels.zone (repeatable)');
    many('--network <name>', 'attach to a network (repeatable)');
    many('--mount <spec>', 'mount: type=bind|volume|tmpfs,source=...,target=...,readonly (repeatable)');
    many('--cap-add <cap>', "add a Linux capability to Docker's default set: NET_ADMIN, CAP_SYS_TIME, ALL (repeatable)");
    many('--cap-drop <cap>', 'drop a Linux capability from the default set: CHOWN, ALL (repeatable)');
    one('--read-only', "mount the container's root filesystem read-only");
    one('--host-access', "let the tasks reach their node's addresses (the host firewall blocks them otherwise)");
    many('--secret <spec>', 'give the tasks a secret: NAME or source=NAME,target=PATH,uid=,gid=,mode=0400 (default /run/secrets/NAME) (repeatable)');
    many('--config <spec>', 'give the tasks a config: NAME or source=NAME,target=PATH,uid=,gid=,mode= (default /NAME) (repeatable)');
  } else {
    one('--image <image>', 'new image');
    one('--args <command>', 'new command arguments (quoted words)');
    many('--env-add <KEY=value>', 'add or replace an environment variable (repeatable)');
    many('--env-rm <KEY>', 'remove an environment variable (repeatable)');
    many('--label-add <k=v>', 'add or replace a service label (repeatable)');
    many('--label-rm <k>', 'remove a service label (repeatable)');
    many('--container-label-add <k=v>', 'add or replace a container label (repeatable)');
    many('--container-label-rm <k>', 'remove a container label (repeatable)');
    many('--constraint-add <expr>', 'add a placement constraint (repeatable)');
    many('--constraint-rm <expr>', 'remove a placement constraint (repeatable)');
    many('--placement-pref-add <pref>', 'add a placement preference (repeatable)');
    many('--placement-pref-rm <pref>', 'remove a placement preference (repeatable)');
    many('--publish-add <port>', 'add or replace a published port (repeatable)');
    many('--publish-rm <port>', 'remove a published port by its target port: 80, 80/udp (repeatable)');
    many('--mount-add <spec>', 'add or replace a mount (repeatable)');
    many('--mount-rm <target>', 'remove a mount by its target path (repeatable)');
    many('--secret-add <spec>', 'add a secret: NAME or source=NAME,target=PATH,uid=,gid=,mode= (repeatable)');
    many('--secret-rm <name>', 'remove a secret by name (repeatable)');
    many('--config-add <spec>', 'add a config: NAME or source=NAME,target=PATH,uid=,gid=,mode= (repeatable)');
    many('--config-rm <name>', 'remove a config by name (repeatable)');
    many('--network-add <name>', 'attach to a network (repeatable)');
    many('--network-rm <name>', 'detach from a network (repeatable)');
    many('--cap-add <cap>', 'add a Linux capability (and take it out of the dropped ones) (repeatable)');
    many('--cap-drop <cap>', 'drop a Linux capability (and take it out of the added ones) (repeatable)');
    one('--read-only', "mount the container's root filesystem read-only");
    one('--no-read-only', 'mount it read-write again');
    one('--host-access', "let the tasks reach their node's addresses");
    one('--no-host-access', 'block them again');
    one('--force', 'replace every task even if nothing changed');
  }
  one('--replicas <n>', 'number of tasks (replicated mode); completions wanted (replicated-job)');
  one('--max-concurrent <n>', 'replicated-job: tasks running at once (default: --replicas)');
  one('--schedule <cron>', 'job modes: run on a 5-field cron schedule ("*/5 * * * *", "@daily"); docs/jobs.md');
  one('--schedule-timezone <zone>', 'IANA time zone the schedule is read in (default UTC)');
  one('--concurrency-policy <policy>', 'scheduled job whose last run still goes: allow | forbid | replace (default allow)');
  one('--history-limit <n>', "finished runs of a job whose tasks are kept (default 3)");
  one('--schedule-deadline <duration>', 'a missed fire still starts when no older than this (default: no deadline)');
  one('--max-replicas <n>', 'at most this many tasks per node (0 = unlimited)');
  one('--placement-strategy <strategy>', 'spread (default: fewest tasks first) | binpack (fill the fullest node that fits first)');
  one('--reserve-cpu <cpus>', 'reserve CPUs (0.5)');
  one('--reserve-memory <size>', 'reserve memory (64M, 1G)');
  one('--limit-cpu <cpus>', 'limit CPUs');
  one('--limit-memory <size>', 'limit memory');
  one('--limit-pids <n>', "limit the number of processes (0 = the agent's default, 4096)");
  one('--restart-condition <cond>', 'none | on-failure | any');
  one('--restart-delay <duration>', 'delay between restart attempts (5s)');
  one('--restart-max-attempts <n>', 'restarts before giving up (0 = unlimited)');
  one('--restart-window <duration>', 'window the attempts are counted in');
  for (const k of ['update', 'rollback'] as const) {
    const what = k === 'update' ? 'update' : 'rollback';
    one(`--${k}-parallelism <n>`, `tasks ${what}d at a time (0 = all)`);
    one(`--${k}-delay <duration>`, `delay between ${what} batches`);
    one(`--${k}-order <order>`, 'start-first | stop-first');
    one(`--${k}-failure-action <action>`, k === 'update' ? 'pause | continue | rollback' : 'pause | continue');
    one(`--${k}-monitor <duration>`, `how long each ${what}d task is watched for failure`);
    one(`--${k}-max-failure-ratio <ratio>`, 'fraction of tasks allowed to fail (0..1)');
  }
  one('--with-registry-auth', "pull the image with the cluster's credentials for its registry (convoy registry login)");
  if (kind === 'update') one('--no-with-registry-auth', 'pull without them again');
  one('--endpoint-mode <mode>', 'vip | dnsrr');
  one('--health-cmd <command>', 'command run to check health (through /bin/sh -c)');
  one('--health-interval <duration>', 'time between health checks');
  one('--health-retries <n>', 'consecutive failures before unhealthy');
  one('--health-timeout <duration>', 'maximum time one check may take');
  one('--health-start-period <duration>', 'grace period before failures count');
  one('--no-healthcheck', "disable the image's health check");
  one('--stop-signal <signal>', 'signal that stops a task (SIGTERM)');
  one('--stop-grace-period <duration>', 'time before a stopping task is killed (10s)');
  one('--hostname <name>', 'container hostname');
  one('-w, --workdir <dir>', 'working directory in the container');
  one('-u, --user <user>', 'user[:group] in the container');
  one('--entrypoint <command>', "overrides the image's entrypoint (quoted words)");
  // As Docker, the verb waits for convergence (cli/service/progress.ts) unless -d.
  one('-d, --detach', 'return at once, without waiting for the service to converge');
  one('--timeout <duration>', 'give up waiting after this long (exit status 1); default: until converged or failed');
  return cmd;
}

/**
 * The job flags (docs/jobs.md) onto `spec`: only with a job mode; the
 * manager fills the defaults and checks the schedule.
 */
function applyJobFlags(spec: ServiceSpec, f: ServiceFlags): void {
  const given = (
    [
      ['--max-concurrent', f.maxConcurrent],
      ['--schedule', f.schedule],
      ['--schedule-timezone', f.scheduleTimezone],
      ['--concurrency-policy', f.concurrencyPolicy],
      ['--history-limit', f.historyLimit],
      ['--schedule-deadline', f.scheduleDeadline],
    ] as const
  ).filter(([, v]) => v !== undefined);
  const isJob = spec.mode === 'REPLICATED_JOB' || spec.mode === 'GLOBAL_JOB';
  if (!isJob) {
    if (given.length) throw new CliError(`${given[0][0]}: only with --mode replicated-job or global-job`);
    return;
  }
  const j = (spec.job = { maxConcurrent: 0, schedule: '', timezone: '', concurrencyPolicy: 'CONCURRENCY_ALLOW' as const, historyLimit: 0, startingDeadlineMs: 0, ...(spec.job ?? {}) });
  if (f.maxConcurrent !== undefined) {
    if (spec.mode === 'GLOBAL_JOB') throw new CliError('--max-concurrent: not allowed with --mode global-job');
    j.maxConcurrent = parseInteger(f.maxConcurrent, '--max-concurrent');
  }
  if (f.schedule !== undefined) j.schedule = f.schedule.trim();
  if (f.scheduleTimezone !== undefined) j.timezone = f.scheduleTimezone.trim();
  if (f.concurrencyPolicy !== undefined) j.concurrencyPolicy = choice(f.concurrencyPolicy, '--concurrency-policy', CONCURRENCY_POLICIES);
  if (f.historyLimit !== undefined) j.historyLimit = parseInteger(f.historyLimit, '--history-limit');
  if (f.scheduleDeadline !== undefined) j.startingDeadlineMs = parseDuration(f.scheduleDeadline, '--schedule-deadline');
}
