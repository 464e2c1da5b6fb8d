// Linux capabilities by Docker's names, shared by the manager (a spec's
// cap_add/cap_drop are checked there), the CLI and the agent (which turns them
// into the numbers the native helper takes). Numbers from linux/capability.h.

/** Every capability this code knows, by number. */
export const CAPABILITIES: Readonly<Record<string, number>> = {
  CAP_CHOWN: 0,
  CAP_DAC_OVERRIDE: 1,
  CAP_DAC_READ_SEARCH: 2,
  CAP_FOWNER: 3,
  CAP_FSETID: 4,
  CAP_KILL: 5,
  CAP_SETGID: 6,
  CAP_SETUID: 7,
  CAP_SETPCAP: 8,
  CAP_LINUX_IMMUTABLE: 9,
  CAP_NET_BIND_SERVICE: 10,
  CAP_NET_BROADCAST: 11,
  CAP_NET_ADMIN: 12,
  CAP_NET_RAW: 13,
  CAP_IPC_LOCK: 14,
  CAP_IPC_OWNER: 15,
  CAP_SYS_MODULE: 16,
  CAP_SYS_RAWIO: 17,
  CAP_SYS_CHROOT: 18,
  CAP_SYS_PTRACE: 19,
  CAP_SYS_PACCT: 20,
  CAP_SYS_ADMIN: 21,
  CAP_SYS_BOOT: 22,
  CAP_SYS_NICE: 23,
  CAP_SYS_RESOURCE: 24,
  CAP_SYS_TIME: 25,
  CAP_SYS_TTY_CONFIG: 26,
  CAP_MKNOD: 27,
  CAP_LEASE: 28,
  CAP_AUDIT_WRITE: 29,
  CAP_AUDIT_CONTROL: 30,
  CAP_SETFCAP: 31,
  CAP_MAC_OVERRIDE: 32,
  CAP_MAC_ADMIN: 33,
  CAP_SYSLOG: 34,
  CAP_WAKE_ALARM: 35,
  CAP_BLOCK_SUSPEND: 36,
  CAP_AUDIT_READ: 37,
  CAP_PERFMON: 38,
  CAP_BPF: 39,
  CAP_CHECKPOINT_RESTORE: 40,
};

/** Docker's default set (moby's oci/caps/defaults.go), by name. */
export const DEFAULT_CAPABILITY_NAMES: readonly string[] = [
  'CAP_CHOWN',
  'CAP_DAC_OVERRIDE',
  'CAP_FSETID',
  'CAP_FOWNER',
  'CAP_MKNOD',
  'CAP_NET_RAW',
  'CAP_SETGID',
  'CAP_SETUID',
  'CAP_SETFCAP',
  'CAP_SETPCAP',
  'CAP_NET_BIND_SERVICE',
  'CAP_SYS_CHROOT',
  'CAP_KILL',
  'CAP_AUDIT_WRITE',
];

/** The special name of cap_add/cap_drop meaning every capability. */
export const ALL_CAPABILITIES = 'ALL';

/**
 * A name as Docker accepts it ("net_admin", "NET_ADMIN", "CAP_NET_ADMIN",
 * "all") in its canonical form ("CAP_NET_ADMIN", "ALL"); undefined when it
 * names no capability.
 */
export function canonicalCapability(name: string): string | undefined {
  const up = name.trim().toUpperCase();
  if (up === ALL_CAPABILITIES) return ALL_CAPABILITIES;
  const full = up.startsWith('CAP_') ? up : `CAP_${up}`;
  return Object.prototype.hasOwnProperty.call(CAPABILITIES, full) ? full : undefined;
}

/**
 * The capability set of a container, as Docker computes it from the default
 * set, cap_add and cap_drop (moby's caps.TweakCapabilities): ALL in cap_add
 * gives every capability but those dropped; ALL in cap_drop gives exactly
 * cap_add; otherwise the drops apply to the default set, then the adds (a
 * name in both is kept). Unknown names throw (the manager refuses them first).
 * Returns capability numbers, ascending.
 */
export function capabilitySet(capAdd: readonly string[], capDrop: readonly string[]): number[] {
  const norm = (list: readonly string[]) =>
    list.map((n) => {
      const c = canonicalCapability(n);
      if (!c) throw new Error(`unknown capability ${JSON.stringify(n)}`);
      return c;
    });
  const add = norm(capAdd);
  const drop = new Set(norm(capDrop));
  let names: string[];
  if (add.includes(ALL_CAPABILITIES)) names = Object.keys(CAPABILITIES).filter((c) => !drop.has(c));
  else if (drop.has(ALL_CAPABILITIES)) names = add;
  else names = [...DEFAULT_CAPABILITY_NAMES.filter((c) => !drop.has(c)), ...add];
  return [...new Set(names.map((c) => CAPABILITIES[c]))].sort((a, b) => a - b);
}
