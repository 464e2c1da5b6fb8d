// `convoy lab up|down`: a multi-host cluster on this machine. Hosts are
// network namespaces (`convoy-lab-h<i>`, 10.41.0.(10+i)) joined by the bridge
// `convoy-lab0` (10.41.0.1/24, the machine's side). The registry and NATS
// (JetStream) run on the machine side (10.41.0.1), the manager (with its
// embedded etcd, pointed at the lab's NATS) in host 1 — or, with
// `--managers M`, an etcd on the machine side and managers in hosts 1..M
// sharing it — one agent per host
// running real containers; each agent programs its own host's networking
// (bridge convoy0, VXLAN, nftables, DNS) inside its host namespace. Processes are started detached and recorded by pid in
// the lab's state file; `lab down` stops the processes by pid, removes the
// containers (no grace period) and task namespaces, the host
// namespaces and the bridge. See docs/lab.md.
//
// The same code serves the e2e tests and benchmarks (e2e/support/lab.ts).
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { ContainerExecutor } from '../agent/runtime/executor';
import { unmountUnder } from '../agent/runtime/runtime';
import { assembleImage, buildLayer, pushImage } from '../agent/runtime/image/push';
import { checkRanges, readHostNetworkFacts } from '../common/ranges';
import { DEFAULT_CLUSTER_CIDR, DEFAULT_VIP_CIDR } from '../agent/network/programmer';
import { TASK_NETNS_PREFIX, taskNetnsName } from '../agent/network/attacher';
import { createUnderlay, removeUnderlay } from './underlay';
import { hostSh, netnsSh } from '../agent/network/sh';
import { TOKEN_ENV } from '../cli/daemon/agent';
import { grpcPackages, type ControlClient, type Task } from '../proto/mod';
import { buildBusyboxRootfs } from './images';
import { MANAGER_PORT, MANAGER_METRICS_PORT, AGENT_METRICS_PORT } from '../proto/defaults';

export const LAB_DIR = process.env.CONVOY_LAB_DIR ?? '/var/lib/convoy-lab';
export const LAB_BRIDGE = 'convoy-lab0';
export const LAB_NETNS_PREFIX = 'convoy-lab-h';
export const LAB_CIDR = '10.41.0.0/24';
export const LAB_GATEWAY = '10.41.0.1';
export const LAB_REGISTRY_PORT = 5000;
export const LAB_NATS_PORT = 4222;
/** The lab's etcd (machine side) when it runs more than one manager. */
export const LAB_ETCD_PORT = 2379;
export { MANAGER_PORT };
export { MANAGER_METRICS_PORT };
export { AGENT_METRICS_PORT };
/** What a lab web server runs (busybox httpd): its page is "<hostname> <address>", so replicas tell apart. */
export const DEMO_HTTPD = 'mkdir -p /www && echo "$(hostname) $(hostname -i)" > /www/index.html && exec httpd -f -p 80 -h /www';
/** How long lab down waits for an agent to exit on SIGTERM before SIGKILL. */
const AGENT_STOP_GRACE_MS = 2_000;
const MAIN = path.join(__dirname, '..', 'cli', 'main.js');
const stateFile = (dir: string) => path.join(dir, 'lab.json');

/** Address of lab host i (1-based). */
export function labHostAddr(i: number): string {
  return `10.41.0.${10 + i}`;
}

export interface LabHost {
  index: number;
  netns: string;
  addr: string;
  agentDir: string;
  agentPid?: number;
}

export interface LabState {
  dir: string;
  /** host:port of the first manager (in host 1). */
  manager: string;
  /** host:port of every manager (host i runs manager i); [manager] when there is one. */
  managers?: string[];
  /** host:port of the registry (machine side of the lab bridge). */
  registry: string;
  /** URL of the lab's NATS (machine side of the lab bridge; JetStream store in the lab dir). */
  nats?: string;
  hosts: LabHost[];
  pids: { name: string; pid: number }[];
  /** Image pushed by --demo (or by labImage). */
  image?: string;
}

export interface LabOptions {
  hosts: number;
  managers?: number;
  demo?: boolean;
  dir?: string;
  /** Manager's agent heartbeat period ("1s"); shorter makes a dead host noticed sooner. */
  heartbeat?: string;
  out?: (s: string) => void;
}

function startDetached(dir: string, name: string, cmd: string, args: string[], env?: NodeJS.ProcessEnv): number {
  const log = fs.openSync(path.join(dir, `${name}.log`), 'a');
  const child = spawn(cmd, args, { detached: true, stdio: ['ignore', log, log], env: env ? { ...process.env, ...env } : process.env });
  fs.closeSync(log);
  child.unref();
  return child.pid!;
}

export async function waitFor(what: string, fn: () => Promise<boolean>, ms = 30_000, dir = LAB_DIR): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    if (await fn().catch(() => false)) return;
    if (Date.now() > end) throw new Error(`lab: timed out waiting for ${what} (logs in ${dir})`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export interface LabControl {
  c: ControlClient;
  call<R>(m: string, req: object): Promise<R>;
  close(): void;
}

/** A Control API client of the lab's manager. */
export function control(addr: string): LabControl {
  const c = new (grpcPackages().control.convoy.Control)(addr, grpc.credentials.createInsecure()) as unknown as ControlClient & Record<string, unknown>;
  return {
    c,
    call<R>(m: string, req: object): Promise<R> {
      const fn = c[m] as (r: object, cb: (e: grpc.ServiceError | null, r?: R) => void) => void;
      return new Promise<R>((res, rej) => fn.call(c, req, (e, r) => (e ? rej(new Error(e.details)) : res(r as R))));
    },
    close: () => c.close(),
  };
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function canConnect(hostPort: string): Promise<boolean> {
  const i = hostPort.lastIndexOf(':');
  return new Promise((resolve) => {
    const s = net.connect(Number(hostPort.slice(i + 1)), hostPort.slice(0, i));
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

async function stopPid(pid: number, graceMs = 10_000): Promise<void> {
  if (!alive(pid)) return;
  process.kill(pid, 'SIGTERM');
  const end = Date.now() + graceMs;
  while (alive(pid) && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
  if (alive(pid)) process.kill(pid, 'SIGKILL');
}

function saveLab(st: LabState): void {
  fs.writeFileSync(stateFile(st.dir), JSON.stringify(st, null, 2));
}

/**
 * Starts the lab's NATS (nats-server with JetStream, as the embedded default
 * runs it: manager/embedded/nats.ts) on the machine side of the bridge, its
 * store in the lab dir; records its pid as 'nats' in the state file and
 * returns once it accepts connections. Also what a test calls to bring NATS
 * back after stopLabNats: same address, same store (the JetStream stream
 * and its events survive).
 */
export async function startLabNats(st: LabState): Promise<number> {
  const running = st.pids.find((p) => p.name === 'nats' && alive(p.pid));
  if (running) throw new Error(`lab: NATS already runs (pid ${running.pid}); stopLabNats first`);
  const dir = path.join(st.dir, 'nats');
  fs.mkdirSync(dir, { recursive: true });
  const hostPort = `${LAB_GATEWAY}:${LAB_NATS_PORT}`;
  st.nats = `nats://${hostPort}`;
  const pid = startDetached(st.dir, 'nats', 'nats-server', ['-a', LAB_GATEWAY, '-p', String(LAB_NATS_PORT), '-js', '-sd', path.join(dir, 'jetstream')]);
  st.pids = [...st.pids.filter((p) => p.name !== 'nats'), { name: 'nats', pid }];
  saveLab(st);
  const end = Date.now() + 15_000;
  while (!(await canConnect(hostPort))) {
    const failed = !alive(pid) ? `nats-server exited at start (is ${hostPort} taken?)` : Date.now() > end ? `timed out waiting for NATS on ${hostPort}` : '';
    if (failed) {
      await stopPid(pid, 0);
      st.pids = st.pids.filter((p) => p.pid !== pid);
      saveLab(st);
      throw new Error(`lab: ${failed}; see ${path.join(st.dir, 'nats.log')}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return pid;
}

/** Stops the lab's NATS (SIGTERM, then SIGKILL after 10 s) and drops its pid from the state file; the store stays. */
export async function stopLabNats(st: LabState): Promise<void> {
  for (const p of st.pids.filter((x) => x.name === 'nats')) await stopPid(p.pid);
  st.pids = st.pids.filter((x) => x.name !== 'nats');
  saveLab(st);
}

/** Reads the state of the lab in dir, if one is up. */
export function readLab(dir = LAB_DIR): LabState | undefined {
  try {
    return JSON.parse(fs.readFileSync(stateFile(dir), 'utf8')) as LabState;
  } catch {
    return undefined;
  }
}

/** Builds the hosts and starts registry, manager and agents; returns once every agent is READY. */
export async function labUp(o: LabOptions): Promise<LabState> {
  const dir = o.dir ?? LAB_DIR;
  const out = o.out ?? (() => undefined);
  const n = Math.floor(Number(o.hosts));
  if (!Number.isInteger(n) || n < 1 || n > 200) throw new Error(`--hosts: "${o.hosts}" is not a number of hosts between 1 and 200`);
  const m = Math.floor(Number(o.managers ?? 1));
  if (!Number.isInteger(m) || m < 1 || m > n) throw new Error(`--managers: "${o.managers}" is not a number of managers between 1 and the number of hosts (${n})`);
  if (fs.existsSync(stateFile(dir))) throw new Error(`a lab is already up (${stateFile(dir)}); run \`convoy lab down\` first`);
  // Leftovers of a lab that crashed before writing its state: same names, so remove them.
  await removeLabNetwork();
  checkRanges(
    [
      { name: 'lab network', cidr: LAB_CIDR },
      { name: 'cluster CIDR', cidr: DEFAULT_CLUSTER_CIDR },
      { name: 'VIP range', cidr: DEFAULT_VIP_CIDR },
    ],
    readHostNetworkFacts(),
  );
  await mountLabDisk(dir);
  const managers = Array.from({ length: m }, (_, i) => `${labHostAddr(i + 1)}:${MANAGER_PORT}`);
  const st: LabState = { dir, manager: managers[0], managers, registry: `${LAB_GATEWAY}:${LAB_REGISTRY_PORT}`, hosts: [], pids: [] };
  for (let i = 1; i <= n; i++) st.hosts.push({ index: i, netns: `${LAB_NETNS_PREFIX}${i}`, addr: labHostAddr(i), agentDir: path.join(dir, `agent-h${i}`) });
  const save = () => saveLab(st);
  save();

  // Hosts.
  await createUnderlay({ bridge: LAB_BRIDGE, bridgeCidr: `${LAB_GATEWAY}/24`, hosts: st.hosts.map((h) => ({ netns: h.netns, addr: h.addr })) });

  // Registry, on the machine side of the bridge.
  fs.mkdirSync(path.join(dir, 'registry'), { recursive: true });
  const regCfg = path.join(dir, 'registry.yml');
  fs.writeFileSync(regCfg, `version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: ${path.join(dir, 'registry')}\nhttp:\n  addr: ${st.registry}\n`);
  st.pids.push({ name: 'registry', pid: startDetached(dir, 'registry', 'docker-registry', ['serve', regCfg]) });
  save();
  await waitFor('the registry', async () => (await fetch(`http://${st.registry}/v2/`)).ok, 30_000, dir);

  // NATS (JetStream), on the machine side of the bridge too: the manager and every agent reach it there.
  await startLabNats(st);

  // One manager: the embedded default (its own etcd) in host 1. More: an etcd on the machine side
  // of the bridge, shared by managers in hosts 1..M. Agents get the NATS URL from their session.
  let etcdUrl: string | undefined;
  if (m > 1) {
    etcdUrl = `http://${LAB_GATEWAY}:${LAB_ETCD_PORT}`;
    const peer = `http://${LAB_GATEWAY}:${LAB_ETCD_PORT + 1}`;
    const etcdArgs = ['--name', 'convoy-lab', '--data-dir', path.join(dir, 'etcd'), '--listen-client-urls', etcdUrl, '--advertise-client-urls', etcdUrl, '--listen-peer-urls', peer, '--initial-advertise-peer-urls', peer, '--initial-cluster', `convoy-lab=${peer}`, '--log-level', 'warn'];
    st.pids.push({ name: 'etcd', pid: startDetached(dir, 'etcd', 'etcd', etcdArgs) });
    save();
    await waitFor('the lab etcd', async () => (await fetch(`${etcdUrl}/health`)).ok, 30_000, dir);
  }
  for (let i = 0; i < m; i++) {
    const name = i === 0 ? 'manager' : `manager-h${i + 1}`;
    const mArgs = [MAIN, 'manager', '--listen', managers[i], '--data-dir', path.join(dir, name), '--metrics-listen', `${labHostAddr(i + 1)}:${MANAGER_METRICS_PORT}`, '--nats', st.nats!];
    if (etcdUrl) mArgs.push('--etcd', etcdUrl);
    if (o.heartbeat) mArgs.push('--heartbeat-period', o.heartbeat);
    st.pids.push({ name, pid: startDetached(dir, name, 'nsenter', [`--net=/run/netns/${st.hosts[i].netns}`, '--', process.execPath, ...mArgs]) });
  }
  save();
  const api = control(st.manager);
  try {
    for (const addr of managers) {
      const c = control(addr);
      try {
        await waitFor(`the manager at ${addr}`, async () => !!(await c.call('GetClusterInfo', {})), 60_000, dir);
      } finally {
        c.close();
      }
    }
    const tokens = await api.call<{ worker: string }>('GetJoinTokens', {});

    // One agent per host, inside its namespace.
    for (const h of st.hosts) {
      const args = [MAIN, 'agent', '--manager', managers.join(','), '--state-dir', h.agentDir, '--hostname', `lab-h${h.index}`, '--advertise-addr', h.addr, '--insecure-registry', st.registry, '--metrics-listen', `${h.addr}:${AGENT_METRICS_PORT}`];
      // The join token goes through the environment (argv shows in ps).
      h.agentPid = startDetached(dir, `agent-h${h.index}`, 'nsenter', [`--net=/run/netns/${h.netns}`, '--', process.execPath, ...args], { [TOKEN_ENV]: tokens.worker });
      st.pids.push({ name: `agent-h${h.index}`, pid: h.agentPid });
    }
    save();
    await waitFor(
      `${n} ready agents`,
      async () => (await api.call<{ nodes: { status: { state: string } | null }[] }>('ListNodes', {})).nodes.filter((x) => x.status?.state === 'NODE_READY').length >= n,
      60_000,
      dir,
    );
    out(`lab up: ${n} hosts (${st.hosts.map((h) => `${h.netns} ${h.addr}`).join(', ')}), manager${m > 1 ? 's' : ''} ${managers.join(', ')}, registry ${st.registry}, NATS ${st.nats} (state in ${dir})\n`);

    if (o.demo) {
      st.image = await pushLabImage(st);
      save();
      await api.call('CreateService', {
        spec: {
          name: 'web',
          replicas: 3,
          container: { image: st.image, args: ['sh', '-c', DEMO_HTTPD] },
          resources: { limits: { memoryBytes: 32 * 1024 * 1024, nanoCpus: 2e8, pids: 64 } },
          endpoint: { ports: [{ protocol: 'tcp', targetPort: 80, publishedPort: 8080 }] },
        },
      });
      await waitFor(
        '3 running replicas of web',
        async () => {
          const { tasks } = await api.call<{ tasks: Task[] }>('ListTasks', { service: 'web' });
          return tasks.filter((t) => t.desiredState === 'RUNNING' && t.status?.state === 'RUNNING').length === 3;
        },
        90_000,
        dir,
      );
      out(
        [
          '',
          `Demo service "web" runs 3 busybox httpd containers spread over the hosts, published on port 8080 of every host.`,
          'Try:',
          `  export CONVOY_HOST=${st.manager}`,
          '  node dist/cli/main.js service ps web',
          ...st.hosts.map((h) => `  busybox wget -O- http://${h.addr}:8080/      # answered by one of the replicas`),
          '  node dist/cli/main.js service scale web=6',
          '  node dist/cli/main.js node ls',
          '  node dist/cli/main.js lab down           # remove everything',
          '',
        ].join('\n'),
      );
    }
    return st;
  } catch (e) {
    save();
    throw e;
  } finally {
    api.close();
  }
}

/** Pushes the busybox image to the lab's registry; returns its reference. */
export async function pushLabImage(st: LabState): Promise<string> {
  const rootfs = path.join(st.dir, 'image-rootfs');
  fs.rmSync(rootfs, { recursive: true, force: true });
  buildBusyboxRootfs(rootfs);
  const image = assembleImage([await buildLayer(rootfs)], { cmd: ['sh'] });
  const ref = `${st.registry}/convoy-lab/busybox:1`;
  await pushImage(image, ref, { insecureRegistries: [st.registry] });
  fs.rmSync(rootfs, { recursive: true, force: true });
  return ref;
}

/** "Kills" host i: SIGKILL to its agent and its link down, as a host losing power; its containers are stopped. */
export async function killLabHost(st: LabState, index: number): Promise<void> {
  const h = st.hosts.find((x) => x.index === index);
  if (!h) throw new Error(`lab: no host ${index}`);
  await hostSh.run('ip', ['-n', h.netns, 'link', 'set', 'eth0', 'down']);
  if (h.agentPid && alive(h.agentPid)) process.kill(h.agentPid, 'SIGKILL');
  // A manager on that host dies with it.
  const mgr = st.pids.find((p) => p.name === (index === 1 ? 'manager' : `manager-h${index}`));
  if (mgr && alive(mgr.pid)) process.kill(mgr.pid, 'SIGKILL');
  await removeContainers(h.agentDir);
}

async function removeContainers(agentDir: string): Promise<string[]> {
  if (!fs.existsSync(agentDir)) return [];
  const ex = new ContainerExecutor({ stateDir: agentDir });
  const ids: string[] = [];
  try {
    const list = await ex.list();
    await Promise.all(
      list.map(async (c) => {
        ids.push(c.taskId);
        await ex.stop(c.taskId, 0).catch(() => undefined);
        await ex.remove(c.taskId).catch(() => undefined);
      }),
    );
  } finally {
    await ex.close();
  }
  return ids;
}

/** Task namespaces wired to a lab host (peers of its cvy* veths), found through the host's netns ids. */
async function taskNamespacesOf(hostNetns: string): Promise<string[]> {
  const sh = netnsSh(hostNetns);
  const ids = await sh.run('ip', ['-j', 'netns', 'list-id']).catch(() => '[]');
  return (ids.trim() ? (JSON.parse(ids) as { nsid: number; name?: string }[]) : []).map((x) => x.name ?? '').filter((x) => x.startsWith(TASK_NETNS_PREFIX));
}

/** Removes the lab's namespaces (hosts and the tasks wired to them) and its bridge; idempotent. */
export async function removeLabNetwork(extraTaskNetns: string[] = []): Promise<void> {
  const list = await hostSh.run('ip', ['-j', 'netns', 'list']).catch(() => '');
  const hostsNs = (list.trim() ? (JSON.parse(list) as { name: string }[]) : []).map((x) => x.name).filter((x) => x.startsWith(LAB_NETNS_PREFIX));
  const tasks = new Set(extraTaskNetns);
  for (const h of hostsNs) for (const t of await taskNamespacesOf(h)) tasks.add(t);
  if (tasks.size) await hostSh.run('ip', ['-force', '-batch', '-'], [...tasks].map((t) => `netns del ${t}`).join('\n') + '\n').catch(() => undefined);
  await removeUnderlay(LAB_BRIDGE, LAB_NETNS_PREFIX);
}

/** Source name of the lab's tmpfs, as /proc/mounts shows it. */
export const LAB_TMPFS = 'convoy-lab';

function isMountPoint(dir: string): boolean {
  const target = path.resolve(dir);
  return fs
    .readFileSync('/proc/self/mounts', 'utf8')
    .split('\n')
    .some((l) => l.split(' ')[1] === target);
}

/**
 * The lab's files (etcd, registry, every host's images, containers and logs) live on a tmpfs of
 * their own: the hosts' disks of a throwaway cluster. Besides going with the lab at once, it keeps
 * the lab off this machine's root filesystem, an ext4 without a journal, whose inode allocator
 * skips every inode deleted in the last minutes and reads each one to do so: after earlier labs
 * deleted their files, creating files there cost a hundred containers' start more CPU than
 * anything Convoy does (docs/lab.md). CONVOY_LAB_TMPFS=0 keeps the lab on the machine's disk.
 */
async function mountLabDisk(dir: string): Promise<void> {
  fs.mkdirSync(dir, { recursive: true });
  if (process.env.CONVOY_LAB_TMPFS === '0' || isMountPoint(dir)) return;
  await hostSh.run('mount', ['-t', 'tmpfs', '-o', 'mode=0755', LAB_TMPFS, dir]);
}

/** Tears the lab in dir down: services, processes, containers, namespaces, bridge, files. */
export async function labDown(dir = LAB_DIR, out: (s: string) => void = () => undefined): Promise<void> {
  const st = readLab(dir);
  if (!st) {
    await removeLabNetwork();
    await unmountUnder(path.resolve(dir));
    out('no lab is up\n');
    return;
  }
  // Any manager still alive (a test may have killed some).
  const mgr = st.pids.find((p) => p.name.startsWith('manager') && alive(p.pid));
  const taskIds = new Set<string>();
  const mgrAddr = mgr && (st.managers ?? [st.manager])[mgr.name === 'manager' ? 0 : Number(mgr.name.slice('manager-h'.length)) - 1];
  if (mgrAddr) {
    // The task list names the task namespaces to remove. Services are not removed one by one:
    // the containers are stopped below without a grace period, and the store goes with the lab.
    const api = control(mgrAddr);
    try {
      for (const t of (await api.call<{ tasks: Task[] }>('ListTasks', {})).tasks) taskIds.add(t.id);
    } catch {
      /* the manager may be half up: fall through to the hard cleanup */
    }
    api.close();
  }
  // Agents first, then the manager (and its etcd), NATS and the registry, one after the other.
  // An agent whose containers ran may not exit on SIGTERM (open pipes keep it alive after "agent
  // stopped"); its containers are removed below anyway, so it gets a short grace.
  await Promise.all(st.pids.filter((p) => p.name.startsWith('agent')).map((p) => stopPid(p.pid, AGENT_STOP_GRACE_MS)));
  await Promise.all(st.pids.filter((p) => p.name.startsWith('manager')).map((p) => stopPid(p.pid)));
  for (const name of ['nats', 'etcd', 'registry']) await Promise.all(st.pids.filter((p) => p.name === name).map((p) => stopPid(p.pid)));
  // The containers (an agent leaves them running when it stops): stop and remove them.
  for (const ids of await Promise.all(st.hosts.map((h) => removeContainers(h.agentDir)))) for (const id of ids) taskIds.add(id);
  await removeLabNetwork([...taskIds].map(taskNetnsName));
  await unmountUnder(path.resolve(dir));
  fs.rmSync(dir, { recursive: true, force: true });
  out('lab down: every process, container, namespace, link and file of the lab removed\n');
}
