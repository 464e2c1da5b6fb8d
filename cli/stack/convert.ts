// A merged, interpolated compose tree → what `stack deploy` creates: the
// networks, secrets and configs of the stack and one ServiceSpec per
// service, with Docker's meaning for every key (docs/stacks.md). Every key
// is one of: converted; parsed but refused as "not supported yet" (Convoy's
// spec has no field for it yet: never dropped silently); warned about and
// ignored (the keys `docker stack deploy` ignores); refused (the keys
// Docker forbids, and unknown keys). Refusals name file, line and path.
import * as path from 'node:path';
import type { HealthConfig, Mount, NetworkSpec, PortConfig, ServiceSpec, UpdateConfig } from '../../proto/mod';
import { canonicalCapability } from '../../proto/capabilities';
import { sysctlRefusal, ULIMIT_NUMBERS } from '../../proto/container-options';
import { DEFAULT_RESTART_POLICY, DEFAULT_UPDATE_CONFIG } from '../../proto/defaults';
import { validateNetworkSpec } from '../../manager/spec/objects';
import { validateServiceSpec } from '../../manager/spec/validate';
import { emptyServiceSpec, parseEnvFile, parseSize } from '../flags';
import { isMapNode, isSeqNode, stackError, STACK_LIMITS, type MapNode as TreeMapNode, type YNode } from './tree';

export const NAMESPACE_LABEL = 'com.docker.stack.namespace';
/** Names of a stack's objects: Docker's scoping, lowercase as Convoy's names are (manager/spec/validate.ts NAME_RE). */
export const STACK_NAME_RE = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/;
/** deploy.placement key for the placement strategy (spread | binpack): an extension, so Docker ignores it. */
export const PLACEMENT_STRATEGY_KEY = 'x-convoy-placement-strategy';

const OBJECT_NAME_RE = /^[a-z0-9]([a-z0-9_-]{0,61}[a-z0-9])?$/;

export type DependsCondition = 'service_started' | 'service_healthy' | 'service_completed_successfully';

/** A secret or config reference of a service, as h4's FileReference (the manager fills the id). */
export interface FileRef {
  name: string;
  target: string;
  uid: number;
  gid: number;
  mode: number;
}

export interface PlannedFileObject {
  key: string;
  /** The name it has in the cluster: STACK_key, its `name:`, or the external name. */
  name: string;
  external: boolean;
  labels: Record<string, string>;
  /** The value, for objects the stack creates (from `file:` or `environment:`). */
  data?: Buffer;
  file: string;
  line: number;
}

export interface PlannedNetwork {
  key: string;
  name: string;
  external: boolean;
  spec: NetworkSpec;
  file: string;
  line: number;
}

/** Options Convoy's spec has no field for yet: parsed and typed, and refused at conversion (see `unsupported`). */
export interface PendingOptions {
  oomScoreAdj?: number;
}

export interface PlannedService {
  key: string;
  name: string;
  spec: ServiceSpec;
  secrets: FileRef[];
  configs: FileRef[];
  dependsOn: { service: string; condition: DependsCondition }[];
  pending: PendingOptions;
  file: string;
  line: number;
}

export interface StackPlan {
  stack: string;
  networks: PlannedNetwork[];
  /** Named volumes the services mount (created by the agents on first use; Convoy has no volume objects). */
  volumes: { key: string; name: string; external: boolean }[];
  secrets: PlannedFileObject[];
  configs: PlannedFileObject[];
  /** In dependency order (depends_on targets first). */
  services: PlannedService[];
  warnings: string[];
}

export interface ConvertEnv {
  /** Variables for `environment:` entries without a value and `secrets.*.environment`. */
  lookup(name: string): string | undefined;
  readFile(p: string): Buffer;
  /** Directory relative paths are resolved against: the first file's (as Docker's working dir). */
  workingDir: string;
  home?: string;
}

// ---- the keys -----------------------------------------------------------------

/** Keys `docker stack deploy` ignores with a warning (docker/cli UnsupportedProperties and DeprecatedProperties). */
export const WARNED_SERVICE_KEYS: Record<string, string> = {
  build: 'images are not built by stack deploy: build and push them first',
  cgroupns_mode: 'ignored by swarm mode',
  cgroup_parent: 'ignored by swarm mode',
  domainname: 'ignored by swarm mode',
  external_links: 'ignored by swarm mode',
  ipc: 'ignored by swarm mode',
  links: 'ignored: services reach each other by name on shared networks',
  mac_address: 'ignored by swarm mode',
  network_mode: 'ignored by swarm mode',
  pid: 'ignored by swarm mode',
  restart: 'use deploy.restart_policy (converted as Docker does when deploy.restart_policy is absent)',
  security_opt: 'ignored by swarm mode',
  shm_size: 'ignored by swarm mode',
  userns_mode: 'ignored by swarm mode',
  container_name: 'setting the container name is not supported',
  expose: 'exposing ports is unnecessary: services on the same network reach each other on any port',
  credential_spec: 'Windows only',
  isolation: 'Windows only',
};

/** Keys Docker refuses (docker/cli ForbiddenProperties), with its reasons. */
export const FORBIDDEN_SERVICE_KEYS: Record<string, string> = {
  extends: 'support for `extends` is not implemented',
  volume_driver: 'define a volume with the top-level `volumes` option and give the driver there',
  volumes_from: 'to share a volume between services, define it in the top-level `volumes` and mount it in each service',
  cpu_quota: 'set resource limits with deploy.resources',
  cpu_shares: 'set resource limits with deploy.resources',
  cpuset: 'set resource limits with deploy.resources',
  mem_limit: 'set resource limits with deploy.resources',
  memswap_limit: 'set resource limits with deploy.resources',
};

/** Keys parsed into PendingOptions and refused until Convoy's spec has the field. */
export const NOT_YET_SERVICE_KEYS = ['oom_score_adj'];

export const SERVICE_KEYS = [
  'image', 'command', 'entrypoint', 'environment', 'env_file', 'ports', 'networks', 'volumes', 'secrets', 'configs', 'healthcheck',
  'hostname', 'user', 'working_dir', 'labels', 'stop_grace_period', 'stop_signal', 'read_only', 'tmpfs', 'cap_add', 'cap_drop',
  'logging', 'deploy', 'depends_on',
  // Container options (issue 13, docs/container-options.md); privileged and devices, which Swarm ignores, are honoured for admins where the cluster allows them.
  'init', 'sysctls', 'ulimits', 'extra_hosts', 'dns', 'dns_search', 'dns_opt', 'tty', 'stdin_open', 'privileged', 'devices',
];

// ---- reading values --------------------------------------------------------------

type MapNode = TreeMapNode;

function typeName(n: YNode): string {
  if (n.v === null) return 'null';
  if (Array.isArray(n.v)) return 'a list';
  if (n.v instanceof Map) return 'a mapping';
  return `a ${typeof n.v}`;
}

function wrongType(n: YNode, p: string, want: string): Error {
  return stackError(n, p, `must be ${want} (got ${typeName(n)})`);
}

function mapOf(n: YNode, p: string): MapNode {
  if (!isMapNode(n)) throw wrongType(n, p, 'a mapping');
  return n;
}

function str(n: YNode, p: string): string {
  if (typeof n.v === 'string') return n.v;
  throw wrongType(n, p, 'a string');
}

/** A string, or a number written as one (ports, ids, sizes): Docker's schema takes both there. */
function strOrNum(n: YNode, p: string): string {
  if (typeof n.v === 'string') return n.v;
  if (typeof n.v === 'number') return String(n.v);
  throw wrongType(n, p, 'a string or a number');
}

function bool(n: YNode, p: string): boolean {
  if (typeof n.v === 'boolean') return n.v;
  if (typeof n.v === 'string' && n.interpolated) {
    if (/^(true|yes|on|1)$/i.test(n.v)) return true;
    if (/^(false|no|off|0)$/i.test(n.v)) return false;
  }
  throw wrongType(n, p, 'true or false');
}

function int(n: YNode, p: string, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  let v: number | undefined;
  if (typeof n.v === 'number') v = n.v;
  else if (typeof n.v === 'string' && n.interpolated && /^-?\d+$/.test(n.v.trim())) v = Number(n.v.trim());
  if (v === undefined) throw wrongType(n, p, 'an integer');
  if (!Number.isInteger(v)) throw stackError(n, p, `must be an integer (got ${v})`);
  if (v < min || v > max) throw stackError(n, p, `must be from ${min} to ${max} (got ${v})`);
  return v;
}

function num(n: YNode, p: string): number {
  if (typeof n.v === 'number') return n.v;
  if (typeof n.v === 'string' && n.interpolated && n.v.trim() && Number.isFinite(Number(n.v))) return Number(n.v);
  throw wrongType(n, p, 'a number');
}

function strings(n: YNode, p: string): string[] {
  if (!isSeqNode(n)) throw wrongType(n, p, 'a list of strings');
  return n.v.map((e, i) => str(e, `${p}[${i}]`));
}

/** A string or a list of strings (dns, env_file, tmpfs). */
function stringOrList(n: YNode, p: string): string[] {
  return typeof n.v === 'string' ? [n.v] : strings(n, p);
}

/** `command` / `entrypoint`: a list as is, a string split as a shell would (quotes, backslashes; no expansion). */
function command(n: YNode, p: string): string[] {
  if (isSeqNode(n)) return n.v.map((e, i) => strOrNum(e, `${p}[${i}]`));
  const s = str(n, p);
  try {
    return shellSplit(s);
  } catch (e) {
    throw stackError(n, p, (e as Error).message);
  }
}

/** POSIX-shell-like word splitting, as Docker's shlex: '...' literal, "..." with \\ escapes, \\ outside quotes. */
export function shellSplit(s: string): string[] {
  const out: string[] = [];
  let cur = '';
  let has = false;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c === "'") {
      const j = s.indexOf("'", i + 1);
      if (j < 0) throw new Error('unterminated single quote');
      cur += s.slice(i + 1, j);
      i = j;
      has = true;
    } else if (c === '"') {
      let j = i + 1;
      for (; j < s.length && s[j] !== '"'; j++) {
        if (s[j] === '\\' && j + 1 < s.length && '"\\$`'.includes(s[j + 1])) j++;
        cur += s[j];
      }
      if (j >= s.length) throw new Error('unterminated double quote');
      i = j;
      has = true;
    } else if (c === '\\' && i + 1 < s.length) {
      cur += s[++i];
      has = true;
    } else if (/\s/.test(c)) {
      if (has) out.push(cur);
      cur = '';
      has = false;
    } else {
      cur += c;
      has = true;
    }
  }
  if (has) out.push(cur);
  return out;
}

/** A list-or-dict (labels, environment, sysctls): entries with a null value are `null` here. */
function listOrDict(n: YNode, p: string, sep = '='): Map<string, { v: string | null; n: YNode }> {
  const out = new Map<string, { v: string | null; n: YNode }>();
  if (isSeqNode(n)) {
    n.v.forEach((e, i) => {
      const s = str(e, `${p}[${i}]`);
      const at = s.indexOf(sep);
      const k = at < 0 ? s : s.slice(0, at);
      if (!k) throw stackError(e, `${p}[${i}]`, `${JSON.stringify(s)} is not KEY${sep}VALUE`);
      out.set(k, { v: at < 0 ? null : s.slice(at + 1), n: e });
    });
    return out;
  }
  if (!isMapNode(n)) throw wrongType(n, p, 'a mapping or a list of KEY=VALUE');
  for (const [k, e] of n.v) {
    if (e.v === null) out.set(k, { v: null, n: e });
    else if (typeof e.v === 'string' || typeof e.v === 'number' || typeof e.v === 'boolean') out.set(k, { v: String(e.v), n: e });
    else throw wrongType(e, `${p}.${k}`, 'a string, a number or null');
  }
  return out;
}

function labels(n: YNode, p: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, e] of listOrDict(n, p)) {
    if (k === '__proto__') throw stackError(e.n, `${p}.${k}`, 'reserved key');
    out[k] = e.v ?? '';
  }
  return out;
}

const GO_DURATION_UNITS: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** A Go duration ("1m30s", "500ms", "10s") → milliseconds. */
function duration(n: YNode, p: string): number {
  const s = strOrNum(n, p).trim();
  if (s === '0') return 0;
  const re = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/gy;
  let total = 0;
  let end = 0;
  for (let m = re.exec(s); m; m = re.exec(s)) {
    total += Number(m[1]) * GO_DURATION_UNITS[m[2]];
    end = re.lastIndex;
  }
  if (!s || end !== s.length) throw stackError(n, p, `${JSON.stringify(s)} is not a duration (e.g. 500ms, 10s, 1m30s)`);
  if (total > 2 ** 31 - 1) throw stackError(n, p, `${JSON.stringify(s)} is too long`);
  return Math.round(total);
}

function size(n: YNode, p: string): number {
  const s = strOrNum(n, p);
  try {
    return parseSize(s, p);
  } catch {
    throw stackError(n, p, `${JSON.stringify(s)} is not a size (e.g. 512k, 64M, 1G)`);
  }
}

function cpus(n: YNode, p: string): number {
  const s = strOrNum(n, p).trim();
  const v = Number(s);
  if (!s || !Number.isFinite(v) || v < 0) throw stackError(n, p, `${JSON.stringify(s)} is not a number of CPUs (e.g. 0.5, 2)`);
  return Math.round(v * 1e9);
}

function oneOf<T extends string>(n: YNode, p: string, values: readonly T[]): T {
  const s = str(n, p);
  if (!(values as readonly string[]).includes(s)) throw stackError(n, p, `${JSON.stringify(s)} is not one of ${values.join(', ')}`);
  return s as T;
}

/** Levenshtein distance, for "did you mean". */
function distance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++) for (let j = 1; j <= b.length; j++) d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
  return d[a.length][b.length];
}

function unknownKey(n: YNode, p: string, key: string, known: readonly string[]): Error {
  const best = known.filter((k) => distance(k, key) <= 2).sort((x, y) => distance(x, key) - distance(y, key))[0];
  return stackError(n, p, `unknown key${best ? ` (did you mean ${best}?)` : ''}`);
}

/** Checks a mapping's keys against the allowed ones (x-* extensions allowed where `extensions`). */
function checkKeys(m: MapNode, p: string, allowed: readonly string[], extensions = false): void {
  for (const [k, v] of m.v) {
    if (allowed.includes(k)) continue;
    if (extensions && k.startsWith('x-')) continue;
    throw unknownKey(v, p ? `${p}.${k}` : k, k, allowed);
  }
}

// ---- converting ------------------------------------------------------------------

function scoped(stack: string, key: string): string {
  return `${stack}_${key}`;
}

function checkObjectName(n: YNode, p: string, name: string): void {
  if (!OBJECT_NAME_RE.test(name))
    throw stackError(n, p, `${JSON.stringify(name)} is not a valid Convoy name (lowercase letters, digits, '-' and '_' inside, at most 63 characters)`);
}

function external(n: YNode | undefined, p: string, warn: (s: string) => void): { external: boolean; name?: string } {
  if (!n) return { external: false };
  if (typeof n.v === 'boolean') return { external: n.v };
  const m = mapOf(n, p);
  checkKeys(m, p, ['name']);
  const name = m.v.get('name');
  warn(`${n.file}:${n.line}: ${p}.name: deprecated, use the object's own name: key`);
  return { external: true, name: name ? str(name, `${p}.name`) : undefined };
}

export function convertStack(stack: string, root: YNode, env: ConvertEnv): StackPlan {
  if (!STACK_NAME_RE.test(stack) || stack.length > STACK_LIMITS.nameChars - 2)
    throw stackError(undefined, '', `stack name ${JSON.stringify(stack)} must be lowercase letters, digits and '-' (at most ${STACK_LIMITS.nameChars - 2} characters)`);
  const warnings: string[] = [];
  const warn = (s: string) => warnings.push(s);
  const top = mapOf(root, '');
  checkKeys(top, '', ['version', 'services', 'networks', 'volumes', 'secrets', 'configs', 'name'], true);
  const version = top.v.get('version');
  if (version) strOrNum(version, 'version');
  if (top.v.get('name')) warn(`${top.v.get('name')!.file}:${top.v.get('name')!.line}: name: ignored (the stack's name is the one given to stack deploy)`);
  const nsLabel = { [NAMESPACE_LABEL]: stack };

  const section = (k: string) => {
    const s = top.v.get(k);
    if (!s || s.v === null) return new Map<string, YNode>();
    const m = mapOf(s, k);
    if (m.v.size > (k === 'services' ? STACK_LIMITS.services : STACK_LIMITS.objects)) throw stackError(m, k, `at most ${k === 'services' ? STACK_LIMITS.services : STACK_LIMITS.objects} entries (got ${m.v.size})`);
    return m.v;
  };

  // Networks.
  const networks = new Map<string, PlannedNetwork>();
  for (const [key, n] of section('networks')) {
    const p = `networks.${key}`;
    const spec: NetworkSpec = { name: scoped(stack, key), subnet: '', labels: { ...nsLabel }, internal: false };
    let ext = { external: false } as { external: boolean; name?: string };
    let explicitName: string | undefined;
    if (n.v !== null) {
      const m = mapOf(n, p);
      checkKeys(m, p, ['name', 'driver', 'driver_opts', 'ipam', 'external', 'internal', 'attachable', 'labels'], true);
      for (const [k, v] of m.v) {
        const q = `${p}.${k}`;
        switch (k) {
          case 'name':
            explicitName = str(v, q);
            break;
          case 'driver': {
            const d = str(v, q);
            if (d !== 'overlay') throw stackError(v, q, `${JSON.stringify(d)}: only overlay networks exist in Convoy`);
            break;
          }
          case 'driver_opts':
            if (mapOf(v, q).v.size) throw stackError(v, q, 'not supported (the overlay takes no driver options; there is no `encrypted` option)');
            break;
          case 'ipam': {
            const im = mapOf(v, q);
            checkKeys(im, q, ['driver', 'config']);
            const drv = im.v.get('driver');
            if (drv && str(drv, `${q}.driver`) !== 'default') throw stackError(drv, `${q}.driver`, 'only the default IPAM driver exists');
            const cfg = im.v.get('config');
            if (cfg) {
              if (!isSeqNode(cfg)) throw wrongType(cfg, `${q}.config`, 'a list');
              if (cfg.v.length > 1) throw stackError(cfg, `${q}.config`, 'one subnet per network');
              for (const [i, c] of cfg.v.entries()) {
                const cm = mapOf(c, `${q}.config[${i}]`);
                checkKeys(cm, `${q}.config[${i}]`, ['subnet']);
                const sn = cm.v.get('subnet');
                if (sn) spec.subnet = str(sn, `${q}.config[${i}].subnet`);
              }
            }
            break;
          }
          case 'external':
            ext = external(v, q, warn);
            break;
          case 'internal':
            spec.internal = bool(v, q);
            break;
          case 'attachable':
            // Every Convoy network takes any service; there are no standalone containers to attach.
            bool(v, q);
            break;
          case 'labels':
            spec.labels = { ...labels(v, q), ...nsLabel };
            break;
        }
      }
      if (ext.external && Array.from(m.v.keys()).some((k) => !['external', 'name'].includes(k) && !k.startsWith('x-')))
        throw stackError(n, p, 'an external network takes no other keys than name');
    }
    const name = ext.external ? (ext.name ?? explicitName ?? key) : (explicitName ?? spec.name);
    checkObjectName(n, p, name);
    spec.name = name;
    networks.set(key, { key, name, external: ext.external, spec, file: n.file, line: n.line });
  }

  // Volumes.
  const volumes = new Map<string, { key: string; name: string; external: boolean }>();
  for (const [key, n] of section('volumes')) {
    const p = `volumes.${key}`;
    let name = scoped(stack, key);
    let isExt = false;
    if (n.v !== null) {
      const m = mapOf(n, p);
      checkKeys(m, p, ['name', 'driver', 'driver_opts', 'external', 'labels'], true);
      let explicit: string | undefined;
      for (const [k, v] of m.v) {
        const q = `${p}.${k}`;
        if (k === 'name') explicit = str(v, q);
        else if (k === 'driver') {
          if (str(v, q) !== 'local') throw stackError(v, q, `${JSON.stringify(v.v)}: only the local volume driver exists`);
        } else if (k === 'driver_opts') {
          if (mapOf(v, q).v.size) throw stackError(v, q, 'not supported (local volumes take no options)');
        } else if (k === 'external') {
          const e = external(v, q, warn);
          isExt = e.external;
          if (e.name) explicit = e.name;
        } else if (k === 'labels') labels(v, q);
      }
      if (isExt) name = explicit ?? key;
      else if (explicit) name = explicit;
    }
    if (!/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/.test(name) || name.length > 255) throw stackError(n, p, `${JSON.stringify(name)} is not a valid volume name`);
    volumes.set(key, { key, name, external: isExt });
  }

  // Secrets and configs.
  const fileObjects = (kind: 'secrets' | 'configs') => {
    const out = new Map<string, PlannedFileObject>();
    for (const [key, n] of section(kind)) {
      const p = `${kind}.${key}`;
      const m = mapOf(n, p);
      checkKeys(m, p, kind === 'secrets' ? ['name', 'file', 'environment', 'external', 'labels', 'driver', 'driver_opts', 'template_driver'] : ['name', 'file', 'environment', 'external', 'labels', 'template_driver'], true);
      let explicit: string | undefined;
      let ext = { external: false } as { external: boolean; name?: string };
      let data: Buffer | undefined;
      let lbl: Record<string, string> = {};
      for (const [k, v] of m.v) {
        const q = `${p}.${k}`;
        switch (k) {
          case 'name':
            explicit = str(v, q);
            break;
          case 'file': {
            const f = str(v, q);
            const abs = path.resolve(env.workingDir, f.startsWith('~') && env.home ? env.home + f.slice(1) : f);
            let buf: Buffer;
            try {
              buf = env.readFile(abs);
            } catch (e) {
              throw stackError(v, q, `cannot read ${abs}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
            }
            if (buf.length > STACK_LIMITS.secretBytes) throw stackError(v, q, `${abs} is larger than ${STACK_LIMITS.secretBytes / 1024} KiB`);
            data = buf;
            break;
          }
          case 'environment': {
            const name = str(v, q);
            const val = env.lookup(name);
            if (val === undefined) throw stackError(v, q, `environment variable ${name} is not set`);
            data = Buffer.from(val);
            break;
          }
          case 'external':
            ext = external(v, q, warn);
            break;
          case 'labels':
            lbl = labels(v, q);
            break;
          default:
            throw stackError(v, q, 'not supported (no secret drivers or templates in Convoy)');
        }
      }
      if (ext.external && (m.v.has('file') || m.v.has('environment'))) throw stackError(n, p, 'an external object takes no file or environment');
      if (!ext.external && !data) throw stackError(n, p, 'needs file, environment or external');
      const name = ext.external ? (ext.name ?? explicit ?? key) : (explicit ?? scoped(stack, key));
      out.set(key, { key, name, external: ext.external, labels: { ...lbl, ...nsLabel }, data, file: n.file, line: n.line });
    }
    return out;
  };
  const secrets = fileObjects('secrets');
  const configs = fileObjects('configs');

  // Services.
  const services = new Map<string, PlannedService>();
  const usedNetworks = new Set<string>();
  for (const [key, n] of section('services')) {
    const svc = convertService(stack, key, n, { networks, volumes, secrets, configs, env, warn, nsLabel });
    for (const x of svc.networkKeys) usedNetworks.add(x);
    services.set(key, svc.planned);
  }
  // The default network: created when a service uses it and the file does not define it.
  if (usedNetworks.has('default') && !networks.has('default'))
    networks.set('default', { key: 'default', name: scoped(stack, 'default'), external: false, spec: { name: scoped(stack, 'default'), subnet: '', labels: { ...nsLabel }, internal: false }, file: root.file, line: 1 });

  // depends_on: targets exist, no cycles; services in dependency order.
  for (const s of services.values())
    for (const d of s.dependsOn)
      if (!services.has(d.service)) throw stackError(s, `services.${s.key}.depends_on.${d.service}`, `service ${JSON.stringify(d.service)} is not defined in the stack`);
  const ordered: PlannedService[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (s: PlannedService, trail: string[]) => {
    const st = state.get(s.key);
    if (st === 'done') return;
    if (st === 'visiting') {
      const cycle = [...trail.slice(trail.indexOf(s.key)), s.key];
      throw stackError(s, `services.${s.key}.depends_on`, `dependency cycle: ${cycle.join(' -> ')}`);
    }
    state.set(s.key, 'visiting');
    for (const d of s.dependsOn) visit(services.get(d.service)!, [...trail, s.key]);
    state.set(s.key, 'done');
    ordered.push(s);
  };
  for (const s of services.values()) visit(s, []);

  // What the manager would refuse is refused here, before anything is written: its own checks, and ports within the stack.
  const published = new Map<string, string>();
  for (const s of ordered) {
    // The cluster's bind allow list is the manager's to apply at create (the
    // client does not know it): here only what every cluster refuses.
    const r = validateServiceSpec(s.spec, { nodes: [], services: [], bindAllow: ['/'] });
    if (!r.ok) throw stackError(s, `services.${s.key}`, `${r.errors[0].field}: ${r.errors[0].message}`);
    for (const port of s.spec.endpoint?.ports ?? []) {
      if (port.publishMode !== 'INGRESS' || !port.publishedPort) continue;
      const k = `${port.publishedPort}/${port.protocol}`;
      const other = published.get(k);
      if (other && other !== s.key) throw stackError(s, `services.${s.key}.ports`, `port ${k} is also published by service ${other}`);
      published.set(k, s.key);
    }
  }
  for (const n of networks.values()) {
    if (n.external) continue;
    const r = validateNetworkSpec(n.spec);
    if (!r.ok) throw stackError(n, `networks.${n.key}`, `${r.errors[0].field}: ${r.errors[0].message}`);
  }

  return {
    stack,
    // As Docker: only the networks some service uses are created (or, external, checked).
    networks: [...networks.values()].filter((x) => usedNetworks.has(x.key)),
    volumes: [...volumes.values()],
    secrets: [...secrets.values()],
    configs: [...configs.values()],
    services: ordered,
    warnings,
  };
}

interface ServiceContext {
  networks: Map<string, PlannedNetwork>;
  volumes: Map<string, { key: string; name: string; external: boolean }>;
  secrets: Map<string, PlannedFileObject>;
  configs: Map<string, PlannedFileObject>;
  env: ConvertEnv;
  warn(s: string): void;
  nsLabel: Record<string, string>;
}

function convertService(stack: string, key: string, n: YNode, ctx: ServiceContext): { planned: PlannedService; networkKeys: string[] } {
  const p = `services.${key}`;
  const m = mapOf(n, p);
  const name = scoped(stack, key);
  checkObjectName(n, p, name);
  const blank = emptyServiceSpec();
  // secrets/configs stay empty here: filled from the plan's secrets/configs at deploy (deploy.ts desiredSpec).
  const spec: ServiceSpec = { ...blank, name, labels: { ...ctx.nsLabel }, container: { ...blank.container!, labels: { ...ctx.nsLabel } } };
  const c = spec.container!;
  const pending: PendingOptions = {};
  const secrets: FileRef[] = [];
  const configs: FileRef[] = [];
  const dependsOn: PlannedService['dependsOn'] = [];
  let networkKeys: string[] = ['default'];
  const aliases = new Map<string, string[]>();
  let restartKey: YNode | undefined;
  let hasRestartPolicy = false;
  let envFiles: string[] = [];
  let environment: Map<string, { v: string | null; n: YNode }> = new Map();
  const ports: PortConfig[] = [];
  let endpointMode: 'VIP' | 'DNSRR' = 'VIP';
  let jobExt: YNode | undefined;

  for (const [k, v] of m.v) {
    const q = `${p}.${k}`;
    if (k === JOB_EXTENSION) {
      jobExt = v;
      continue;
    }
    if (k.startsWith('x-')) continue;
    if (k in FORBIDDEN_SERVICE_KEYS) throw stackError(v, q, `not allowed: ${FORBIDDEN_SERVICE_KEYS[k]}`);
    if (k in WARNED_SERVICE_KEYS) {
      ctx.warn(`${v.file}:${v.line}: ${q}: ignored (${WARNED_SERVICE_KEYS[k]})`);
      if (k === 'restart') restartKey = v;
      continue;
    }
    switch (k) {
      case 'image':
        c.image = str(v, q);
        break;
      case 'command':
        c.args = command(v, q);
        break;
      case 'entrypoint':
        c.command = command(v, q);
        break;
      case 'environment':
        environment = listOrDict(v, q);
        break;
      case 'env_file':
        envFiles = stringOrList(v, q);
        break;
      case 'ports':
        if (!isSeqNode(v)) throw wrongType(v, q, 'a list');
        v.v.forEach((e, i) => ports.push(...convertPort(e, `${q}[${i}]`)));
        break;
      case 'networks': {
        if (isSeqNode(v)) networkKeys = strings(v, q);
        else {
          const nm = mapOf(v, q);
          networkKeys = Array.from(nm.v.keys());
          for (const [nk, nv] of nm.v) {
            if (nv.v === null) continue;
            const np = `${q}.${nk}`;
            const cfg = mapOf(nv, np);
            checkKeys(cfg, np, ['aliases', 'ipv4_address', 'ipv6_address', 'driver_opts']);
            for (const [ck, cv] of cfg.v) {
              if (ck === 'aliases') aliases.set(nk, strings(cv, `${np}.aliases`));
              else throw stackError(cv, `${np}.${ck}`, 'not supported (addresses are allocated by the cluster)');
            }
          }
        }
        for (const nk of networkKeys)
          if (nk !== 'default' && !ctx.networks.has(nk)) throw stackError(v, `${q}.${nk}`, `network ${JSON.stringify(nk)} is not defined in the top-level networks`);
        break;
      }
      case 'volumes':
        if (!isSeqNode(v)) throw wrongType(v, q, 'a list');
        v.v.forEach((e, i) => c.mounts.push(convertVolume(e, `${q}[${i}]`, ctx)));
        break;
      case 'tmpfs':
        stringOrList(v, q).forEach((t, i) => {
          const [target, opts] = [t.split(':')[0], t.split(':').slice(1).join(':')];
          const mount: Mount = { type: 'TMPFS', source: '', target, readOnly: false, tmpfsSizeBytes: 0 };
          if (!target.startsWith('/')) throw stackError(v, `${q}[${i}]`, `${JSON.stringify(target)} is not an absolute path`);
          for (const o of opts ? opts.split(',') : []) {
            const [ok, ov] = o.split('=');
            if (ok === 'size') mount.tmpfsSizeBytes = size({ ...v, v: ov ?? '' }, `${q}[${i}] size`);
            else if (ok === 'ro') mount.readOnly = true;
            else if (ok !== 'rw') throw stackError(v, `${q}[${i}]`, `tmpfs option ${JSON.stringify(ok)} is not supported (size=, ro, rw)`);
          }
          c.mounts.push(mount);
        });
        break;
      case 'secrets':
      case 'configs': {
        if (!isSeqNode(v)) throw wrongType(v, q, 'a list');
        const defs = k === 'secrets' ? ctx.secrets : ctx.configs;
        v.v.forEach((e, i) => (k === 'secrets' ? secrets : configs).push(convertFileRef(e, `${q}[${i}]`, k, defs)));
        break;
      }
      case 'healthcheck':
        c.healthcheck = convertHealthcheck(v, q);
        break;
      case 'hostname':
        c.hostname = str(v, q);
        break;
      case 'user':
        c.user = strOrNum(v, q);
        break;
      case 'working_dir':
        c.dir = str(v, q);
        break;
      case 'labels':
        c.labels = { ...labels(v, q), ...ctx.nsLabel };
        break;
      case 'stop_grace_period':
        c.stopGracePeriodMs = duration(v, q);
        break;
      case 'stop_signal':
        c.stopSignal = str(v, q);
        break;
      case 'read_only':
        c.readOnly = bool(v, q);
        break;
      case 'cap_add':
      case 'cap_drop': {
        const list = strings(v, q).map((x, i) => {
          const cap = canonicalCapability(x);
          if (!cap) throw stackError(v, `${q}[${i}]`, `${JSON.stringify(x)} is not a capability (e.g. NET_ADMIN, CAP_SYS_TIME, ALL)`);
          return cap;
        });
        if (k === 'cap_add') c.capAdd = list;
        else c.capDrop = list;
        break;
      }
      case 'logging': {
        const lm = mapOf(v, q);
        checkKeys(lm, q, ['driver', 'options']);
        const d = lm.v.get('driver');
        if (d) {
          const drv = str(d, `${q}.driver`);
          if (drv !== 'local' && drv !== 'json-file') throw stackError(d, `${q}.driver`, `${JSON.stringify(drv)}: only the local log driver exists (logs are read with convoy service logs)`);
        }
        const o = lm.v.get('options');
        if (o && mapOf(o, `${q}.options`).v.size) ctx.warn(`${o.file}:${o.line}: ${q}.options: ignored (the local log driver takes no options)`);
        break;
      }
      case 'deploy': {
        if (v.v === null) break;
        const r = convertDeploy(v, q, spec, pending, ctx);
        hasRestartPolicy = r.restartPolicy;
        endpointMode = r.endpointMode;
        break;
      }
      case 'depends_on':
        dependsOn.push(...convertDependsOn(v, q, ctx));
        break;
      // Container options (issue 13): Docker's meaning, into the container spec (docs/container-options.md).
      case 'init':
        c.init = bool(v, q);
        break;
      case 'sysctls': {
        const out: Record<string, string> = {};
        for (const [sk, sv] of listOrDict(v, q)) {
          const why = sysctlRefusal(sk);
          if (why) throw stackError(sv.n, `${q}.${sk}`, why);
          out[sk.replace(/\//g, '.')] = sv.v ?? '';
        }
        c.sysctls = out;
        break;
      }
      case 'ulimits': {
        const um = mapOf(v, q);
        c.ulimits = [];
        for (const [uk, uv] of um.v) {
          if (!Object.prototype.hasOwnProperty.call(ULIMIT_NUMBERS, uk)) throw stackError(uv, `${q}.${uk}`, `${JSON.stringify(uk)} is not a ulimit (${Object.keys(ULIMIT_NUMBERS).join(', ')})`);
          if (isMapNode(uv)) {
            checkKeys(uv, `${q}.${uk}`, ['soft', 'hard']);
            const soft = uv.v.get('soft');
            const hard = uv.v.get('hard');
            if (!soft || !hard) throw stackError(uv, `${q}.${uk}`, 'needs soft and hard');
            const sv = int(soft, `${q}.${uk}.soft`, -1);
            const hv = int(hard, `${q}.${uk}.hard`, -1);
            if (hv !== -1 && (sv === -1 || sv > hv)) throw stackError(uv, `${q}.${uk}`, `the soft limit is above the hard one (${sv} > ${hv})`);
            c.ulimits.push({ name: uk, soft: sv, hard: hv });
          } else {
            const x = int(uv, `${q}.${uk}`, -1);
            c.ulimits.push({ name: uk, soft: x, hard: x });
          }
        }
        break;
      }
      case 'extra_hosts':
        // "name:ip" or "name=ip" (list), or name: ip (mapping) → swarmkit's "ip name" lines.
        c.hosts = isSeqNode(v)
          ? v.v.map((e, i) => {
              const s = str(e, `${q}[${i}]`);
              const at = s.search(/[:=]/);
              if (at <= 0 || at === s.length - 1) throw stackError(e, `${q}[${i}]`, `${JSON.stringify(s)} is not HOST:IP`);
              return `${s.slice(at + 1).trim().replace(/^\[(.*)\]$/, '$1')} ${s.slice(0, at).trim()}`;
            })
          : [...listOrDict(v, q)].map(([h, e]) => `${String(e.v ?? '').trim()} ${h}`);
        break;
      case 'dns':
      case 'dns_search':
      case 'dns_opt': {
        const d = (c.dnsConfig ??= { nameservers: [], search: [], options: [] });
        d[k === 'dns' ? 'nameservers' : k === 'dns_search' ? 'search' : 'options'] = stringOrList(v, q);
        break;
      }
      case 'tty':
        c.tty = bool(v, q);
        break;
      case 'stdin_open':
        c.openStdin = bool(v, q);
        break;
      case 'privileged':
        c.privileged = bool(v, q);
        break;
      case 'devices':
        c.devices = strings(v, q).map((d, i) => {
          const parts = d.split(':');
          if (parts.length > 3 || !parts[0].startsWith('/')) throw stackError(v, `${q}[${i}]`, `${JSON.stringify(d)} is not HOST-PATH[:CONTAINER-PATH[:PERMISSIONS]]`);
          const permsOnly = parts.length === 2 && !parts[1].startsWith('/');
          return { pathOnHost: parts[0], pathInContainer: permsOnly ? '' : (parts[1] ?? ''), permissions: (permsOnly ? parts[1] : parts[2]) || 'rwm' };
        });
        break;
      case 'oom_score_adj':
        pending.oomScoreAdj = int(v, q, -1000, 1000);
        break;
      default:
        throw unknownKey(v, q, k, [...SERVICE_KEYS, ...NOT_YET_SERVICE_KEYS, ...Object.keys(WARNED_SERVICE_KEYS)]);
    }
  }

  if (!c.image) throw stackError(n, p, 'image is required (stack deploy does not build images)');

  // Keys Convoy cannot honour yet: refused by name rather than dropped.
  const notYet: [keyof PendingOptions, string][] = [['oomScoreAdj', 'oom_score_adj']];
  for (const [field, yamlKey] of notYet) {
    if (pending[field] === undefined) continue;
    // false/empty values ask for Docker's default, which is Convoy's behaviour: nothing to refuse.
    const v: unknown = pending[field];
    if (v === false || (Array.isArray(v) && !v.length) || (typeof v === 'object' && v !== null && !Array.isArray(v) && !Object.keys(v).length)) continue;
    throw stackError(m.v.get(yamlKey)!, `${p}.${yamlKey}`, `not supported yet: Convoy's service spec has no ${yamlKey} field yet`);
  }

  if (jobExt) convertJobExtension(jobExt, `${p}.${JOB_EXTENSION}`, spec);

  // Restart: deploy.restart_policy, else Docker's conversion of `restart:`.
  if (!hasRestartPolicy && restartKey) {
    const r = str(restartKey, `${p}.restart`);
    const mm = /^(no|always|unless-stopped|on-failure)(?::(\d+))?$/.exec(r);
    if (!mm) throw stackError(restartKey, `${p}.restart`, `${JSON.stringify(r)} is not no, always, unless-stopped or on-failure[:N]`);
    spec.restart = {
      ...DEFAULT_RESTART_POLICY,
      condition: mm[1] === 'no' ? 'RESTART_NONE' : mm[1] === 'on-failure' ? 'RESTART_ON_FAILURE' : 'RESTART_ANY',
      maxAttempts: mm[2] ? Number(mm[2]) : 0,
    };
  }

  // Environment: env_file entries first, then environment; a variable without value comes from the environment.
  const envList: string[] = [];
  for (const f of envFiles) {
    const abs = path.resolve(ctx.env.workingDir, f);
    let text: Buffer;
    try {
      text = ctx.env.readFile(abs);
    } catch (e) {
      throw stackError(m.v.get('env_file'), `${p}.env_file`, `cannot read ${abs}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
    if (text.length > STACK_LIMITS.envFileBytes) throw stackError(m.v.get('env_file'), `${p}.env_file`, `${abs} is larger than ${STACK_LIMITS.envFileBytes / 1024} KiB`);
    const lookupEnv: NodeJS.ProcessEnv = new Proxy({}, { get: (_, k) => (typeof k === 'string' ? ctx.env.lookup(k) : undefined) });
    try {
      envList.push(...parseEnvFile(text.toString('utf8'), lookupEnv, abs));
    } catch (e) {
      throw stackError(m.v.get('env_file'), `${p}.env_file`, (e as Error).message);
    }
  }
  for (const [ek, ev] of environment) {
    if (ev.v !== null) envList.push(`${ek}=${ev.v}`);
    else {
      const val = ctx.env.lookup(ek);
      if (val === undefined) ctx.warn(`${ev.n.file}:${ev.n.line}: ${p}.environment.${ek}: not set in the environment, left out`);
      else envList.push(`${ek}=${val}`);
    }
  }
  const byKey = new Map<string, string>();
  for (const e of envList) byKey.set(e.split('=', 1)[0], e);
  c.env = [...byKey.values()].sort();

  // Networks: the stack's names; every network gets the service's short name as an alias (Swarm's short-name DNS).
  spec.networks = networkKeys.map((nk) => ctx.networks.get(nk)?.name ?? `${stack}_default`);
  spec.networkAliases = networkKeys.map((nk) => ({ network: ctx.networks.get(nk)?.name ?? `${stack}_default`, aliases: [...new Set([...(aliases.get(nk) ?? []), key])] }));
  if (ports.length || endpointMode !== 'VIP') spec.endpoint = { mode: endpointMode, ports };

  return {
    planned: { key, name, spec, secrets, configs, dependsOn, pending, file: n.file, line: n.line },
    networkKeys,
  };
}

const PORT_MODES = ['host', 'ingress'] as const;

/** One ports: entry → its port configs (a range gives several). */
function convertPort(e: YNode, p: string): PortConfig[] {
  if (isMapNode(e)) {
    checkKeys(e, p, ['target', 'published', 'protocol', 'mode']);
    const t = e.v.get('target');
    if (!t) throw stackError(e, p, 'target is required');
    const pub = e.v.get('published');
    const proto = e.v.get('protocol');
    const mode = e.v.get('mode');
    const protocol = proto ? oneOf(proto, `${p}.protocol`, ['tcp', 'udp'] as const) : 'tcp';
    return [
      {
        name: '',
        protocol,
        targetPort: int(t, `${p}.target`, 1, 65535),
        publishedPort: pub ? (typeof pub.v === 'string' && /^\d+$/.test(pub.v) ? int({ ...pub, v: Number(pub.v) }, `${p}.published`, 1, 65535) : int(pub, `${p}.published`, 1, 65535)) : 0,
        publishMode: mode ? (oneOf(mode, `${p}.mode`, PORT_MODES) === 'host' ? 'HOST' : 'INGRESS') : 'INGRESS',
      },
    ];
  }
  const s = strOrNum(e, p);
  const mm = /^(?:(?:(\[[^\]]+\]|[\d.]+):)?(\d+)(?:-(\d+))?:)?(\d+)(?:-(\d+))?(?:\/(tcp|udp))?$/.exec(s);
  if (!mm) throw stackError(e, p, `${JSON.stringify(s)} is not a port mapping (e.g. 80, 8080:80, 8080:80/udp, 8000-8002:80-82)`);
  const [, ip, pubA, pubB, tA, tB, proto = 'tcp'] = mm;
  if (ip) throw stackError(e, p, `${JSON.stringify(s)}: publishing on one host address is not supported (swarm-mode ports listen on every node)`);
  const port = (x: string) => {
    const v = Number(x);
    if (v < 1 || v > 65535) throw stackError(e, p, `${JSON.stringify(s)}: ${x} is not a port number 1..65535`);
    return v;
  };
  const t0 = port(tA);
  const t1 = tB ? port(tB) : t0;
  if (t1 < t0) throw stackError(e, p, `${JSON.stringify(s)}: the range ends before it starts`);
  const count = t1 - t0 + 1;
  if (count > STACK_LIMITS.portRange) throw stackError(e, p, `${JSON.stringify(s)}: a range of at most ${STACK_LIMITS.portRange} ports`);
  let published: number[] = Array<number>(count).fill(0);
  if (pubA) {
    const p0 = port(pubA);
    const p1 = pubB ? port(pubB) : p0;
    if (p1 - p0 + 1 !== count) throw stackError(e, p, `${JSON.stringify(s)}: the published and target ranges differ in size`);
    published = Array.from({ length: count }, (_, i) => p0 + i);
  }
  return Array.from({ length: count }, (_, i) => ({ name: '', protocol: proto, targetPort: t0 + i, publishedPort: published[i], publishMode: 'INGRESS' as const }));
}

function convertVolume(e: YNode, p: string, ctx: ServiceContext): Mount {
  const named = (src: string, node: YNode, q: string) => {
    const def = ctx.volumes.get(src);
    if (!def) throw stackError(node, q, `volume ${JSON.stringify(src)} is not defined in the top-level volumes`);
    return def.name;
  };
  const bindPath = (src: string) => {
    const expanded = src.startsWith('~') && ctx.env.home ? ctx.env.home + src.slice(1) : src;
    return path.isAbsolute(expanded) ? path.normalize(expanded) : path.resolve(ctx.env.workingDir, expanded);
  };
  if (typeof e.v === 'string') {
    const parts = e.v.split(':');
    if (parts.length > 3 || parts.some((x) => !x)) throw stackError(e, p, `${JSON.stringify(e.v)} is not SOURCE:TARGET[:MODE] or TARGET`);
    if (parts.length === 1) {
      if (!parts[0].startsWith('/')) throw stackError(e, p, `${JSON.stringify(e.v)}: the target must be an absolute path`);
      return { type: 'VOLUME', source: '', target: parts[0], readOnly: false, tmpfsSizeBytes: 0 };
    }
    const [src, target, mode = ''] = parts;
    if (!target.startsWith('/')) throw stackError(e, p, `${JSON.stringify(target)}: the target must be an absolute path`);
    let readOnly = false;
    for (const o of mode ? mode.split(',') : []) {
      if (o === 'ro') readOnly = true;
      else if (o === 'rw') readOnly = false;
      else if (['z', 'Z', 'nocopy', 'rprivate', 'private', 'rshared', 'shared', 'rslave', 'slave', 'consistent', 'cached', 'delegated'].includes(o))
        ctx.warn(`${e.file}:${e.line}: ${p}: mode ${o} ignored`);
      else throw stackError(e, p, `${JSON.stringify(o)} is not a volume mode (ro, rw)`);
    }
    const isPath = /^[./~]/.test(src);
    return isPath
      ? { type: 'BIND', source: bindPath(src), target, readOnly, tmpfsSizeBytes: 0 }
      : { type: 'VOLUME', source: named(src, e, p), target, readOnly, tmpfsSizeBytes: 0 };
  }
  const m = mapOf(e, p);
  checkKeys(m, p, ['type', 'source', 'target', 'read_only', 'consistency', 'bind', 'volume', 'tmpfs']);
  const tn = m.v.get('type');
  if (!tn) throw stackError(e, p, 'type is required (bind, volume or tmpfs)');
  const type = oneOf(tn, `${p}.type`, ['bind', 'volume', 'tmpfs'] as const);
  const tg = m.v.get('target');
  if (!tg) throw stackError(e, p, 'target is required');
  const target = str(tg, `${p}.target`);
  if (!target.startsWith('/')) throw stackError(tg, `${p}.target`, 'must be an absolute path');
  const srcN = m.v.get('source');
  const src = srcN ? str(srcN, `${p}.source`) : '';
  const ro = m.v.get('read_only');
  const mount: Mount = { type: type === 'bind' ? 'BIND' : type === 'volume' ? 'VOLUME' : 'TMPFS', source: '', target, readOnly: ro ? bool(ro, `${p}.read_only`) : false, tmpfsSizeBytes: 0 };
  for (const sub of ['bind', 'volume', 'tmpfs'] as const) {
    const sn = m.v.get(sub);
    if (!sn) continue;
    if (sub !== type) throw stackError(sn, `${p}.${sub}`, `only for type ${sub}`);
    const sm = mapOf(sn, `${p}.${sub}`);
    if (sub === 'bind') {
      checkKeys(sm, `${p}.bind`, ['propagation']);
      const pr = sm.v.get('propagation');
      if (pr && str(pr, `${p}.bind.propagation`) !== 'rprivate') throw stackError(pr, `${p}.bind.propagation`, 'not supported (mounts are rprivate)');
    } else if (sub === 'volume') {
      checkKeys(sm, `${p}.volume`, ['nocopy']);
      const nc = sm.v.get('nocopy');
      if (nc) bool(nc, `${p}.volume.nocopy`);
    } else {
      checkKeys(sm, `${p}.tmpfs`, ['size']);
      const sz = sm.v.get('size');
      if (sz) mount.tmpfsSizeBytes = typeof sz.v === 'number' ? int(sz, `${p}.tmpfs.size`) : size(sz, `${p}.tmpfs.size`);
    }
  }
  if (type === 'bind') {
    if (!src) throw stackError(e, p, 'a bind mount needs a source');
    mount.source = bindPath(src);
  } else if (type === 'volume') mount.source = src ? named(src, srcN!, `${p}.source`) : '';
  else if (src) throw stackError(srcN, `${p}.source`, 'a tmpfs mount has no source');
  return mount;
}

function convertFileRef(e: YNode, p: string, kind: 'secrets' | 'configs', defs: Map<string, PlannedFileObject>): FileRef {
  let source: string;
  let target = '';
  let uid = 0;
  let gid = 0;
  let mode = 0o444;
  let at: YNode = e;
  if (typeof e.v === 'string') source = e.v;
  else {
    const m = mapOf(e, p);
    checkKeys(m, p, ['source', 'target', 'uid', 'gid', 'mode']);
    const s = m.v.get('source');
    if (!s) throw stackError(e, p, 'source is required');
    source = str(s, `${p}.source`);
    at = s;
    const t = m.v.get('target');
    if (t) target = str(t, `${p}.target`);
    const u = m.v.get('uid');
    if (u) uid = int({ ...u, v: typeof u.v === 'string' && /^\d+$/.test(u.v) ? Number(u.v) : u.v }, `${p}.uid`, 0, 2 ** 32 - 1);
    const g = m.v.get('gid');
    if (g) gid = int({ ...g, v: typeof g.v === 'string' && /^\d+$/.test(g.v) ? Number(g.v) : g.v }, `${p}.gid`, 0, 2 ** 32 - 1);
    const md = m.v.get('mode');
    if (md) mode = int(md, `${p}.mode`, 0, 0o777);
  }
  const def = defs.get(source);
  if (!def) throw stackError(at, p, `${kind === 'secrets' ? 'secret' : 'config'} ${JSON.stringify(source)} is not defined in the top-level ${kind}`);
  if (!target) target = kind === 'secrets' ? `/run/secrets/${source}` : `/${source}`;
  else if (!target.startsWith('/')) target = kind === 'secrets' ? `/run/secrets/${target}` : `/${target}`;
  if (path.posix.normalize(target) !== target || target.includes('\0')) throw stackError(at, `${p}.target`, `${JSON.stringify(target)} is not a clean absolute path`);
  return { name: def.name, target, uid, gid, mode };
}

function convertHealthcheck(v: YNode, p: string): HealthConfig {
  const m = mapOf(v, p);
  checkKeys(m, p, ['test', 'interval', 'timeout', 'retries', 'start_period', 'start_interval', 'disable']);
  const h: HealthConfig = { test: [], intervalMs: 0, timeoutMs: 0, retries: 0, startPeriodMs: 0 };
  const dis = m.v.get('disable');
  if (dis && bool(dis, `${p}.disable`)) {
    if (Array.from(m.v.keys()).some((k) => k !== 'disable')) throw stackError(dis, `${p}.disable`, 'disable: true takes no other healthcheck keys');
    return { ...h, test: ['NONE'] };
  }
  for (const [k, x] of m.v) {
    const q = `${p}.${k}`;
    switch (k) {
      case 'test':
        if (typeof x.v === 'string') h.test = ['CMD-SHELL', x.v];
        else {
          h.test = strings(x, q);
          if (h.test.length && !['CMD', 'CMD-SHELL', 'NONE'].includes(h.test[0])) throw stackError(x, q, 'a list must start with CMD, CMD-SHELL or NONE');
          if (h.test[0] && h.test[0] !== 'NONE' && h.test.length < 2) throw stackError(x, q, `${h.test[0]} needs a command`);
        }
        break;
      case 'interval':
        h.intervalMs = duration(x, q);
        break;
      case 'timeout':
        h.timeoutMs = duration(x, q);
        break;
      case 'start_period':
        h.startPeriodMs = duration(x, q);
        break;
      case 'retries':
        h.retries = int(x, q, 0, 2 ** 32 - 1);
        break;
      case 'start_interval':
        throw stackError(x, q, "not supported yet: Convoy's health check has no start interval");
    }
  }
  return h;
}

function updateConfig(v: YNode, p: string, rollback: boolean): UpdateConfig {
  const m = mapOf(v, p);
  checkKeys(m, p, ['parallelism', 'delay', 'failure_action', 'monitor', 'max_failure_ratio', 'order']);
  // As Docker: parallelism 1 unless given; the rest Docker's defaults.
  const u: UpdateConfig = { ...DEFAULT_UPDATE_CONFIG, parallelism: 1 };
  for (const [k, x] of m.v) {
    const q = `${p}.${k}`;
    if (k === 'parallelism') u.parallelism = int(x, q, 0, 2 ** 32 - 1);
    else if (k === 'delay') u.delayMs = duration(x, q);
    else if (k === 'monitor') u.monitorMs = duration(x, q);
    else if (k === 'max_failure_ratio') {
      u.maxFailureRatio = num(x, q);
      if (u.maxFailureRatio < 0 || u.maxFailureRatio > 1) throw stackError(x, q, 'must be between 0 and 1');
    } else if (k === 'order') u.order = oneOf(x, q, ['start-first', 'stop-first'] as const) === 'start-first' ? 'START_FIRST' : 'STOP_FIRST';
    else if (k === 'failure_action') {
      const a = oneOf(x, q, rollback ? (['continue', 'pause'] as const) : (['continue', 'rollback', 'pause'] as const));
      u.failureAction = a === 'continue' ? 'FAILURE_CONTINUE' : a === 'rollback' ? 'FAILURE_ROLLBACK' : 'FAILURE_PAUSE';
    }
  }
  return u;
}

function convertDeploy(v: YNode, p: string, spec: ServiceSpec, pending: PendingOptions, ctx: ServiceContext): { restartPolicy: boolean; endpointMode: 'VIP' | 'DNSRR' } {
  const m = mapOf(v, p);
  checkKeys(m, p, ['mode', 'replicas', 'labels', 'endpoint_mode', 'placement', 'resources', 'restart_policy', 'update_config', 'rollback_config']);
  let restartPolicy = false;
  let endpointMode: 'VIP' | 'DNSRR' = 'VIP';
  let replicasNode: YNode | undefined;
  for (const [k, x] of m.v) {
    const q = `${p}.${k}`;
    switch (k) {
      case 'mode': {
        const mode = oneOf(x, q, ['replicated', 'global', 'replicated-job', 'global-job'] as const);
        if (mode === 'global') spec.mode = 'GLOBAL';
        // Jobs (docs/jobs.md): run to completion; x-convoy-job adds a schedule.
        else if (mode === 'replicated-job') spec.mode = 'REPLICATED_JOB';
        else if (mode === 'global-job') spec.mode = 'GLOBAL_JOB';
        break;
      }
      case 'replicas':
        replicasNode = x;
        spec.replicas = int(x, q, 0, 1_000_000);
        break;
      case 'labels':
        spec.labels = { ...labels(x, q), ...ctx.nsLabel };
        break;
      case 'endpoint_mode':
        endpointMode = oneOf(x, q, ['vip', 'dnsrr'] as const) === 'dnsrr' ? 'DNSRR' : 'VIP';
        break;
      case 'placement': {
        const pm = mapOf(x, q);
        checkKeys(pm, q, ['constraints', 'preferences', 'max_replicas_per_node', PLACEMENT_STRATEGY_KEY]);
        const pl = { constraints: [] as string[], preferences: [] as string[], maxReplicasPerNode: 0, platforms: [], strategy: 'SPREAD' as 'SPREAD' | 'BINPACK' };
        for (const [pk, pv] of pm.v) {
          const r = `${q}.${pk}`;
          if (pk === 'constraints') pl.constraints = strings(pv, r);
          // Convoy's own (Swarm has spread only): docs/stacks.md, docs/scheduling.md.
          else if (pk === PLACEMENT_STRATEGY_KEY) pl.strategy = oneOf(pv, r, ['spread', 'binpack'] as const) === 'binpack' ? 'BINPACK' : 'SPREAD';
          else if (pk === 'max_replicas_per_node') pl.maxReplicasPerNode = int(pv, r, 0, 2 ** 32 - 1);
          else {
            if (!isSeqNode(pv)) throw wrongType(pv, r, 'a list of {spread: LABEL}');
            pl.preferences = pv.v.map((e, i) => {
              const em = mapOf(e, `${r}[${i}]`);
              checkKeys(em, `${r}[${i}]`, ['spread']);
              const sp = em.v.get('spread');
              if (!sp) throw stackError(e, `${r}[${i}]`, 'spread is required');
              return str(sp, `${r}[${i}].spread`);
            });
          }
        }
        spec.placement = pl;
        break;
      }
      case 'resources': {
        const rm = mapOf(x, q);
        checkKeys(rm, q, ['limits', 'reservations', 'memory_swap', 'memory_swappiness']);
        const zero = () => ({ nanoCpus: 0, memoryBytes: 0, pids: 0 });
        const res = { limits: zero(), reservations: zero() };
        for (const [rk, rv] of rm.v) {
          const r = `${q}.${rk}`;
          if (rk === 'memory_swap' || rk === 'memory_swappiness') throw stackError(rv, r, 'not supported yet: Convoy sets no swap limits');
          const lm = mapOf(rv, r);
          checkKeys(lm, r, rk === 'limits' ? ['cpus', 'memory', 'pids'] : ['cpus', 'memory', 'generic_resources', 'devices']);
          const target = rk === 'limits' ? res.limits : res.reservations;
          for (const [lk, lv] of lm.v) {
            const s = `${r}.${lk}`;
            if (lk === 'cpus') target.nanoCpus = cpus(lv, s);
            else if (lk === 'memory') target.memoryBytes = size(lv, s);
            else if (lk === 'pids') target.pids = int(lv, s);
            else throw stackError(lv, s, 'not supported yet: Convoy schedules no generic resources or devices');
          }
        }
        spec.resources = res;
        break;
      }
      case 'restart_policy': {
        const rm = mapOf(x, q);
        checkKeys(rm, q, ['condition', 'delay', 'max_attempts', 'window']);
        const r = { ...DEFAULT_RESTART_POLICY };
        for (const [rk, rv] of rm.v) {
          const s = `${q}.${rk}`;
          if (rk === 'condition') {
            const cond = oneOf(rv, s, ['none', 'on-failure', 'any'] as const);
            r.condition = cond === 'none' ? 'RESTART_NONE' : cond === 'on-failure' ? 'RESTART_ON_FAILURE' : 'RESTART_ANY';
          } else if (rk === 'delay') r.delayMs = duration(rv, s);
          else if (rk === 'max_attempts') r.maxAttempts = int(rv, s, 0, 2 ** 32 - 1);
          else r.windowMs = duration(rv, s);
        }
        spec.restart = r;
        restartPolicy = true;
        break;
      }
      case 'update_config':
        spec.update = updateConfig(x, q, false);
        break;
      case 'rollback_config':
        spec.rollback = updateConfig(x, q, true);
        break;
    }
  }
  if (spec.mode === 'GLOBAL' || spec.mode === 'GLOBAL_JOB') {
    if (replicasNode) throw stackError(replicasNode, `${p}.replicas`, `replicas can only be used with replicated${spec.mode === 'GLOBAL_JOB' ? '-job' : ''} mode`);
    spec.replicas = 0;
  }
  return { restartPolicy, endpointMode };
}

const CONDITIONS: readonly DependsCondition[] = ['service_started', 'service_healthy', 'service_completed_successfully'];

function convertDependsOn(v: YNode, p: string, ctx: ServiceContext): PlannedService['dependsOn'] {
  if (isSeqNode(v)) return strings(v, p).map((s) => ({ service: s, condition: 'service_started' as const }));
  const m = mapOf(v, p);
  const out: PlannedService['dependsOn'] = [];
  for (const [k, x] of m.v) {
    const q = `${p}.${k}`;
    const dm = mapOf(x, q);
    checkKeys(dm, q, ['condition', 'restart', 'required']);
    const cond = dm.v.get('condition');
    const r = dm.v.get('restart');
    if (r && bool(r, `${q}.restart`)) ctx.warn(`${r.file}:${r.line}: ${q}.restart: ignored (dependants are not restarted with their dependency)`);
    const req = dm.v.get('required');
    if (req && !bool(req, `${q}.required`)) continue;
    out.push({ service: k, condition: cond ? oneOf(cond, `${q}.condition`, CONDITIONS) : 'service_started' });
  }
  return out;
}

/**
 * `x-convoy-job` (docs/jobs.md): what a job takes beyond compose's
 * `deploy.mode: replicated-job|global-job`: max_concurrent, a cron
 * schedule, its time zone, the concurrency policy, the history limit and the
 * starting deadline. Only with a job mode; the manager checks the schedule.
 */
export const JOB_EXTENSION = 'x-convoy-job';
const JOB_KEYS = ['max_concurrent', 'schedule', 'timezone', 'concurrency_policy', 'history_limit', 'starting_deadline'] as const;

function convertJobExtension(v: YNode, p: string, spec: ServiceSpec): void {
  if (spec.mode !== 'REPLICATED_JOB' && spec.mode !== 'GLOBAL_JOB') throw stackError(v, p, 'only with deploy.mode replicated-job or global-job');
  const m = mapOf(v, p);
  checkKeys(m, p, JOB_KEYS);
  const j: NonNullable<ServiceSpec['job']> = { maxConcurrent: 0, schedule: '', timezone: '', concurrencyPolicy: 'CONCURRENCY_ALLOW', historyLimit: 0, startingDeadlineMs: 0 };
  for (const [k, x] of m.v) {
    const q = `${p}.${k}`;
    switch (k) {
      case 'max_concurrent':
        if (spec.mode === 'GLOBAL_JOB') throw stackError(x, q, 'not allowed with deploy.mode global-job (one task per node)');
        j.maxConcurrent = int(x, q, 0, 1_000_000);
        break;
      case 'schedule':
        j.schedule = str(x, q).trim();
        break;
      case 'timezone':
        j.timezone = str(x, q).trim();
        break;
      case 'concurrency_policy': {
        const c = oneOf(x, q, ['allow', 'forbid', 'replace'] as const);
        j.concurrencyPolicy = c === 'forbid' ? 'CONCURRENCY_FORBID' : c === 'replace' ? 'CONCURRENCY_REPLACE' : 'CONCURRENCY_ALLOW';
        break;
      }
      case 'history_limit':
        j.historyLimit = int(x, q, 1, 100);
        break;
      case 'starting_deadline':
        j.startingDeadlineMs = duration(x, q);
        break;
    }
  }
  spec.job = j;
}
