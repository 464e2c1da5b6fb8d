// Cgroups for containers: one interface, a v1 driver (one hierarchy per
// controller, as on this project's CI machine) and a v2 driver (unified
// hierarchy, most current distributions). Every container's cgroup lives
// under a `convoy` parent so leftovers of a crashed agent are easy to find.
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';

export interface CgroupLimits {
  /** Hard memory limit; 0/undefined = unlimited. Swap is not allowed on top. */
  memoryBytes?: number;
  /** CPU quota in units of 1e-9 CPUs (Docker's --cpus × 1e9). */
  nanoCpus?: number;
  /** Relative CPU weight (Docker's cpu-shares, default 1024). */
  cpuShares?: number;
  /** Maximum number of tasks (processes and threads). */
  pids?: number;
}

export interface CgroupStats {
  cpuSeconds: number;
  memoryBytes: number;
  /** 0 when unlimited. */
  memoryLimitBytes: number;
  pids: number;
}

export interface CgroupDriver {
  readonly version: 1 | 2;
  /** Creates the cgroup `name` under the convoy parent with `limits`; returns the directories a process must join. */
  create(name: string, limits: CgroupLimits): Promise<string[]>;
  /** The directories of `name` (whether or not they exist). */
  paths(name: string): string[];
  /** How many processes of `name` the kernel OOM-killed. */
  oomKills(name: string): Promise<number>;
  /** How many times a fork was refused because of the pids limit. */
  pidsLimitHits(name: string): Promise<number>;
  stats(name: string): Promise<CgroupStats>;
  /** Pids of every process in `name`. */
  procs(name: string): Promise<number[]>;
  /** SIGKILLs every process in `name`. */
  killAll(name: string): Promise<void>;
  /** Removes `name` (its processes must be gone; retries while the kernel still lists them). */
  remove(name: string): Promise<void>;
  /** Names of the cgroups under the convoy parent. */
  list(): Promise<string[]>;
}

export const CGROUP_PARENT = 'convoy';
export const DEFAULT_CFS_PERIOD_US = 100_000;
/** The kernel refuses quotas under 1ms. */
export const MIN_CFS_QUOTA_US = 1_000;
const REMOVE_RETRIES = 50;
const REMOVE_RETRY_MS = 20;
const UNLIMITED_V1 = 0x7ffffffffffff000; // what memory.limit_in_bytes reads when unlimited (page-rounded int64 max)

/** Devices a container may use (the devices cgroup of v1), as Docker's defaults. */
export const DEFAULT_DEVICE_RULES = [
  'c *:* m',
  'b *:* m',
  'c 1:3 rwm', // null
  'c 1:5 rwm', // zero
  'c 1:7 rwm', // full
  'c 1:8 rwm', // random
  'c 1:9 rwm', // urandom
  'c 5:0 rwm', // tty
  'c 5:1 rwm', // console
  'c 5:2 rwm', // ptmx
  'c 136:* rwm', // pts
  'c 10:200 rwm', // tun
];

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

function checkName(name: string): void {
  if (!NAME_RE.test(name)) throw new Error(`invalid cgroup name ${JSON.stringify(name)}`);
}

async function readText(p: string): Promise<string | undefined> {
  try {
    return await fsp.readFile(p, 'utf8');
  } catch {
    return undefined;
  }
}

async function readNumber(p: string): Promise<number> {
  const s = await readText(p);
  const n = s === undefined ? NaN : Number(s.trim());
  return Number.isFinite(n) ? n : 0;
}

/** "key value" lines (memory.events, cpu.stat, memory.oom_control, pids.events). */
export function parseKeyValues(text: string | undefined): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of (text ?? '').split('\n')) {
    const [k, v] = line.trim().split(/\s+/);
    if (k && v !== undefined) out.set(k, Number(v));
  }
  return out;
}

async function writeIfPresent(p: string, value: string, create: boolean): Promise<void> {
  if (!create && !fs.existsSync(p)) return;
  await fsp.writeFile(p, value);
}

async function killProcs(pids: number[]): Promise<void> {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone already
    }
  }
}

async function rmdirRetry(dir: string): Promise<void> {
  for (let i = 0; ; i++) {
    try {
      await fsp.rmdir(dir);
      return;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return;
      if (code !== 'EBUSY' || i >= REMOVE_RETRIES) throw e;
      await new Promise((r) => setTimeout(r, REMOVE_RETRY_MS));
    }
  }
}

function parseProcs(text: string | undefined): number[] {
  return (text ?? '')
    .split('\n')
    .map((s) => Number(s.trim()))
    .filter((n) => n > 0);
}

export function cfsQuotaUs(nanoCpus: number, periodUs = DEFAULT_CFS_PERIOD_US): number {
  return Math.max(MIN_CFS_QUOTA_US, Math.round((nanoCpus * periodUs) / 1e9));
}

/** Docker's conversion of cpu-shares (2..262144) to cgroup v2 cpu.weight (1..10000). */
export function sharesToWeight(shares: number): number {
  const s = Math.min(262144, Math.max(2, shares));
  return 1 + Math.floor(((s - 2) * 9999) / 262142); // integer maths, as runc
}

// ---------------------------------------------------------------- v1

export interface CgroupV1Options {
  /** Where the controller hierarchies are mounted. */
  root?: string;
  parent?: string;
}

export class CgroupV1Driver implements CgroupDriver {
  readonly version = 1 as const;
  private readonly root: string;
  private readonly parent: string;
  /** controller → hierarchy dir (co-mounted controllers share one) */
  private readonly dirs: Record<'memory' | 'cpu' | 'cpuacct' | 'pids' | 'devices', string | undefined>;

  constructor(opts: CgroupV1Options = {}) {
    this.root = opts.root ?? '/sys/fs/cgroup';
    this.parent = opts.parent ?? CGROUP_PARENT;
    const find = (ctrl: string): string | undefined => {
      const direct = path.join(this.root, ctrl);
      if (fs.existsSync(direct)) return fs.realpathSync(direct);
      for (const d of fs.existsSync(this.root) ? fs.readdirSync(this.root) : []) {
        if (d.split(',').includes(ctrl)) return fs.realpathSync(path.join(this.root, d));
      }
      return undefined;
    };
    this.dirs = { memory: find('memory'), cpu: find('cpu'), cpuacct: find('cpuacct'), pids: find('pids'), devices: find('devices') };
  }

  private hierarchies(): string[] {
    return [...new Set(Object.values(this.dirs).filter((d): d is string => !!d))];
  }

  private dir(ctrl: keyof CgroupV1Driver['dirs'], name: string): string | undefined {
    const h = this.dirs[ctrl];
    return h ? path.join(h, this.parent, name) : undefined;
  }

  paths(name: string): string[] {
    checkName(name);
    return this.hierarchies().map((h) => path.join(h, this.parent, name));
  }

  async create(name: string, limits: CgroupLimits): Promise<string[]> {
    const dirs = this.paths(name);
    for (const d of dirs) await fsp.mkdir(d, { recursive: true });
    const mem = this.dir('memory', name);
    if (mem && limits.memoryBytes && limits.memoryBytes > 0) {
      await fsp.writeFile(path.join(mem, 'memory.limit_in_bytes'), String(limits.memoryBytes));
      // no swap beyond the limit (memsw exists when swap accounting is on)
      await writeIfPresent(path.join(mem, 'memory.memsw.limit_in_bytes'), String(limits.memoryBytes), false);
    }
    const cpu = this.dir('cpu', name);
    if (cpu && limits.nanoCpus && limits.nanoCpus > 0) {
      await fsp.writeFile(path.join(cpu, 'cpu.cfs_period_us'), String(DEFAULT_CFS_PERIOD_US));
      await fsp.writeFile(path.join(cpu, 'cpu.cfs_quota_us'), String(cfsQuotaUs(limits.nanoCpus)));
    }
    if (cpu && limits.cpuShares && limits.cpuShares > 0) await fsp.writeFile(path.join(cpu, 'cpu.shares'), String(limits.cpuShares));
    const pids = this.dir('pids', name);
    if (pids && limits.pids && limits.pids > 0) await fsp.writeFile(path.join(pids, 'pids.max'), String(limits.pids));
    const dev = this.dir('devices', name);
    if (dev) {
      await fsp.writeFile(path.join(dev, 'devices.deny'), 'a');
      for (const rule of DEFAULT_DEVICE_RULES) await fsp.writeFile(path.join(dev, 'devices.allow'), rule);
    }
    return dirs;
  }

  async oomKills(name: string): Promise<number> {
    const mem = this.dir('memory', name);
    if (!mem) return 0;
    const kv = parseKeyValues(await readText(path.join(mem, 'memory.oom_control')));
    // oom_kill exists since Linux 4.13; before, a failcnt at the limit is the best hint
    if (kv.has('oom_kill')) return kv.get('oom_kill') ?? 0;
    return (kv.get('under_oom') ?? 0) > 0 ? 1 : 0;
  }

  async pidsLimitHits(name: string): Promise<number> {
    const p = this.dir('pids', name);
    return p ? (parseKeyValues(await readText(path.join(p, 'pids.events'))).get('max') ?? 0) : 0;
  }

  async stats(name: string): Promise<CgroupStats> {
    const mem = this.dir('memory', name);
    const acct = this.dir('cpuacct', name);
    const pids = this.dir('pids', name);
    const limit = mem ? await readNumber(path.join(mem, 'memory.limit_in_bytes')) : 0;
    return {
      cpuSeconds: acct ? (await readNumber(path.join(acct, 'cpuacct.usage'))) / 1e9 : 0,
      memoryBytes: mem ? await readNumber(path.join(mem, 'memory.usage_in_bytes')) : 0,
      memoryLimitBytes: limit >= UNLIMITED_V1 ? 0 : limit,
      pids: pids ? await readNumber(path.join(pids, 'pids.current')) : 0,
    };
  }

  async procs(name: string): Promise<number[]> {
    const all = new Set<number>();
    for (const d of this.paths(name)) for (const p of parseProcs(await readText(path.join(d, 'cgroup.procs')))) all.add(p);
    return [...all];
  }

  async killAll(name: string): Promise<void> {
    await killProcs(await this.procs(name));
  }

  async remove(name: string): Promise<void> {
    for (const d of this.paths(name)) await rmdirRetry(d);
  }

  async list(): Promise<string[]> {
    const names = new Set<string>();
    for (const h of this.hierarchies()) {
      for (const e of await fsp.readdir(path.join(h, this.parent), { withFileTypes: true }).catch(() => [])) if (e.isDirectory()) names.add(e.name);
    }
    return [...names];
  }
}

// ---------------------------------------------------------------- v2

export interface CgroupV2Options {
  /** Mount point of the unified hierarchy. */
  root?: string;
  parent?: string;
}

export class CgroupV2Driver implements CgroupDriver {
  readonly version = 2 as const;
  private readonly root: string;
  private readonly parent: string;

  constructor(opts: CgroupV2Options = {}) {
    this.root = opts.root ?? '/sys/fs/cgroup';
    this.parent = opts.parent ?? CGROUP_PARENT;
  }

  paths(name: string): string[] {
    checkName(name);
    return [path.join(this.root, this.parent, name)];
  }

  /** Enables memory, cpu and pids (those available) for the children of `dir`. */
  private async delegate(dir: string): Promise<void> {
    const available = ((await readText(path.join(dir, 'cgroup.controllers'))) ?? '').split(/\s+/);
    const enabled = ((await readText(path.join(dir, 'cgroup.subtree_control'))) ?? '').split(/\s+/);
    const want = ['cpu', 'memory', 'pids'].filter((c) => available.includes(c) && !enabled.includes(c));
    if (want.length) await fsp.writeFile(path.join(dir, 'cgroup.subtree_control'), want.map((c) => `+${c}`).join(' '));
  }

  async create(name: string, limits: CgroupLimits): Promise<string[]> {
    const [dir] = this.paths(name);
    const parentDir = path.join(this.root, this.parent);
    await fsp.mkdir(parentDir, { recursive: true });
    await this.delegate(this.root);
    await this.delegate(parentDir);
    await fsp.mkdir(dir, { recursive: true });
    if (limits.memoryBytes && limits.memoryBytes > 0) {
      await fsp.writeFile(path.join(dir, 'memory.max'), String(limits.memoryBytes));
      await writeIfPresent(path.join(dir, 'memory.swap.max'), '0', false);
    }
    if (limits.nanoCpus && limits.nanoCpus > 0) {
      await fsp.writeFile(path.join(dir, 'cpu.max'), `${cfsQuotaUs(limits.nanoCpus)} ${DEFAULT_CFS_PERIOD_US}`);
    }
    if (limits.cpuShares && limits.cpuShares > 0) await fsp.writeFile(path.join(dir, 'cpu.weight'), String(sharesToWeight(limits.cpuShares)));
    if (limits.pids && limits.pids > 0) await fsp.writeFile(path.join(dir, 'pids.max'), String(limits.pids));
    // Devices: v2 needs an eBPF program for device access; Convoy mounts the
    // container's filesystems nodev instead (see docs/runtime.md).
    return [dir];
  }

  async oomKills(name: string): Promise<number> {
    return parseKeyValues(await readText(path.join(this.paths(name)[0], 'memory.events'))).get('oom_kill') ?? 0;
  }

  async pidsLimitHits(name: string): Promise<number> {
    return parseKeyValues(await readText(path.join(this.paths(name)[0], 'pids.events'))).get('max') ?? 0;
  }

  async stats(name: string): Promise<CgroupStats> {
    const [dir] = this.paths(name);
    const cpu = parseKeyValues(await readText(path.join(dir, 'cpu.stat')));
    const max = ((await readText(path.join(dir, 'memory.max'))) ?? 'max').trim();
    return {
      cpuSeconds: (cpu.get('usage_usec') ?? 0) / 1e6,
      memoryBytes: await readNumber(path.join(dir, 'memory.current')),
      memoryLimitBytes: max === 'max' ? 0 : Number(max) || 0,
      pids: await readNumber(path.join(dir, 'pids.current')),
    };
  }

  async procs(name: string): Promise<number[]> {
    return parseProcs(await readText(path.join(this.paths(name)[0], 'cgroup.procs')));
  }

  async killAll(name: string): Promise<void> {
    const [dir] = this.paths(name);
    const kill = path.join(dir, 'cgroup.kill'); // Linux 5.14+
    if (fs.existsSync(kill)) {
      await fsp.writeFile(kill, '1').catch(() => undefined);
      return;
    }
    await killProcs(await this.procs(name));
  }

  async remove(name: string): Promise<void> {
    await rmdirRetry(this.paths(name)[0]);
  }

  async list(): Promise<string[]> {
    const entries = await fsp.readdir(path.join(this.root, this.parent), { withFileTypes: true }).catch(() => []);
    return entries.filter((e) => e.isDirectory()).map((e) => e.name);
  }
}

/** v2 when the unified hierarchy is mounted at `root` itself; otherwise v1. */
export function detectCgroupDriver(root = '/sys/fs/cgroup'): CgroupDriver {
  if (fs.existsSync(path.join(root, 'cgroup.controllers'))) return new CgroupV2Driver({ root });
  return new CgroupV1Driver({ root });
}
