// ContainerExecutor: the agent's Executor on top of Convoy's runtime.
// prepare = pull the image, attach the network, create the container
// (dirs + cgroup); start = run it; wait/stop/remove as the interface says.
import type { ChildProcess } from 'node:child_process';
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import { checkBindSource } from '../../common/bind-policy';
import type { DnsConfig, Task } from '../../proto/mod';
import { capabilitySet } from '../../proto/capabilities';
import { errMsg, nullLogger, type Logger } from '../../common/logger';
import {
  ExecutorError,
  type ExistingContainer,
  type ExitResult,
  type Executor,
  type HealthState,
  type NetworkAttacher,
  type NodeInfo,
  type TaskStats,
} from '../executor';
import type { CgroupDriver } from './cgroups/cgroups';
import { HealthChecker, healthCommand, healthSpec } from './health';
import { taskHostname } from './hostname';
import { hostArch } from './image/oci';
import { ImageError, type RegistryCredentials, type RegistryOptions } from './image/registry';
import { ImageStore, type ImageLimits, type ImageRecord } from './image/store';
import { findHelper } from './native';
import { TaskFiles } from './task-files';
import type { FileSource } from '../files/values';
import { Runtime, RuntimeError, type ContainerConfig, type ExecOptions, type MountSpec } from './runtime';
import { DEFAULT_STATE_DIR, DEFAULT_STOP_GRACE_MS } from '../../proto/defaults';

export interface ContainerExecutorOptions {
  /** Default /var/lib/convoy. */
  stateDir?: string;
  insecureRegistries?: string[];
  credentials?: RegistryOptions['credentials'];
  /** Wires each task's network; without it a task gets an empty netns with loopback. */
  network?: NetworkAttacher;
  helperPath?: string;
  cgroups?: CgroupDriver;
  logger?: Logger;
  logMaxBytes?: number;
  logMaxFiles?: number;
  engineLabels?: Record<string, string>;
  /** Caps on what an image may make the agent download and unpack (defaults in image/store.ts, image/tar.ts). */
  imageLimits?: ImageLimits;
  /** The secret and config values the manager sent this node (memory only); without it a task that uses one fails. */
  files?: FileSource;
  /** Where each task's tmpfs of secrets and configs is mounted; default /run/convoy/files. */
  taskFilesRoot?: string;
  /**
   * The cluster's bind mount allow list as last received (NetworkState.bindAllow);
   * undefined while none has arrived. Without this option only the paths
   * common/bind-policy.ts always refuses (and the state dir) are refused.
   */
  bindAllow?: () => readonly string[] | undefined;
}

/** A path with its symlinks resolved, or as given when it does not exist. */
async function realOrSelf(p: string): Promise<string> {
  return fsp.realpath(p).catch(() => p);
}

/**
 * The runtime's bind admission (RuntimeOptions.bindSource): the source and
 * the allowed prefixes resolved on this disk, so a symlink under an allowed
 * prefix that points out of it is refused, then common/bind-policy.ts.
 */
export function bindAdmission(stateDir: string, allow?: () => readonly string[] | undefined): (source: string) => Promise<string> {
  return async (source) => {
    const real = await fsp.realpath(source).catch((e: unknown) => {
      throw new RuntimeError(`bind mount source ${source}: ${errMsg(e)}`, false);
    });
    let allowed: string[] | undefined;
    if (allow) {
      const list = allow();
      if (!list) throw new RuntimeError(`bind mount source ${source}: the cluster's bind allow list has not reached this node yet`, true);
      allowed = await Promise.all(list.map(realOrSelf));
    }
    const own = [stateDir, await realOrSelf(stateDir)];
    const v = checkBindSource(real, allowed ?? ['/'], own);
    if (!v.ok) throw new RuntimeError(`bind mount source ${source}${real !== source ? ` (${real})` : ''}: ${v.reason}`, false);
    return v.path;
  };
}

export { DEFAULT_STATE_DIR };
export { DEFAULT_STOP_GRACE_MS };
/** Label names the executor puts on containers. */
export const LABEL_TASK_ID = 'convoy.task.id';
export const LABEL_SERVICE = 'convoy.service.name';
export const LABEL_SLOT = 'convoy.task.slot';

function mergeEnv(base: string[], over: string[]): string[] {
  const m = new Map<string, string>();
  for (const e of [...base, ...over]) {
    const i = e.indexOf('=');
    m.set(i < 0 ? e : e.slice(0, i), e);
  }
  return [...m.values()];
}

/** The container a task asks for, given its image. Pure: unit-tested. */
export function taskToConfig(task: Task, image: ImageRecord, layers: string[], net?: { netnsPath: string; resolvConf?: string; hosts?: string }, fileMounts: MountSpec[] = []): ContainerConfig {
  const spec = task.spec?.container;
  if (!spec) throw new ExecutorError(`task ${task.id} has no container spec`, false);
  const ic = image.config.config ?? {};
  const entrypoint = spec.command.length ? spec.command : ic.Entrypoint ?? [];
  // as `docker run --entrypoint`: overriding the entrypoint drops the image's Cmd
  const cmd = spec.args.length ? spec.args : spec.command.length ? [] : ic.Cmd ?? [];
  const args = [...entrypoint, ...cmd];
  if (!args.length) throw new ExecutorError(`image ${spec.image} has no entrypoint or cmd and the task gives no command`, false);
  const env = mergeEnv(ic.Env ?? ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], spec.env);
  const hostname = taskHostname(task, os.hostname());
  if (!env.some((e) => e.startsWith('HOSTNAME='))) env.push(`HOSTNAME=${hostname}`);
  const limitsMem = task.spec?.resources?.limits?.memoryBytes || 0;
  const mounts: MountSpec[] = (spec.mounts ?? []).map((m) => ({
    type: m.type === 'BIND' ? 'bind' : m.type === 'VOLUME' ? 'volume' : 'tmpfs',
    source: m.source,
    target: m.target,
    readOnly: m.readOnly,
    // A tmpfs always has a size (docs/container-options.md): the spec's, else the memory limit, else DEFAULT_TMPFS_SIZE_BYTES.
    tmpfsSizeBytes: m.type === 'TMPFS' ? m.tmpfsSizeBytes || limitsMem || DEFAULT_TMPFS_SIZE_BYTES : m.tmpfsSizeBytes || undefined,
  }));
  // Secrets and configs last: bind-mounted read-only from the task's tmpfs (./task-files.ts).
  mounts.push(...fileMounts);
  const limits = task.spec?.resources?.limits;
  let capabilities: number[] | undefined;
  if (spec.privileged) capabilities = capabilitySet(['ALL'], []);
  else if (spec.capAdd?.length || spec.capDrop?.length) {
    try {
      capabilities = capabilitySet(spec.capAdd ?? [], spec.capDrop ?? []);
    } catch (e) {
      throw new ExecutorError(`task ${task.id}: ${errMsg(e)}`, false, e);
    }
  }
  return {
    id: task.id,
    image: spec.image,
    layers,
    args,
    env,
    cwd: spec.dir || ic.WorkingDir || '/',
    user: spec.user || ic.User || '0',
    hostname,
    mounts,
    resources: limits ? { memoryBytes: limits.memoryBytes || undefined, nanoCpus: limits.nanoCpus || undefined, pids: limits.pids || undefined } : {},
    netnsPath: net?.netnsPath,
    resolvConf: resolvConfOf(spec.dnsConfig, net?.resolvConf),
    hosts: hostsOf(spec.hosts ?? [], net?.hosts, hostname),
    stopSignal: spec.stopSignal || ic.StopSignal || 'SIGTERM',
    readonlyRootfs: spec.readOnly || undefined,
    capabilities,
    ...containerOptions(task),
    labels: { ...(spec.labels ?? {}), [LABEL_TASK_ID]: task.id, [LABEL_SERVICE]: task.serviceName, [LABEL_SLOT]: String(task.slot) },
  };
}

/** What a tmpfs mount gets when neither its spec nor a memory limit sizes it: Docker's /dev/shm size. */
export const DEFAULT_TMPFS_SIZE_BYTES = 64 * 1024 * 1024;

/**
 * The container's resolv.conf with --dns/--dns-search/--dns-option. On a
 * network the nameserver stays the agent's DNS (service names resolve there;
 * it relays other names to the --dns servers: network/dns.ts), so the
 * servers are not written; without one (no attacher) they are.
 */
export function resolvConfOf(d: DnsConfig | null | undefined, base: string | undefined): string | undefined {
  if (!d || (!d.nameservers.length && !d.search.length && !d.options.length)) return base;
  const servers = base ? base.split('\n').filter((l) => l.startsWith('nameserver ')) : d.nameservers.map((s) => `nameserver ${s}`);
  const baseOptions = base ? base.split('\n').filter((l) => l.startsWith('options ')).flatMap((l) => l.slice(8).trim().split(/\s+/)) : [];
  // The given options win over the agent's (its ndots:0 keeps service names from being searched).
  const given = new Set(d.options.map((o) => o.split(':')[0]));
  const options = [...baseOptions.filter((o) => !given.has(o.split(':')[0])), ...d.options];
  return [...servers, ...(d.search.length ? [`search ${d.search.join(' ')}`] : []), ...(options.length ? [`options ${options.join(' ')}`] : [])].join('\n') + '\n';
}

/** The container's /etc/hosts with --host lines ("IP name..." as stored) after the agent's own. */
export function hostsOf(extra: readonly string[], base: string | undefined, hostname: string): string | undefined {
  if (!extra.length) return base;
  const head = base ?? `127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t${hostname}\n`;
  // The manager refused lines with control characters; split and joined again, nothing but blanks separate the names.
  return head + extra.map((h) => h.trim().split(/[ \t]+/).join('\t')).join('\n') + '\n';
}

/** The runtime's options of issue 13 from a task (init, sysctls, ulimits, tty, stdin, privileged, devices). */
function containerOptions(task: Task): Partial<ContainerConfig> {
  const spec = task.spec!.container!;
  const out: Partial<ContainerConfig> = {};
  if (spec.init) out.init = true;
  if (spec.sysctls && Object.keys(spec.sysctls).length) out.sysctls = { ...spec.sysctls };
  if (spec.ulimits?.length) out.rlimits = Object.fromEntries(spec.ulimits.map((u) => [u.name, { soft: Number(u.soft), hard: Number(u.hard) }]));
  if (spec.tty) out.tty = true;
  if (spec.openStdin) out.openStdin = true;
  if (spec.privileged) {
    out.privileged = true;
    out.seccomp = false;
  }
  if (spec.devices?.length)
    out.devices = spec.devices.map((d) => {
      // The manager checked them; the agent does not mount what is not under /dev either.
      if (!d.pathOnHost.startsWith('/dev/') || d.pathOnHost.split('/').includes('..')) throw new ExecutorError(`task ${task.id}: device ${d.pathOnHost} is not under /dev`, false);
      return { source: d.pathOnHost, target: d.pathInContainer || d.pathOnHost };
    });
  return out;
}

function toExecutorError(e: unknown, what: string): ExecutorError {
  if (e instanceof ExecutorError) return e;
  if (e instanceof ImageError) return new ExecutorError(e.message, e.retryable, e);
  if (e instanceof RuntimeError) return new ExecutorError(e.message, e.retryable, e);
  return new ExecutorError(`${what}: ${errMsg(e)}`, true, e);
}

interface TaskEntry {
  task?: Task;
  health?: HealthChecker;
  networked?: boolean;
}

export class ContainerExecutor implements Executor {
  readonly runtime: Runtime;
  readonly images: ImageStore;
  private readonly log: Logger;
  private readonly tasks = new Map<string, TaskEntry>();
  private readonly listeners: ((taskId: string, state: HealthState) => void)[] = [];
  private readonly taskFiles: TaskFiles;
  /** Registry credentials of the cluster's (`--with-registry-auth`) for pulls under way: host → credentials, pulls using them. */
  private readonly clusterCreds = new Map<string, { creds: RegistryCredentials; pulls: number }>();

  constructor(private readonly opts: ContainerExecutorOptions = {}) {
    const stateDir = opts.stateDir ?? DEFAULT_STATE_DIR;
    const helperPath = opts.helperPath ?? findHelper();
    this.log = opts.logger ?? nullLogger;
    this.taskFiles = new TaskFiles(opts.files, opts.taskFilesRoot);
    this.images = new ImageStore({
      stateDir,
      registry: {
        insecureRegistries: opts.insecureRegistries,
        // The agent's own (--registry credentials) first, then those a task brought for its pull.
        credentials: (host) => (typeof opts.credentials === 'function' ? opts.credentials(host) : opts.credentials?.[host]) ?? this.clusterCreds.get(host)?.creds,
      },
      helperPath,
      logger: this.log,
      limits: opts.imageLimits,
    });
    this.runtime = new Runtime({
      stateDir,
      layersRoot: this.images.layersRoot,
      helperPath,
      cgroups: opts.cgroups,
      logger: this.log,
      logMaxBytes: opts.logMaxBytes,
      logMaxFiles: opts.logMaxFiles,
      bindSource: bindAdmission(stateDir, opts.bindAllow),
    });
  }

  async describe(): Promise<NodeInfo> {
    return {
      hostname: os.hostname(),
      os: 'linux',
      arch: hostArch(),
      nanoCpus: os.cpus().length * 1e9,
      memoryBytes: os.totalmem(),
      engineLabels: { 'convoy.runtime': 'convoy-init', 'convoy.cgroups': `v${this.runtime.cgroups.version}`, ...(this.opts.engineLabels ?? {}) },
    };
  }

  private entry(id: string): TaskEntry {
    let e = this.tasks.get(id);
    if (!e) {
      e = {};
      this.tasks.set(id, e);
    }
    return e;
  }

  async prepare(task: Task): Promise<void> {
    const spec = task.spec?.container;
    if (!spec?.image) throw new ExecutorError(`task ${task.id} has no image`, false);
    const e = this.entry(task.id);
    e.task = task;
    if (await this.runtime.readState(task.id)) return;
    // The image and the network at once: a burst of tasks waits for one pull anyway.
    const release = this.useRegistryAuth(task);
    const pulling = this.images
      .pull(spec.image)
      .catch((err: unknown) => {
        throw toExecutorError(err, `pulling ${spec.image}`);
      })
      .finally(release);
    const attaching = this.opts.network
      ? this.opts.network.attach(task).then(
          (n) => {
            e.networked = true;
            return n;
          },
          (err: unknown) => {
            throw toExecutorError(err, `attaching task ${task.id} to its networks`);
          },
        )
      : Promise.resolve(undefined);
    const [pulled, attached] = await Promise.allSettled([pulling, attaching]);
    if (pulled.status === 'rejected' || attached.status === 'rejected') {
      if (attached.status === 'fulfilled' && attached.value && this.opts.network) await this.opts.network.detach(task.id).catch(() => undefined);
      throw pulled.status === 'rejected' ? pulled.reason : (attached as PromiseRejectedResult).reason;
    }
    const image: ImageRecord = pulled.value;
    const net = attached.value;
    try {
      const fileMounts = await this.taskFiles.setup(task);
      await this.runtime.create(taskToConfig(task, image, image.layers, net, fileMounts));
    } catch (err) {
      if (net && this.opts.network) await this.opts.network.detach(task.id).catch(() => undefined);
      await this.taskFiles.teardown(task.id).catch(() => undefined);
      throw toExecutorError(err, `creating the container of task ${task.id}`);
    }
    this.log.info('task prepared', { 'task.id': task.id, 'service.name': task.serviceName, 'image.ref': image.ref });
  }

  /**
   * The cluster's registry credentials a task brought (`--with-registry-auth`),
   * made available to the puller for the image's registry only while its pull
   * runs; returns the release. ExecutorError when they were not delivered.
   */
  private useRegistryAuth(task: Task): () => void {
    const ref = task.spec?.container?.registryAuth;
    if (!ref?.id) return () => undefined;
    const v = this.opts.files?.get('secret', ref.id);
    if (!v) throw new ExecutorError(`registry credentials "${ref.name}" were not delivered to this node`, true);
    let parsed: { registry?: unknown; username?: unknown; password?: unknown };
    try {
      parsed = JSON.parse(v.data.toString('utf8')) as typeof parsed;
    } catch {
      throw new ExecutorError(`registry credentials "${ref.name}" are not what registry login stores`, false);
    }
    if (typeof parsed.registry !== 'string' || typeof parsed.username !== 'string' || typeof parsed.password !== 'string')
      throw new ExecutorError(`registry credentials "${ref.name}" are not what registry login stores`, false);
    const host = parsed.registry;
    const e = this.clusterCreds.get(host) ?? { creds: { username: parsed.username, password: parsed.password }, pulls: 0 };
    e.creds = { username: parsed.username, password: parsed.password };
    e.pulls++;
    this.clusterCreds.set(host, e);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      if (--e.pulls <= 0 && this.clusterCreds.get(host) === e) this.clusterCreds.delete(host);
    };
  }

  async start(task: Task): Promise<void> {
    try {
      await this.runtime.start(task.id);
    } catch (err) {
      throw toExecutorError(err, `starting task ${task.id}`);
    }
    this.startHealth(task.id, task);
  }

  private startHealth(taskId: string, task: Task | undefined): void {
    const e = this.entry(taskId);
    if (e.health) return;
    void (async () => {
      const st = await this.runtime.readState(taskId);
      if (!st) return;
      const image = await this.images.get(st.config.image).catch(() => undefined);
      const fromSpec = task?.spec?.container?.healthcheck ?? undefined;
      const spec = healthSpec(fromSpec ?? undefined, image?.config.config?.Healthcheck);
      if (!spec) return;
      const cmd = healthCommand(spec.test);
      if (!cmd) return;
      const checker = new HealthChecker(
        spec,
        async (timeoutMs) => {
          const r = await this.runtime.execCollect(taskId, cmd, timeoutMs);
          return r.code === 0 && !r.timedOut;
        },
        (state) => {
          for (const l of this.listeners) l(taskId, state);
        },
      );
      e.health = checker;
      checker.start();
      this.runtime
        .wait(taskId)
        .then(() => checker.stop())
        .catch(() => checker.stop());
    })().catch((err) => this.log.warn('health check not started', { 'task.id': taskId, err: errMsg(err) }));
  }

  async wait(taskId: string): Promise<ExitResult> {
    try {
      const r = await this.runtime.wait(taskId);
      return { exitCode: r.exitCode, signal: r.signal, oomKilled: r.oomKilled, reason: r.reason };
    } catch (err) {
      throw toExecutorError(err, `waiting for task ${taskId}`);
    }
  }

  async stop(taskId: string, graceMs: number): Promise<void> {
    const st = await this.runtime.readState(taskId);
    if (!st) return;
    await this.runtime.stop(taskId, graceMs);
    this.tasks.get(taskId)?.health?.stop();
  }

  async remove(taskId: string): Promise<void> {
    const e = this.tasks.get(taskId);
    e?.health?.stop();
    try {
      await this.runtime.remove(taskId);
    } catch (err) {
      throw toExecutorError(err, `removing task ${taskId}`);
    }
    if (this.opts.network) await this.opts.network.detach(taskId).catch((err) => this.log.warn('network detach failed', { 'task.id': taskId, err: errMsg(err) }));
    // Its secrets and configs leave the node with it.
    await this.taskFiles.teardown(taskId).catch((err) => this.log.warn('secrets tmpfs not removed', { 'task.id': taskId, err: errMsg(err) }));
    this.tasks.delete(taskId);
  }

  async list(): Promise<ExistingContainer[]> {
    return (await this.runtime.list()).map((c) => ({ taskId: c.id, running: c.running, pid: c.pid }));
  }

  async adopt(taskId: string): Promise<void> {
    try {
      await this.runtime.adopt(taskId);
    } catch (err) {
      throw toExecutorError(err, `adopting task ${taskId}`);
    }
    if (await this.runtime.isRunning(taskId)) this.startHealth(taskId, this.tasks.get(taskId)?.task);
  }

  async stats(taskId: string): Promise<TaskStats | undefined> {
    const s = await this.runtime.stats(taskId).catch(() => undefined);
    if (!s) return undefined;
    return { timestampMs: Date.now(), cpuSeconds: s.cpuSeconds, memoryBytes: s.memoryBytes, memoryLimitBytes: s.memoryLimitBytes, pids: s.pids, netRxBytes: s.netRxBytes, netTxBytes: s.netTxBytes };
  }

  health(taskId: string): HealthState {
    return this.tasks.get(taskId)?.health?.state ?? 'none';
  }

  onHealthChange(listener: (taskId: string, state: HealthState) => void): void {
    this.listeners.push(listener);
  }

  /** `convoy task exec`: a process inside the task's container. */
  exec(taskId: string, opts: ExecOptions): Promise<ChildProcess> {
    return this.runtime.exec(taskId, opts);
  }

  /** Path of the task's JSON-lines log file (rotated files get .1, .2 ...). */
  logPath(taskId: string): string {
    return this.runtime.logPath(taskId);
  }

  /** Removes unused layers (keeping those of images and containers still on disk). */
  async gc(): Promise<{ removedLayers: string[] }> {
    return this.images.gc(await this.runtime.layersInUse());
  }

  async close(): Promise<void> {
    for (const e of this.tasks.values()) e.health?.stop();
  }
}

