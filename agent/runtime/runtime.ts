// Convoy's container runtime: containers from layers of the image store,
// started by the native helper (native/convoy-init.c), which stays as each
// container's monitor (log files, exit status) and survives the agent.
//
// On disk, per container (<stateDir>/containers/<id>/):
//   state.json   config, cgroup, monitor and container pids with their start times
//   upper/ work/ overlay upper and work dirs (the container's writes)
//   merged/      mount point of the root (mounted only inside the container's mount namespace)
//   exit         written by the monitor when the container's pid 1 ends: "exited N" / "signaled N"
//   hosts, resolv.conf, hostname   bind-mounted into /etc
// Logs: <stateDir>/logs/<id>.log (+ .1, .2 ... after rotation), JSON lines.
// Named volumes: <stateDir>/volumes/<name>/_data.
// containers/, volumes/ and logs/ are 0700 and state.json 0600: an upper dir
// holds what the container wrote (setuid binaries, device nodes) and the
// state holds the spec; neither is for the host's unprivileged users.
import type { ChildProcess, StdioOptions } from 'node:child_process';
import { execFile } from 'node:child_process';
import type { Writable } from 'node:stream';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { nullLogger, type Logger } from '../../common/logger';
import { detectCgroupDriver, type CgroupDriver, type CgroupLimits, type CgroupStats } from './cgroups/cgroups';
import { capabilitySet } from '../../proto/capabilities';
import { ensurePrivateDir } from './image/store';
import { encodeRecords, findHelper, readChannel, spawnHelper, flatten, type Records } from './native';

export interface MountSpec {
  type: 'bind' | 'volume' | 'tmpfs';
  /** Host path (bind) or volume name (volume); unused for tmpfs. */
  source?: string;
  /** Absolute path inside the container. */
  target: string;
  readOnly?: boolean;
  tmpfsSizeBytes?: number;
  /**
   * A bind the agent made itself (a task's secrets and configs, from its own
   * tmpfs: ./task-files.ts), not one a spec asked for: bind admission
   * (bindSource) is for the operator's paths. Never set from a spec.
   */
  agentOwned?: boolean;
}

export interface Rlimit {
  soft: number;
  hard: number;
}

export interface ContainerConfig {
  /** Unique on the host; also the cgroup's name. [A-Za-z0-9][A-Za-z0-9_.-]* */
  id: string;
  /** Image reference, for display. */
  image: string;
  /** Diff ids of the image's layers, bottom first (from the image store). */
  layers: string[];
  /** The process: entrypoint + cmd already resolved. */
  args: string[];
  env: string[];
  cwd?: string;
  /** "user", "uid", "user:group", "uid:gid"; resolved in the container's /etc/passwd. */
  user?: string;
  hostname?: string;
  mounts?: MountSpec[];
  /** Cgroup limits; pids defaults to DEFAULT_PIDS_LIMIT. */
  resources?: CgroupLimits;
  /** Join this network namespace instead of a new one with only loopback. */
  netnsPath?: string;
  resolvConf?: string;
  hosts?: string;
  /** "SIGTERM", "TERM", "15"; default SIGTERM. */
  stopSignal?: string;
  /** The root filesystem read-only (Docker's --read-only): /dev, /dev/shm, /proc and mounts keep their own modes. */
  readonlyRootfs?: boolean;
  /** Capability numbers (bounding, permitted, effective; inheritable and ambient stay empty); default Docker's set. */
  capabilities?: number[];
  /** Per resource name ("nofile", "nproc", ...). */
  rlimits?: Record<string, Rlimit>;
  /** false disables the default seccomp filter. */
  seccomp?: boolean;
  // Container options (issue 13, docs/container-options.md).
  /** Namespaced sysctls (the manager refused the others), written through the container's /proc before it starts. */
  sysctls?: Record<string, string>;
  /** The helper stays as PID 1: reaps orphans, forwards signals. */
  init?: boolean;
  /** A terminal from the container's devpts as stdin/stdout/stderr (logged as stdout). */
  tty?: boolean;
  /** stdin a pipe held open (nobody writes) rather than /dev/null. */
  openStdin?: boolean;
  /** No masked or read-only /proc paths, /sys writable (capabilities and seccomp are given separately). */
  privileged?: boolean;
  /** Host device nodes bound into the container: host path → container path. */
  devices?: { source: string; target: string }[];
  labels?: Record<string, string>;
}

export interface ContainerState {
  config: ContainerConfig;
  cgroup: string;
  createdAt: string;
  status: 'created' | 'running' | 'exited';
  monitorPid?: number;
  monitorStart?: number;
  pid?: number;
  pidStart?: number;
  startedAt?: string;
}

export interface ContainerExit {
  exitCode: number;
  signal?: string;
  oomKilled: boolean;
  /** "exit code 1", "killed by SIGKILL", "OOM killed (limit 64MiB)", "container monitor lost". */
  reason: string;
}

export interface ContainerInfo {
  id: string;
  running: boolean;
  pid?: number;
  status: ContainerState['status'];
  labels: Record<string, string>;
}

export interface ExecOptions {
  args: string[];
  /** Added to (and overriding) the container's environment. */
  env?: string[];
  cwd?: string;
  user?: string;
  /**
   * A terminal from the container's devpts for the process: the helper relays
   * its stdin to the terminal and the terminal to its stdout (stderr then only
   * carries the helper's own errors). rows × cols, default 24 × 80; later
   * sizes go through resizeExec().
   */
  tty?: { rows?: number; cols?: number };
}

export class RuntimeError extends Error {
  override name = 'RuntimeError';
  constructor(
    message: string,
    /** The same call might succeed later (resources), or never (bad spec, missing binary). */
    readonly retryable: boolean,
    override readonly cause?: unknown,
  ) {
    super(message);
  }
}

export interface RuntimeOptions {
  stateDir: string;
  /** Where unpacked layers live (the image store's layersRoot). */
  layersRoot: string;
  helperPath?: string;
  cgroups?: CgroupDriver;
  logger?: Logger;
  logMaxBytes?: number;
  logMaxFiles?: number;
  /** How often wait() polls an adopted container. */
  pollMs?: number;
  /**
   * Admission of a bind mount's host path at mount time: returns the path to
   * mount (resolved, no symlink left) or throws a RuntimeError. Without it,
   * any existing path is mounted as given.
   */
  bindSource?: (source: string) => Promise<string>;
}

export const DEFAULT_LOG_MAX_BYTES = 10 * 1024 * 1024;
export const DEFAULT_LOG_MAX_FILES = 3;
export const DEFAULT_POLL_MS = 100;
/** Docker's default open-files limit for containers. */
export const DEFAULT_RLIMITS: Record<string, Rlimit> = { nofile: { soft: 1048576, hard: 1048576 } };
/** Docker's default capabilities, as numbers (proto/capabilities.ts has them by name). */
export const DEFAULT_CAPABILITIES = capabilitySet([], []);
/**
 * Processes (and threads) of a container whose spec sets no pids limit.
 * Docker sets none; we do, so that a fork bomb in one container cannot take
 * the host's pid space (kernel.pid_max is 4,194,304 on 64-bit, but the
 * default threads-max and the agent's own forks give out far earlier). 4096
 * is far above what a service runs (a JVM with a big thread pool stays in the
 * hundreds) and makes a runaway visible; a spec's limits.pids overrides it.
 */
export const DEFAULT_PIDS_LIMIT = 4096;
const RLIMIT_NUMBERS: Record<string, number> = {
  cpu: 0, fsize: 1, data: 2, stack: 3, core: 4, rss: 5, nproc: 6, nofile: 7, memlock: 8, as: 9,
  locks: 10, sigpending: 11, msgqueue: 12, nice: 13, rtprio: 14, rttime: 15,
};
/** Under the state dir: the helper's compiled seccomp filters, one file per capability set and helper build. */
const SECCOMP_CACHE_DIR = 'seccomp';
const ID_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;
const VOLUME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;
const REMOVE_WAIT_MS = 5_000;

// ---------------------------------------------------------------- /proc helpers

/** Start time of `pid` in clock ticks since boot (field 22 of /proc/pid/stat), undefined when gone or a zombie. */
export function procStart(pid: number): number | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (rest[0] === 'Z' || rest[0] === 'X') return undefined;
    return Number(rest[19]);
  } catch {
    return undefined;
  }
}

/** True when `pid` runs and is the same process as when its start time was recorded. */
export function alive(pid: number | undefined, start: number | undefined): boolean {
  if (!pid) return false;
  const s = procStart(pid);
  return s !== undefined && (start === undefined || s === start);
}

export function signalNumber(sig: string | number | undefined, fallback = 'SIGTERM'): number {
  if (typeof sig === 'number') return sig;
  const s = (sig ?? '').trim().toUpperCase() || fallback;
  if (/^\d+$/.test(s)) return Number(s);
  const name = (s.startsWith('SIG') ? s : `SIG${s}`) as keyof typeof os.constants.signals;
  const n = os.constants.signals[name];
  if (n === undefined) throw new RuntimeError(`unknown signal ${sig}`, false);
  return n;
}

export function signalName(n: number): string {
  for (const [k, v] of Object.entries(os.constants.signals)) if (v === n) return k;
  return `signal ${n}`;
}

function mib(n: number): string {
  return n % (1024 * 1024) === 0 ? `${n / (1024 * 1024)}MiB` : `${n} bytes`;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

interface Live {
  child?: ChildProcess;
  /** Resolves when the monitor (and so the container) is gone. */
  gone?: Promise<void>;
  exit?: Promise<ContainerExit>;
}

export class Runtime {
  readonly stateDir: string;
  readonly helper: string;
  readonly cgroups: CgroupDriver;
  private readonly log: Logger;
  private readonly live = new Map<string, Live>();

  constructor(private readonly opts: RuntimeOptions) {
    this.stateDir = opts.stateDir;
    this.helper = opts.helperPath ?? findHelper();
    this.cgroups = opts.cgroups ?? detectCgroupDriver();
    this.log = opts.logger ?? nullLogger;
  }

  containerDir(id: string): string {
    return path.join(this.stateDir, 'containers', id);
  }

  logPath(id: string): string {
    return path.join(this.stateDir, 'logs', `${id}.log`);
  }

  volumeDir(name: string): string {
    return path.join(this.stateDir, 'volumes', name, '_data');
  }

  private statePath(id: string): string {
    return path.join(this.containerDir(id), 'state.json');
  }

  async readState(id: string): Promise<ContainerState | undefined> {
    try {
      return JSON.parse(await fsp.readFile(this.statePath(id), 'utf8')) as ContainerState;
    } catch {
      return undefined;
    }
  }

  private async writeState(id: string, st: ContainerState): Promise<void> {
    const p = this.statePath(id);
    await fsp.writeFile(`${p}.tmp`, JSON.stringify(st), { mode: 0o600 });
    await fsp.rename(`${p}.tmp`, p);
  }

  private async mustState(id: string): Promise<ContainerState> {
    const st = await this.readState(id);
    if (!st) throw new RuntimeError(`no container ${id}`, false);
    return st;
  }

  /** Creates the container's directories, cgroup and state (no process yet). Idempotent. */
  async create(cfg: ContainerConfig): Promise<void> {
    if (!ID_RE.test(cfg.id)) throw new RuntimeError(`invalid container id ${JSON.stringify(cfg.id)}`, false);
    if (!cfg.args.length) throw new RuntimeError(`container ${cfg.id}: no command (the image has no entrypoint or cmd and the spec gives none)`, false);
    if (await this.readState(cfg.id)) return;
    for (const m of cfg.mounts ?? []) {
      if (!path.isAbsolute(m.target)) throw new RuntimeError(`mount target ${m.target} is not an absolute path`, false);
      if (m.type === 'volume' && !VOLUME_RE.test(m.source ?? '')) throw new RuntimeError(`invalid volume name ${JSON.stringify(m.source)}`, false);
      if (m.type === 'bind' && !(m.source && path.isAbsolute(m.source))) throw new RuntimeError(`bind mount source ${m.source} is not an absolute path`, false);
    }
    const dir = this.containerDir(cfg.id);
    await ensurePrivateDir(path.join(this.stateDir, 'containers'));
    await ensurePrivateDir(path.join(this.stateDir, 'logs'));
    await fsp.mkdir(path.join(dir, 'upper'), { recursive: true });
    await fsp.mkdir(path.join(dir, 'work'), { recursive: true });
    await fsp.mkdir(path.join(dir, 'merged'), { recursive: true });
    try {
      await this.cgroups.create(cfg.id, { ...cfg.resources, pids: cfg.resources?.pids || DEFAULT_PIDS_LIMIT });
    } catch (e) {
      await fsp.rm(dir, { recursive: true, force: true });
      throw new RuntimeError(`container ${cfg.id}: cannot create its cgroup: ${e instanceof Error ? e.message : String(e)}`, true, e);
    }
    await this.writeState(cfg.id, { config: cfg, cgroup: cfg.id, createdAt: new Date().toISOString(), status: 'created' });
  }

  private async buildRecords(st: ContainerState): Promise<Records> {
    const c = st.config;
    const dir = this.containerDir(c.id);
    const r: Records = [];
    r.push(['lowerbase', this.opts.layersRoot]);
    for (const l of [...c.layers].reverse()) {
      const hex = l.replace(/^sha256:/, '');
      r.push(['lower', `${hex}/diff`]);
    }
    r.push(['upper', path.join(dir, 'upper')], ['work', path.join(dir, 'work')], ['merged', path.join(dir, 'merged')]);
    if (c.readonlyRootfs) r.push(['readonly', '1']);
    if (c.hostname) r.push(['hostname', c.hostname]);
    for (const d of this.cgroups.paths(st.cgroup)) r.push(['cgroup', d]);
    if (c.netnsPath) r.push(['netns', c.netnsPath]);
    for (const [k, v] of Object.entries(c.sysctls ?? {})) r.push(['sysctl', `${k}=${v}`]);
    if (c.init) r.push(['init', '1']);
    if (c.tty) r.push(['tty', '1']);
    if (c.openStdin) r.push(['stdin', 'open']);
    if (c.privileged) r.push(['privileged', '1']);
    for (const d of c.devices ?? []) r.push(['mnt', 'dev'], ['mnt.src', d.source], ['mnt.dst', d.target]);
    for (const m of c.mounts ?? []) {
      if (m.type === 'tmpfs') {
        r.push(['mnt', 'tmpfs'], ['mnt.dst', m.target], ['mnt.data', `mode=1777${m.tmpfsSizeBytes ? `,size=${m.tmpfsSizeBytes}` : ''}`]);
      } else {
        let src = m.source ?? '';
        let admitted = false;
        if (m.type === 'volume') {
          src = this.volumeDir(src);
          await ensurePrivateDir(path.join(this.stateDir, 'volumes'));
          await fsp.mkdir(src, { recursive: true });
        } else if (!fs.existsSync(src)) {
          throw new RuntimeError(`bind mount source ${src} does not exist`, false);
        } else if (this.opts.bindSource && !m.agentOwned) {
          src = await this.opts.bindSource(src);
          admitted = true;
        }
        r.push(['mnt', 'bind'], ['mnt.src', src], ['mnt.dst', m.target]);
        // The helper mounts an admitted source only if its path still holds no symlink.
        if (admitted) r.push(['mnt.nofollow', '1']);
      }
      if (m.readOnly) r.push(['mnt.ro', '1']);
    }
    const etc = async (name: string, content: string | undefined) => {
      if (content === undefined) return;
      const f = path.join(dir, name);
      await fsp.writeFile(f, content);
      r.push(['mnt', 'bind'], ['mnt.src', f], ['mnt.dst', `/etc/${name}`]);
    };
    await etc('resolv.conf', c.resolvConf);
    await etc('hosts', c.hosts ?? (c.hostname ? `127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t${c.hostname}\n` : undefined));
    await etc('hostname', c.hostname ? `${c.hostname}\n` : undefined);
    this.processRecords(r, c.args, c.env, c.cwd, c.user, c);
    r.push(['log', this.logPath(c.id)]);
    r.push(['logmax', String(this.opts.logMaxBytes ?? DEFAULT_LOG_MAX_BYTES)]);
    r.push(['logfiles', String(this.opts.logMaxFiles ?? DEFAULT_LOG_MAX_FILES)]);
    r.push(['exitfile', path.join(dir, 'exit')]);
    return r;
  }

  private processRecords(r: Records, args: string[], env: string[], cwd: string | undefined, user: string | undefined, c: ContainerConfig): void {
    for (const a of args) r.push(['arg', a]);
    for (const e of env) r.push(['env', e]);
    r.push(['cwd', cwd || '/']);
    r.push(['user', user || '0']);
    for (const cap of c.capabilities ?? DEFAULT_CAPABILITIES) r.push(['cap', String(cap)]);
    if ((c.capabilities ?? DEFAULT_CAPABILITIES).length === 0) r.push(['cap', '']);
    for (const [name, l] of Object.entries({ ...DEFAULT_RLIMITS, ...(c.rlimits ?? {}) })) {
      const n = RLIMIT_NUMBERS[name];
      if (n === undefined) throw new RuntimeError(`unknown rlimit ${name}`, false);
      r.push(['rlimit', `${n}:${l.soft}:${l.hard}`]);
    }
    if (c.seccomp === false) r.push(['seccomp', 'none']);
    // compiled filters, per capability set (the helper makes the dir, 0700): see apply_seccomp's cache in convoy-init.c
    else r.push(['seccompcache', path.join(this.stateDir, SECCOMP_CACHE_DIR)]);
  }

  /** Starts the container's process; resolves with its pid once it runs. Idempotent. */
  async start(id: string): Promise<number> {
    const st = await this.mustState(id);
    if (st.status === 'running' && alive(st.pid, st.pidStart)) return st.pid ?? 0;
    if (st.status === 'exited') throw new RuntimeError(`container ${id} has already run`, false);
    const records = await this.buildRecords(st);
    await fsp.rm(path.join(this.containerDir(id), 'exit'), { force: true });
    const { child, channel } = spawnHelper(this.helper, ['run'], encodeRecords(flatten(records)), ['ignore', 'ignore', 'ignore'], true);
    const spawnError = new Promise<string>((resolve) => child.once('error', (e) => resolve(`cannot run the native helper ${this.helper}: ${e.message}`)));
    const answer = await Promise.race([readChannel(channel), spawnError]);
    channel.destroy();
    const m = /^ok (\d+) (\d+)/.exec(answer);
    if (!m) {
      await new Promise<void>((r) => (child.exitCode !== null || child.signalCode !== null ? r() : child.once('exit', () => r())));
      const msg = answer.replace(/^error /, '').trim() || `helper exited with ${child.exitCode ?? child.signalCode}`;
      throw new RuntimeError(`container ${id} failed to start: ${msg}`, false);
    }
    const pid = Number(m[1]);
    const monitorPid = Number(m[2]);
    const gone = new Promise<void>((r) => (child.exitCode !== null || child.signalCode !== null ? r() : child.once('exit', () => r())));
    child.unref();
    st.status = 'running';
    st.pid = pid;
    st.pidStart = procStart(pid);
    st.monitorPid = monitorPid;
    st.monitorStart = procStart(monitorPid);
    st.startedAt = new Date().toISOString();
    await this.writeState(id, st);
    this.live.set(id, { child, gone });
    this.log.debug('container started', { 'container.id': id, pid });
    return pid;
  }

  /** Resolves when the container's pid 1 has exited (started or adopted containers). */
  wait(id: string): Promise<ContainerExit> {
    const l = this.live.get(id) ?? {};
    if (!l.exit) {
      l.exit = this.waitExit(id, l);
      this.live.set(id, l);
    }
    return l.exit;
  }

  private async waitExit(id: string, l: Live): Promise<ContainerExit> {
    const st = await this.mustState(id);
    const exitFile = path.join(this.containerDir(id), 'exit');
    if (st.status === 'created') throw new RuntimeError(`container ${id} is not started`, false);
    if (l.gone) {
      l.child?.ref(); // someone waits: keep the event loop alive until the exit
      await l.gone;
    } else {
      const pollMs = this.opts.pollMs ?? DEFAULT_POLL_MS;
      while (!fs.existsSync(exitFile) && (alive(st.monitorPid, st.monitorStart) || alive(st.pid, st.pidStart))) await sleep(pollMs);
    }
    const text = await fsp.readFile(exitFile, 'utf8').catch(() => '');
    const oom = await this.cgroups.oomKills(st.cgroup).catch(() => 0);
    const limit = st.config.resources?.memoryBytes;
    if (st.status !== 'exited') {
      st.status = 'exited';
      await this.writeState(id, st).catch(() => undefined);
    }
    const m = /^(exited|signaled) (\d+)/.exec(text);
    if (!m) return { exitCode: 255, oomKilled: oom > 0, reason: 'container monitor lost: exit status unknown' };
    const n = Number(m[2]);
    if (m[1] === 'exited') {
      return { exitCode: n, oomKilled: oom > 0, reason: oom > 0 ? `OOM killed${limit ? ` (limit ${mib(limit)})` : ''}, exit code ${n}` : `exit code ${n}` };
    }
    const signal = signalName(n);
    return {
      exitCode: 128 + n,
      signal,
      oomKilled: oom > 0,
      reason: oom > 0 ? `OOM killed${limit ? ` (limit ${mib(limit)})` : ''}` : `killed by ${signal}`,
    };
  }

  async isRunning(id: string): Promise<boolean> {
    const st = await this.readState(id);
    return !!st && st.status === 'running' && alive(st.pid, st.pidStart);
  }

  /** Sends a signal to the container's pid 1 (as Docker, pid 1 ignores signals it has no handler for; SIGKILL always works). */
  async kill(id: string, signal: string | number = 'SIGKILL'): Promise<void> {
    const st = await this.mustState(id);
    if (!alive(st.pid, st.pidStart) || !st.pid) return;
    try {
      process.kill(st.pid, signalNumber(signal));
    } catch {
      // exited meanwhile
    }
  }

  /** Stop signal, then SIGKILL after graceMs; resolves when the container is gone. */
  async stop(id: string, graceMs: number, signal?: string): Promise<void> {
    const st = await this.mustState(id);
    if (st.status !== 'running' || !alive(st.pid, st.pidStart)) return;
    const exited = this.wait(id);
    await this.kill(id, signal || st.config.stopSignal || 'SIGTERM');
    const timedOut = await Promise.race([exited.then(() => false), sleep(Math.max(0, graceMs)).then(() => true)]);
    if (timedOut) {
      await this.kill(id, 'SIGKILL');
      await this.cgroups.killAll(st.cgroup).catch(() => undefined);
    }
    await exited;
  }

  /** Runs a process inside the running container (its namespaces, cgroup, root, user, capabilities, seccomp). */
  async exec(id: string, opts: ExecOptions): Promise<ChildProcess> {
    const st = await this.mustState(id);
    if (!st.pid || !alive(st.pid, st.pidStart)) throw new RuntimeError(`container ${id} is not running`, false);
    const c = st.config;
    const env = new Map<string, string>();
    for (const e of [...c.env, ...(opts.env ?? [])]) {
      const i = e.indexOf('=');
      env.set(i < 0 ? e : e.slice(0, i), e);
    }
    const r: Records = [['pid', String(st.pid)]];
    for (const d of this.cgroups.paths(st.cgroup)) r.push(['cgroup', d]);
    this.processRecords(r, opts.args, [...env.values()], opts.cwd ?? c.cwd, opts.user ?? c.user, c);
    const stdio = ['pipe', 'pipe', 'pipe'];
    if (opts.tty) {
      r.push(['tty', '1']);
      if (opts.tty.rows) r.push(['rows', String(Math.trunc(opts.tty.rows))]);
      if (opts.tty.cols) r.push(['cols', String(Math.trunc(opts.tty.cols))]);
      // fd 4: resize lines (resizeExec); fd 3 stays the configuration channel
      r.push(['ctl', String(EXEC_CTL_FD)]);
      stdio.push('ignore', 'pipe');
    }
    const { child, channel } = spawnHelper(this.helper, ['exec'], encodeRecords(flatten(r)), stdio as StdioOptions, false);
    (child.stdio[EXEC_CTL_FD] as Writable | null | undefined)?.on('error', () => undefined);
    channel.on('end', () => channel.destroy());
    return child;
  }

  /** Runs `args` in the container and collects its output (for health checks and tests). */
  async execCollect(id: string, args: string[], timeoutMs = 30_000): Promise<{ code: number; stdout: string; stderr: string; timedOut: boolean }> {
    const child = await this.exec(id, { args });
    child.stdin?.end();
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout?.on('data', (c: Buffer) => out.push(c));
    child.stderr?.on('data', (c: Buffer) => err.push(c));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    const code = await new Promise<number>((resolve) => {
      child.once('error', () => resolve(127));
      child.once('close', (c, s) => resolve(c ?? (s ? 128 + signalNumber(s) : 255)));
    });
    clearTimeout(timer);
    return { code, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString(), timedOut };
  }

  async stats(id: string): Promise<(CgroupStats & { netRxBytes: number; netTxBytes: number }) | undefined> {
    const st = await this.readState(id);
    if (!st) return undefined;
    const cg = await this.cgroups.stats(st.cgroup);
    let rx = 0;
    let tx = 0;
    if (st.pid && alive(st.pid, st.pidStart)) {
      const dev = await fsp.readFile(`/proc/${st.pid}/net/dev`, 'utf8').catch(() => '');
      for (const line of dev.split('\n').slice(2)) {
        const [name, rest] = line.split(':');
        if (!rest || name.trim() === 'lo') continue;
        const f = rest.trim().split(/\s+/).map(Number);
        rx += f[0] || 0;
        tx += f[8] || 0;
      }
    }
    return { ...cg, netRxBytes: rx, netTxBytes: tx };
  }

  /** Containers this host has on disk (also those of a previous agent process). */
  async list(): Promise<ContainerInfo[]> {
    const out: ContainerInfo[] = [];
    for (const id of await fsp.readdir(path.join(this.stateDir, 'containers')).catch(() => [] as string[])) {
      const st = await this.readState(id);
      if (!st) {
        out.push({ id, running: false, status: 'created', labels: {} });
        continue;
      }
      const running = st.status === 'running' && alive(st.pid, st.pidStart);
      out.push({ id, running, pid: running ? st.pid : undefined, status: running ? 'running' : st.status === 'created' ? 'created' : 'exited', labels: st.config.labels ?? {} });
    }
    return out;
  }

  /** Re-attaches to a container found by list(): wait() then polls it. */
  async adopt(id: string): Promise<void> {
    await this.mustState(id);
    if (!this.live.has(id)) this.live.set(id, {});
  }

  /** Kills what is left of the container and removes its cgroup, directories and logs. Idempotent. */
  async remove(id: string): Promise<void> {
    if (!ID_RE.test(id)) throw new RuntimeError(`invalid container id ${JSON.stringify(id)}`, false);
    const st = await this.readState(id);
    const cgroup = st?.cgroup ?? id;
    if (st?.pid && alive(st.pid, st.pidStart)) {
      try {
        process.kill(st.pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
    await this.cgroups.killAll(cgroup).catch(() => undefined);
    // the monitor exits once the container's pipes close
    const deadline = Date.now() + REMOVE_WAIT_MS;
    while (st && alive(st.monitorPid, st.monitorStart) && Date.now() < deadline) await sleep(10);
    if (st && alive(st.monitorPid, st.monitorStart) && st.monitorPid) {
      try {
        process.kill(st.monitorPid, 'SIGKILL');
      } catch {
        // gone
      }
    }
    for (let i = 0; i < 3; i++) {
      try {
        await this.cgroups.remove(cgroup);
        break;
      } catch (e) {
        if (i === 2) throw new RuntimeError(`container ${id}: cannot remove its cgroup: ${e instanceof Error ? e.message : String(e)}`, true, e);
        await this.cgroups.killAll(cgroup).catch(() => undefined);
      }
    }
    const dir = this.containerDir(id);
    await unmountUnder(dir);
    await fsp.rm(dir, { recursive: true, force: true });
    const logs = path.join(this.stateDir, 'logs');
    for (const f of await fsp.readdir(logs).catch(() => [] as string[])) {
      if (f === `${id}.log` || f.startsWith(`${id}.log.`)) await fsp.rm(path.join(logs, f), { force: true });
    }
    this.live.delete(id);
  }

  /**
   * Removes every container, cgroup and mount whose id starts with `prefix`
   * (tests call it first to clear what a crashed earlier run left).
   */
  async cleanupAll(prefix: string): Promise<string[]> {
    const removed = new Set<string>();
    for (const c of await this.list()) {
      if (!c.id.startsWith(prefix)) continue;
      await this.remove(c.id);
      removed.add(c.id);
    }
    for (const name of await this.cgroups.list()) {
      if (!name.startsWith(prefix)) continue;
      await this.cgroups.killAll(name).catch(() => undefined);
      await this.cgroups.remove(name).catch(() => undefined);
      removed.add(name);
    }
    return [...removed];
  }

  /** Diff ids used by containers on disk (for the image store's gc). */
  async layersInUse(): Promise<string[]> {
    const out: string[] = [];
    for (const c of await this.list()) {
      const st = await this.readState(c.id);
      if (st) out.push(...st.config.layers);
    }
    return out;
  }
}

/** fd of an `exec` with a terminal that takes "rows cols" lines. */
const EXEC_CTL_FD = 4;

/** Resizes the terminal of an exec started with `tty` (no-op otherwise, or once it ended). */
export function resizeExec(child: ChildProcess, rows: number, cols: number): void {
  const ctl = child.stdio[EXEC_CTL_FD] as Writable | null | undefined;
  if (!ctl || ctl.destroyed || !(rows > 0) || !(cols > 0)) return;
  ctl.write(`${Math.trunc(rows)} ${Math.trunc(cols)}\n`);
}

const execFileP = promisify(execFile);

/** Lazily unmounts anything mounted on the host under `dir` (the runtime mounts nothing there itself; a safety net). */
export async function unmountUnder(dir: string): Promise<void> {
  const info = await fsp.readFile('/proc/self/mountinfo', 'utf8').catch(() => '');
  const prefix = dir.endsWith('/') ? dir : `${dir}/`;
  const points = info
    .split('\n')
    .map((l) => l.split(' ')[4])
    .filter((p): p is string => !!p && (p === dir || p.startsWith(prefix)))
    .map((p) => p.replace(/\\040/g, ' '))
    .sort((a, b) => b.length - a.length);
  for (const p of points) await execFileP('umount', ['-l', p]).catch(() => undefined);
}
