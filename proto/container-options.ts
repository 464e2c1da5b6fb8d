// The container options of issue 13 (docs/container-options.md): the fields
// of ContainerSpec they add, their empty values (what every spec literal
// spreads), and the rules the CLI, the manager and the agent share: which
// sysctls are namespaced, which ulimits exist, how a hostname template reads.
import type { ContainerSpec } from './mod';
import { DEFAULT_STOP_GRACE_MS } from './defaults';

export type ContainerOptions = Pick<ContainerSpec, 'init' | 'sysctls' | 'ulimits' | 'hosts' | 'dnsConfig' | 'tty' | 'openStdin' | 'privileged' | 'devices'>;

/** A fresh set of the options with nothing asked (Docker's defaults). */
export function noContainerOptions(): ContainerOptions {
  return { init: false, sysctls: {}, ulimits: [], hosts: [], dnsConfig: null, tty: false, openStdin: false, privileged: false, devices: [] };
}

/** A fresh ContainerSpec with every field present and nothing asked (the default stop grace period): what the CLI's specs and the stack converter start from. */
export function emptyContainerSpec(): ContainerSpec {
  return {
    image: '',
    command: [],
    args: [],
    env: [],
    dir: '',
    user: '',
    hostname: '',
    mounts: [],
    stopSignal: '',
    stopGracePeriodMs: DEFAULT_STOP_GRACE_MS,
    healthcheck: null,
    labels: {},
    capAdd: [],
    capDrop: [],
    readOnly: false,
    hostAccess: false,
    secrets: [],
    configs: [],
    withRegistryAuth: false,
    registryAuth: null,
    ...noContainerOptions(),
  };
}

/**
 * Sysctls a container may set: those the kernel keeps per namespace the
 * container has of its own (runc's validation, moby's
 * opts.ValidateSysctl): the IPC namespace's kernel.{msgmax,msgmnb,msgmni,
 * sem,shmall,shmmax,shmmni,shm_rmid_forced} and fs.mqueue.*, the network
 * namespace's net.*. Others would change the host for everyone: refused.
 */
const IPC_SYSCTLS = new Set(['kernel.msgmax', 'kernel.msgmnb', 'kernel.msgmni', 'kernel.sem', 'kernel.shmall', 'kernel.shmmax', 'kernel.shmmni', 'kernel.shm_rmid_forced']);
/** A sysctl name: dotted words (also '/' as a separator, as sysctl(8) takes them; normalised to dots). */
const SYSCTL_NAME_RE = /^[a-z0-9_]+([./][a-zA-Z0-9_-]+)+$/;

/** Why `name` may not be set in a container, or undefined when it may. */
export function sysctlRefusal(name: string): string | undefined {
  if (!SYSCTL_NAME_RE.test(name)) return `${JSON.stringify(name)} is not a sysctl name (e.g. net.core.somaxconn)`;
  const n = name.replace(/\//g, '.');
  if (n.split('.').some((p) => p === '' || p === '..' || p === '.')) return `${JSON.stringify(name)} is not a sysctl name`;
  if (IPC_SYSCTLS.has(n) || n.startsWith('fs.mqueue.') || n.startsWith('net.')) return undefined;
  return `${JSON.stringify(name)} is not namespaced: only net.*, fs.mqueue.* and kernel.{msgmax,msgmnb,msgmni,sem,shmall,shmmax,shmmni,shm_rmid_forced} can be set in a container (the others change the host)`;
}

/** setrlimit resources by Docker's names (ulimit names without RLIMIT_), with their numbers on Linux. */
export const ULIMIT_NUMBERS: Readonly<Record<string, number>> = Object.freeze({
  cpu: 0, fsize: 1, data: 2, stack: 3, core: 4, rss: 5, nproc: 6, nofile: 7, memlock: 8, as: 9,
  locks: 10, sigpending: 11, msgqueue: 12, nice: 13, rtprio: 14, rttime: 15,
});

/** The placeholders a hostname template may use (Docker's service templates that make sense in a hostname). */
export const HOSTNAME_PLACEHOLDERS = ['.Service.ID', '.Service.Name', '.Node.ID', '.Node.Hostname', '.Task.ID', '.Task.Name', '.Task.Slot'] as const;
export type HostnamePlaceholder = (typeof HOSTNAME_PLACEHOLDERS)[number];
const PLACEHOLDER_RE = /\{\{\s*([^{}]*?)\s*\}\}/g;

/** The parts of a hostname template: literal text and placeholders; an error for anything else ("{{.Foo}}", a lone "{{"). */
export function parseHostnameTemplate(t: string): { parts: (string | { key: HostnamePlaceholder })[] } | { error: string } {
  const parts: (string | { key: HostnamePlaceholder })[] = [];
  let last = 0;
  PLACEHOLDER_RE.lastIndex = 0;
  for (let m = PLACEHOLDER_RE.exec(t); m; m = PLACEHOLDER_RE.exec(t)) {
    const key = m[1] as HostnamePlaceholder;
    if (!HOSTNAME_PLACEHOLDERS.includes(key)) return { error: `{{${m[1]}}} is not a template placeholder (use ${HOSTNAME_PLACEHOLDERS.map((p) => `{{${p}}}`).join(', ')})` };
    if (m.index > last) parts.push(t.slice(last, m.index));
    parts.push({ key });
    last = m.index + m[0].length;
  }
  if (last < t.length) parts.push(t.slice(last));
  if (parts.some((p) => typeof p === 'string' && (p.includes('{{') || p.includes('}}')))) return { error: 'an unbalanced {{ or }}' };
  return { parts };
}

/** The values a template is rendered with (on the agent, per task). */
export type HostnameValues = Record<HostnamePlaceholder, string>;

/** Renders a template parsed by parseHostnameTemplate; a template with an error renders as given. */
export function renderHostnameTemplate(t: string, v: HostnameValues): string {
  const p = parseHostnameTemplate(t);
  if ('error' in p) return t;
  return p.parts.map((x) => (typeof x === 'string' ? x : v[x.key])).join('');
}
