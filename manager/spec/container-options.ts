// The container options of issue 13 (docs/container-options.md): reading
// their types (shape.ts calls readContainerOptions), their rules (validate.ts
// calls checkContainerOptions), and who may ask for the privileged ones
// (the Control API calls privilegeRefusal with the caller's role and the
// cluster's policy). Every error names its field; every list, map and
// string has a bound (limits.ts).
import { isIP } from 'node:net';
import type { ContainerSpec, ServiceSpec } from '../../proto/mod';
import { parseHostnameTemplate, sysctlRefusal, ULIMIT_NUMBERS, type ContainerOptions } from '../../proto/container-options';
import { keyPath, quote, type FieldError } from './errors';
import * as L from './limits';

type Msg = Record<string, unknown>;
/** The readers of shape.ts's Shape this module uses (structural: shape.ts imports this module). */
interface Shape {
  string(field: string, v: unknown): string;
  number(field: string, v: unknown): number;
  bool(field: string, v: unknown): boolean;
  message(field: string, v: unknown): Msg | null;
  strings(field: string, v: unknown): string[];
  stringMap(field: string, v: unknown): Record<string, string>;
  messages<T>(field: string, v: unknown, read: (f: string, m: Msg) => T): T[];
}

/** The options' fields of a container message, typed (absent = Docker's default). */
export function readContainerOptions(r: Shape, f: string, m: Msg): ContainerOptions {
  const dns = r.message(`${f}.dnsConfig`, m.dnsConfig);
  return {
    init: r.bool(`${f}.init`, m.init),
    sysctls: r.stringMap(`${f}.sysctls`, m.sysctls),
    ulimits: r.messages(`${f}.ulimits`, m.ulimits, (g, x) => ({ name: r.string(`${g}.name`, x.name), soft: r.number(`${g}.soft`, x.soft), hard: r.number(`${g}.hard`, x.hard) })),
    hosts: r.strings(`${f}.hosts`, m.hosts),
    dnsConfig: dns && {
      nameservers: r.strings(`${f}.dnsConfig.nameservers`, dns.nameservers),
      search: r.strings(`${f}.dnsConfig.search`, dns.search),
      options: r.strings(`${f}.dnsConfig.options`, dns.options),
    },
    tty: r.bool(`${f}.tty`, m.tty),
    openStdin: r.bool(`${f}.openStdin`, m.openStdin),
    privileged: r.bool(`${f}.privileged`, m.privileged),
    devices: r.messages(`${f}.devices`, m.devices, (g, x) => ({
      pathOnHost: r.string(`${g}.pathOnHost`, x.pathOnHost),
      pathInContainer: r.string(`${g}.pathInContainer`, x.pathInContainer),
      permissions: r.string(`${g}.permissions`, x.permissions),
    })),
  };
}

const bytes = (s: string) => Buffer.byteLength(s, 'utf8');
function tooLong(errs: FieldError[], field: string, v: string, max: number): boolean {
  if (v.length > max || bytes(v) > max) {
    errs.push({ field, message: `longer than ${max} bytes` });
    return true;
  }
  return false;
}
function tooMany(errs: FieldError[], field: string, n: number, max: number): boolean {
  if (n > max) {
    errs.push({ field, message: `at most ${max} entries (got ${n})` });
    return true;
  }
  return false;
}

/** A name in /etc/hosts or a search domain: dotted labels, no blank, no control character (a newline would add a line). */
const HOST_NAME_RE = /^[A-Za-z0-9_]([A-Za-z0-9_-]{0,62})(\.[A-Za-z0-9_]([A-Za-z0-9_-]{0,62}))*\.?$/;
const DNS_OPTION_RE = /^[a-z][a-z0-9_-]*(:\d{1,5})?$/;
/** The literal text of a hostname template: what a rendered name may hold around the placeholders. */
const TEMPLATE_TEXT_RE = /^[a-z0-9-]*$/;
/** A clean absolute path: no empty, '.' or '..' component, no trailing slash. */
const cleanAbsolute = (p: string) => p.startsWith('/') && p !== '/' && !p.endsWith('/') && !p.slice(1).split('/').some((x) => x === '' || x === '.' || x === '..');
/** Largest rlimit value: RLIM_INFINITY is asked for with -1 (as Docker's "-1" means unlimited). */
const ULIMIT_MAX = Number.MAX_SAFE_INTEGER;

function nameserverRefusal(ip: string): string | undefined {
  const v = isIP(ip);
  if (!v) return `${quote(ip)} is not an IP address`;
  const low = ip.toLowerCase();
  if ((v === 4 && (ip.startsWith('127.') || ip === '0.0.0.0')) || (v === 6 && (low === '::1' || low === '::')))
    return `${quote(ip)}: a loopback or unspecified address would be the agent's own host (the agent's DNS relays to it)`;
  return undefined;
}

/** A hostname, or a template whose literal parts are what a hostname holds. */
export function hostnameRefusal(h: string): string | undefined {
  if (bytes(h) > L.HOSTNAME_TEMPLATE_MAX_BYTES) return `longer than ${L.HOSTNAME_TEMPLATE_MAX_BYTES} bytes`;
  if (!h.includes('{{') && !h.includes('}}')) return undefined; // plain names: validate.ts's HOSTNAME_RE
  const p = parseHostnameTemplate(h);
  if ('error' in p) return `${quote(h)}: ${p.error}`;
  for (const x of p.parts) if (typeof x === 'string' && !TEMPLATE_TEXT_RE.test(x)) return `${quote(h)}: the text around the placeholders may hold only a-z, 0-9 and '-'`;
  return undefined;
}

/** The rules of the options; `c` is the container after readServiceSpec and withDefaults. */
export function checkContainerOptions(spec: ServiceSpec, c: ContainerSpec, errs: FieldError[]): void {
  const f = 'spec.container';
  // sysctls
  const sk = Object.keys(c.sysctls);
  if (!tooMany(errs, `${f}.sysctls`, sk.length, L.SYSCTLS_MAX))
    for (const k of sk) {
      const g = keyPath(`${f}.sysctls`, k);
      if (tooLong(errs, g, k, L.SYSCTL_NAME_MAX_BYTES)) continue;
      const why = sysctlRefusal(k);
      if (why) errs.push({ field: g, message: why });
      const v = c.sysctls[k];
      if (!tooLong(errs, g, v, L.SYSCTL_VALUE_MAX_BYTES) && (/[\0\n]/.test(v) || !v.trim())) errs.push({ field: g, message: 'the value must be one line, not empty' });
    }
  // ulimits
  if (!tooMany(errs, `${f}.ulimits`, c.ulimits.length, L.ULIMITS_MAX)) {
    const seen = new Set<string>();
    c.ulimits.forEach((u, i) => {
      const g = `${f}.ulimits[${i}]`;
      if (!Object.prototype.hasOwnProperty.call(ULIMIT_NUMBERS, u.name)) errs.push({ field: `${g}.name`, message: `${quote(u.name)} is not a ulimit (${Object.keys(ULIMIT_NUMBERS).join(', ')})` });
      else if (seen.has(u.name)) errs.push({ field: `${g}.name`, message: `${quote(u.name)} is given twice` });
      seen.add(u.name);
      let ok = true;
      for (const k of ['soft', 'hard'] as const)
        if (!Number.isInteger(u[k]) || u[k] < -1 || u[k] > ULIMIT_MAX) {
          errs.push({ field: `${g}.${k}`, message: `must be an integer from 0 to ${ULIMIT_MAX}, or -1 for unlimited (got ${String(u[k])})` });
          ok = false;
        }
      const lim = (x: number) => (x === -1 ? Infinity : x);
      if (ok && lim(u.soft) > lim(u.hard)) errs.push({ field: `${g}.soft`, message: `greater than the hard limit (${u.soft} > ${u.hard})` });
    });
  }
  // extra hosts: "IP name [alias...]"
  if (!tooMany(errs, `${f}.hosts`, c.hosts.length, L.HOSTS_MAX))
    c.hosts.forEach((h, i) => {
      const g = `${f}.hosts[${i}]`;
      if (tooLong(errs, g, h, L.HOST_ENTRY_MAX_BYTES)) return;
      const [ip, ...names] = h.split(/[ \t]+/).filter(Boolean);
      if (/[\r\n\0]/.test(h) || !ip || !names.length) errs.push({ field: g, message: `${quote(h)} is not "IP hostname [alias...]"` });
      else if (!isIP(ip)) errs.push({ field: g, message: `${quote(ip)} is not an IP address` });
      else {
        const bad = names.find((n) => n.length > L.HOSTNAME_MAX_BYTES || !HOST_NAME_RE.test(n));
        if (bad !== undefined) errs.push({ field: g, message: `${quote(bad)} is not a host name` });
      }
    });
  // DNS
  const d = c.dnsConfig;
  if (d) {
    if (!tooMany(errs, `${f}.dnsConfig.nameservers`, d.nameservers.length, L.DNS_SERVERS_MAX))
      d.nameservers.forEach((ns, i) => {
        const g = `${f}.dnsConfig.nameservers[${i}]`;
        if (tooLong(errs, g, ns, 64)) return;
        const why = nameserverRefusal(ns);
        if (why) errs.push({ field: g, message: why });
      });
    if (!tooMany(errs, `${f}.dnsConfig.search`, d.search.length, L.DNS_SEARCH_MAX))
      d.search.forEach((s, i) => {
        const g = `${f}.dnsConfig.search[${i}]`;
        if (!tooLong(errs, g, s, L.HOSTNAME_MAX_BYTES) && !HOST_NAME_RE.test(s)) errs.push({ field: g, message: `${quote(s)} is not a domain name` });
      });
    if (!tooMany(errs, `${f}.dnsConfig.options`, d.options.length, L.DNS_OPTIONS_MAX))
      d.options.forEach((o, i) => {
        const g = `${f}.dnsConfig.options[${i}]`;
        if (!tooLong(errs, g, o, L.DNS_OPTION_MAX_BYTES) && !DNS_OPTION_RE.test(o)) errs.push({ field: g, message: `${quote(o)} is not a resolver option (e.g. ndots:2, timeout:1, edns0)` });
      });
  }
  // devices
  if (!tooMany(errs, `${f}.devices`, c.devices.length, L.DEVICES_MAX)) {
    const targets = new Set<string>();
    c.devices.forEach((dv, i) => {
      const g = `${f}.devices[${i}]`;
      if (!tooLong(errs, `${g}.pathOnHost`, dv.pathOnHost, L.PATH_MAX_BYTES) && !(cleanAbsolute(dv.pathOnHost) && dv.pathOnHost.startsWith('/dev/')))
        errs.push({ field: `${g}.pathOnHost`, message: `${quote(dv.pathOnHost)} must be a clean absolute path under /dev/` });
      const inC = dv.pathInContainer || dv.pathOnHost;
      if (!tooLong(errs, `${g}.pathInContainer`, inC, L.PATH_MAX_BYTES)) {
        if (!cleanAbsolute(inC)) errs.push({ field: `${g}.pathInContainer`, message: `${quote(inC)} must be a clean absolute path` });
        else if (/^\/(proc|sys)(\/|$)/.test(inC)) errs.push({ field: `${g}.pathInContainer`, message: `${quote(inC)}: not under /proc or /sys` });
        else if (targets.has(inC)) errs.push({ field: `${g}.pathInContainer`, message: `${quote(inC)} is given twice` });
      }
      targets.add(inC);
      if (dv.permissions && !/^(?=.*r)(?=.*w)(?=.*m)[rwm]{3}$/.test(dv.permissions))
        errs.push({ field: `${g}.permissions`, message: `${quote(dv.permissions)}: only "rwm" (Convoy has no device cgroup to restrict a device to reading or writing)` });
    });
  }
  // tmpfs mounts: their pages count against the memory limit, so a size above it could never be used.
  const mem = spec.resources?.limits?.memoryBytes ?? 0;
  if (mem > 0)
    c.mounts.forEach((m, i) => {
      if (m.type === 'TMPFS' && m.tmpfsSizeBytes > mem) errs.push({ field: `spec.container.mounts[${i}].tmpfsSizeBytes`, message: `larger than the memory limit (${mem} bytes): tmpfs pages count against it` });
    });
}

/** Whether a spec asks for what only admins get where the cluster allows it. */
export function asksPrivilege(c: Pick<ContainerSpec, 'privileged' | 'devices'> | null | undefined): 'privileged' | 'devices' | undefined {
  if (c?.privileged) return 'privileged';
  if (c?.devices?.length) return 'devices';
  return undefined;
}

/**
 * Why the caller may not have this spec, or undefined: --privileged and
 * --device need an admin identity (role) and the cluster's policy
 * (Cluster.allowPrivileged). `kind`: which the API maps to
 * PERMISSION_DENIED (role) or FAILED_PRECONDITION (policy).
 */
export function privilegeRefusal(c: Pick<ContainerSpec, 'privileged' | 'devices'> | null | undefined, who: { role: string | undefined; id?: string }, allowPrivileged: boolean): { kind: 'role' | 'policy'; field: string; message: string } | undefined {
  const what = asksPrivilege(c);
  if (!what) return undefined;
  const field = `spec.container.${what}`;
  const ask = what === 'privileged' ? 'a privileged container' : 'host devices';
  if (who.role !== 'admin') return { kind: 'role', field, message: `${ask} may only be asked for by an admin identity (${who.role ? `the caller is ${who.role}${who.id ? ` "${who.id}"` : ''}` : 'the caller has no identity'})` };
  if (!allowPrivileged) return { kind: 'policy', field, message: `the cluster does not allow privileged containers or devices (an admin turns it on: convoy cluster update --allow-privileged)` };
  return undefined;
}
