// The container option flags of issue 13 (docs/container-options.md) with
// Docker's names and meaning, on `service create` and (-add/-rm where Docker
// has them) `service update`. Kept apart from flags.ts so that the rest of
// the flags change without touching these: flags.ts calls
// addContainerOptions, applyContainerCreate and applyContainerUpdate.
import { Option, type Command } from 'commander';
import type { DeviceMapping, Mount, ServiceSpec, Ulimit } from '../proto/mod';
import { sysctlRefusal, ULIMIT_NUMBERS } from '../proto/container-options';
import { CliError } from './client';
import { parseSize } from './flags';

type Container = NonNullable<ServiceSpec['container']>;

/** `service create`'s container option flags, as commander gives them. */
export interface ContainerCreateFlags {
  sysctl?: string[];
  ulimit?: string[];
  init?: boolean;
  tmpfs?: string[];
  host?: string[];
  dns?: string[];
  dnsSearch?: string[];
  dnsOption?: string[];
  tty?: boolean;
  privileged?: boolean;
  device?: string[];
}

/** `service update`'s: -add/-rm lists, and the booleans with their --no- forms. */
export interface ContainerUpdateFlags {
  sysctlAdd?: string[];
  sysctlRm?: string[];
  ulimitAdd?: string[];
  ulimitRm?: string[];
  hostAdd?: string[];
  hostRm?: string[];
  dnsAdd?: string[];
  dnsRm?: string[];
  dnsSearchAdd?: string[];
  dnsSearchRm?: string[];
  dnsOptionAdd?: string[];
  dnsOptionRm?: string[];
  deviceAdd?: string[];
  deviceRm?: string[];
  init?: boolean;
  tty?: boolean;
  privileged?: boolean;
}

// ---- values -----------------------------------------------------------------

/** "net.core.somaxconn=1024" → [name, value]; a sysctl that is not namespaced is refused by name. */
export function parseSysctl(s: string, flag = '--sysctl'): [string, string] {
  const i = s.indexOf('=');
  if (i <= 0) throw new CliError(`${flag}: "${s}" is not NAME=VALUE`);
  const k = s.slice(0, i).trim();
  const why = sysctlRefusal(k);
  if (why) throw new CliError(`${flag}: ${why}`);
  return [k.replace(/\//g, '.'), s.slice(i + 1)];
}

const limitValue = (v: string, flag: string, s: string): number => {
  if (v === '-1' || v === 'unlimited') return -1;
  if (!/^\d+$/.test(v) || !Number.isSafeInteger(Number(v))) throw new CliError(`${flag}: "${s}": ${JSON.stringify(v)} is not a number (or -1 for unlimited)`);
  return Number(v);
};

/** Docker's --ulimit: "nofile=1024:2048" (soft:hard) or "nofile=1024" (both). */
export function parseUlimit(s: string, flag = '--ulimit'): Ulimit {
  const m = /^([a-z]+)=([^:]+)(?::([^:]+))?$/.exec(s.trim());
  if (!m) throw new CliError(`${flag}: "${s}" is not NAME=SOFT[:HARD] (e.g. nofile=1024:2048)`);
  if (!Object.prototype.hasOwnProperty.call(ULIMIT_NUMBERS, m[1])) throw new CliError(`${flag}: "${m[1]}" is not a ulimit (${Object.keys(ULIMIT_NUMBERS).join(', ')})`);
  const soft = limitValue(m[2], flag, s);
  const hard = m[3] === undefined ? soft : limitValue(m[3], flag, s);
  if (hard !== -1 && (soft === -1 || soft > hard)) throw new CliError(`${flag}: "${s}": the soft limit is above the hard one`);
  return { name: m[1], soft, hard };
}

/** Docker's --host "name:ip" (also "name=ip") → the stored "ip name" line. An IPv6 address keeps its colons. */
export function parseHost(s: string, flag = '--host'): string {
  const i = s.search(/[:=]/);
  if (i <= 0 || i === s.length - 1) throw new CliError(`${flag}: "${s}" is not HOST:IP`);
  const name = s.slice(0, i).trim();
  const ip = s.slice(i + 1).trim().replace(/^\[(.*)\]$/, '$1');
  if (/\s/.test(name) || !name) throw new CliError(`${flag}: "${s}" is not HOST:IP`);
  return `${ip} ${name}`;
}

/** The host name of a stored "ip name" line (what --host-rm names). */
const hostNameOf = (line: string) => line.split(/\s+/)[1] ?? '';

/** Options of --tmpfs PATH[:OPTIONS] that Convoy applies or already has (nosuid and nodev are always on). */
const TMPFS_OPTIONS = ['size', 'ro', 'rw', 'nosuid', 'nodev'];

/** Docker's --tmpfs "/run:size=64m,ro" → a tmpfs mount (its size bounded: docs/container-options.md). */
export function parseTmpfs(s: string, flag = '--tmpfs'): Mount {
  const i = s.indexOf(':');
  const target = (i < 0 ? s : s.slice(0, i)).trim();
  if (!target.startsWith('/')) throw new CliError(`${flag}: "${s}": the path must be absolute`);
  const m: Mount = { type: 'TMPFS', source: '', target, readOnly: false, tmpfsSizeBytes: 0 };
  if (i < 0) return m;
  for (const o of s.slice(i + 1).split(',').map((x) => x.trim()).filter(Boolean)) {
    const [k, v] = o.split('=', 2);
    if (!TMPFS_OPTIONS.includes(k)) throw new CliError(`${flag}: "${s}": option "${k}" is not supported (use ${TMPFS_OPTIONS.join(', ')})`);
    if (k === 'size') m.tmpfsSizeBytes = parseSize(v ?? '', `${flag} size`);
    else if (k === 'ro') m.readOnly = true;
    else if (k === 'rw') m.readOnly = false;
  }
  return m;
}

/** Docker's --device "/dev/x[:/dev/y[:rwm]]". */
export function parseDevice(s: string, flag = '--device'): DeviceMapping {
  const parts = s.split(':');
  if (parts.length > 3 || !parts[0]) throw new CliError(`${flag}: "${s}" is not HOST-PATH[:CONTAINER-PATH[:PERMISSIONS]]`);
  const [pathOnHost, second = '', third = ''] = parts;
  // "/dev/x:rwm": the second field is permissions when it is not a path (as Docker).
  const perms = parts.length === 2 && !second.startsWith('/') ? second : third;
  const inC = parts.length === 2 && !second.startsWith('/') ? '' : second;
  if (!pathOnHost.startsWith('/')) throw new CliError(`${flag}: "${s}": the host path must be absolute`);
  if (inC && !inC.startsWith('/')) throw new CliError(`${flag}: "${s}": the container path must be absolute`);
  if (perms && !/^[rwm]{1,3}$/.test(perms)) throw new CliError(`${flag}: "${s}": permissions are a combination of r, w and m`);
  return { pathOnHost, pathInContainer: inC, permissions: perms || 'rwm' };
}

const dnsConfig = (c: Container) => (c.dnsConfig ??= { nameservers: [], search: [], options: [] });
const addUnique = (list: string[], add: string[]) => {
  for (const x of add) if (!list.includes(x)) list.push(x);
  return list;
};

// ---- create and update -------------------------------------------------------

/** The create flags onto a new spec's container (and its mounts, for --tmpfs). */
export function applyContainerCreate(c: Container, f: ContainerCreateFlags): void {
  if (f.sysctl?.length) c.sysctls = Object.fromEntries(f.sysctl.map((s) => parseSysctl(s)));
  if (f.ulimit?.length) {
    const byName = new Map<string, Ulimit>();
    for (const u of f.ulimit.map((s) => parseUlimit(s))) byName.set(u.name, u);
    c.ulimits = [...byName.values()];
  }
  if (f.init !== undefined) c.init = f.init;
  if (f.tmpfs?.length) c.mounts = [...c.mounts, ...f.tmpfs.map((s) => parseTmpfs(s))];
  if (f.host?.length) c.hosts = f.host.map((s) => parseHost(s));
  if (f.dns?.length) dnsConfig(c).nameservers = addUnique([], f.dns.map((x) => x.trim()));
  if (f.dnsSearch?.length) dnsConfig(c).search = addUnique([], f.dnsSearch.map((x) => x.trim()));
  if (f.dnsOption?.length) dnsConfig(c).options = addUnique([], f.dnsOption.map((x) => x.trim()));
  if (f.tty !== undefined) c.tty = f.tty;
  if (f.privileged !== undefined) c.privileged = f.privileged;
  if (f.device?.length) c.devices = f.device.map((s) => parseDevice(s));
}

/** The update flags onto the current spec's container: removals first, then additions (as Docker). */
export function applyContainerUpdate(c: Container, f: ContainerUpdateFlags): void {
  if (f.sysctlAdd?.length || f.sysctlRm?.length) {
    const out = { ...(c.sysctls ?? {}) };
    for (const k of f.sysctlRm ?? []) delete out[k.trim().replace(/\//g, '.')];
    for (const s of f.sysctlAdd ?? []) {
      const [k, v] = parseSysctl(s, '--sysctl-add');
      out[k] = v;
    }
    c.sysctls = out;
  }
  if (f.ulimitAdd?.length || f.ulimitRm?.length) {
    const rm = new Set((f.ulimitRm ?? []).map((x) => x.trim().split('=')[0]));
    const add = (f.ulimitAdd ?? []).map((s) => parseUlimit(s, '--ulimit-add'));
    c.ulimits = [...(c.ulimits ?? []).filter((u) => !rm.has(u.name) && !add.some((a) => a.name === u.name)), ...add];
  }
  if (f.hostAdd?.length || f.hostRm?.length) {
    // --host-rm takes "name" or "name:ip" (Docker's): removes the lines of that name.
    const rm = new Set((f.hostRm ?? []).map((x) => x.split(/[:=]/)[0].trim()));
    const add = (f.hostAdd ?? []).map((s) => parseHost(s, '--host-add'));
    c.hosts = [...(c.hosts ?? []).filter((h) => !rm.has(hostNameOf(h)) && !add.includes(h)), ...add];
  }
  const lists = [
    ['nameservers', f.dnsAdd, f.dnsRm],
    ['search', f.dnsSearchAdd, f.dnsSearchRm],
    ['options', f.dnsOptionAdd, f.dnsOptionRm],
  ] as const;
  for (const [k, add, rm] of lists) {
    if (!add?.length && !rm?.length) continue;
    const d = dnsConfig(c);
    d[k] = addUnique(
      d[k].filter((x) => !(rm ?? []).map((y) => y.trim()).includes(x)),
      (add ?? []).map((x) => x.trim()),
    );
  }
  if (c.dnsConfig && !c.dnsConfig.nameservers.length && !c.dnsConfig.search.length && !c.dnsConfig.options.length) c.dnsConfig = null;
  if (f.deviceAdd?.length || f.deviceRm?.length) {
    // --device-rm takes the host path (or the whole mapping, as Docker).
    const rm = new Set((f.deviceRm ?? []).map((x) => x.split(':')[0]));
    const add = (f.deviceAdd ?? []).map((s) => parseDevice(s, '--device-add'));
    c.devices = [...(c.devices ?? []).filter((d) => !rm.has(d.pathOnHost) && !add.some((a) => (a.pathInContainer || a.pathOnHost) === (d.pathInContainer || d.pathOnHost))), ...add];
  }
  if (f.init !== undefined) c.init = f.init;
  if (f.tty !== undefined) c.tty = f.tty;
  if (f.privileged !== undefined) c.privileged = f.privileged;
}

// ---- commander ---------------------------------------------------------------

export function addContainerOptions(cmd: Command, kind: 'create' | 'update'): void {
  const many = (flags: string, desc: string) => cmd.addOption(new Option(flags, desc).argParser((v: string, prev: string[] | undefined) => [...(prev ?? []), v]));
  const one = (flags: string, desc: string) => cmd.option(flags, desc);
  // The positive flags first: commander makes a --no- flag declared before its positive one default to true.
  one('--init', 'run an init as PID 1 that reaps zombies and forwards signals');
  one('-t, --tty', 'allocate a terminal for the process');
  one('--privileged', 'every capability, no seccomp filter (admins only, where the cluster allows it)');
  if (kind === 'create') {
    many('--sysctl <name=value>', 'namespaced kernel parameter: net.*, fs.mqueue.*, kernel.shm*/msg*/sem (repeatable)');
    many('--ulimit <name=soft[:hard]>', 'resource limit: nofile=1024:2048 (repeatable)');
    many('--tmpfs <path[:options]>', 'mount a tmpfs: /run:size=64m,ro (size default: the memory limit, else 64MiB) (repeatable)');
    many('--host <host:ip>', 'add a line to /etc/hosts (repeatable)');
    many('--dns <ip>', "DNS server the agent's DNS relays other names to (service names still resolve) (repeatable)");
    many('--dns-search <domain>', 'DNS search domain (repeatable)');
    many('--dns-option <option>', 'resolver option: ndots:2, timeout:1 (repeatable)');
    many('--device <host[:container[:rwm]]>', 'a host device in the containers (admins only, where the cluster allows it) (repeatable)');
  } else {
    many('--sysctl-add <name=value>', 'add or replace a sysctl (repeatable)');
    many('--sysctl-rm <name>', 'remove a sysctl (repeatable)');
    many('--ulimit-add <name=soft[:hard]>', 'add or replace a ulimit (repeatable)');
    many('--ulimit-rm <name>', 'remove a ulimit (repeatable)');
    many('--host-add <host:ip>', 'add a line to /etc/hosts (repeatable)');
    many('--host-rm <host>', 'remove the /etc/hosts lines of a host (repeatable)');
    many('--dns-add <ip>', 'add a DNS server (repeatable)');
    many('--dns-rm <ip>', 'remove a DNS server (repeatable)');
    many('--dns-search-add <domain>', 'add a DNS search domain (repeatable)');
    many('--dns-search-rm <domain>', 'remove a DNS search domain (repeatable)');
    many('--dns-option-add <option>', 'add a resolver option (repeatable)');
    many('--dns-option-rm <option>', 'remove a resolver option (repeatable)');
    many('--device-add <host[:container[:rwm]]>', 'add a host device (repeatable)');
    many('--device-rm <host-path>', 'remove a host device (repeatable)');
    one('--no-init', 'run the process as PID 1 again');
    one('--no-tty', 'no terminal again');
    one('--no-privileged', 'not privileged again');
  }
}
