// Bringing the whole lab up and down: the hosts (underlay), the machine-side
// services (services.ts), the managers and one agent per host, each the real
// `convoy` binary inside its host's namespace, started detached and recorded
// by pid in the state file (state.ts); `labDown` stops them by pid and
// removes the containers (no grace period), the task and host namespaces,
// the bridge and the files.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { unmountUnder } from '../agent/runtime/runtime';
import { taskNetnsName } from '../agent/network/attacher';
import { checkRanges, readHostNetworkFacts } from '../common/ranges';
import { connectControl } from '../proto/client';
import { AGENT_METRICS_PORT, DEFAULT_CLUSTER_CIDR, DEFAULT_VIP_CIDR, MANAGER_METRICS_PORT, TOKEN_ENV } from '../proto/defaults';
import { runDemo } from './demo';
import { removeContainers, removeLabNetwork } from './hosts';
import { pushLabImage } from './images';
import { alive, startDetached, stopPid } from './procs';
import { labWait, startLabEtcd, startLabNats, startLabRegistry } from './services';
import { LAB_DIR, mountLabDisk, readLab, recordPid, saveLab, stateFile, type LabState } from './state';
import { LAB_BRIDGE, LAB_CIDR, LAB_GATEWAY, LAB_MAX_HOSTS, LAB_REGISTRY, labAgentName, labHostAddr, labHostname, labHosts, labManagerAddr, labManagerIndex, labManagerName } from './topology';
import { createUnderlay } from './underlay';

export interface LabOptions {
  hosts: number;
  managers?: number;
  demo?: boolean;
  dir?: string;
  /** Manager's agent heartbeat period ("1s"); shorter makes a dead host noticed sooner. */
  heartbeat?: string;
  out?: (s: string) => void;
}

/** How long lab down waits for an agent to exit on SIGTERM before SIGKILL. */
const AGENT_STOP_GRACE_MS = 2_000;
/** Bound on a manager's start and on every agent reaching READY. */
const CLUSTER_START_MS = 60_000;
const MAIN = path.join(__dirname, '..', 'cli', 'main.js');

/** Runs the convoy binary inside a host's namespace, detached; returns its pid. */
function startInHost(st: LabState, netns: string, name: string, args: string[], env?: NodeJS.ProcessEnv): number {
  return startDetached(st.dir, name, 'nsenter', [`--net=/run/netns/${netns}`, '--', process.execPath, MAIN, ...args], env);
}

/** Builds the hosts and starts registry, manager and agents; returns once every agent is READY. */
export async function labUp(o: LabOptions): Promise<LabState> {
  const dir = o.dir ?? LAB_DIR;
  const out = o.out ?? (() => undefined);
  const n = Math.floor(Number(o.hosts));
  if (!Number.isInteger(n) || n < 1 || n > LAB_MAX_HOSTS) throw new Error(`--hosts: "${o.hosts}" is not a number of hosts between 1 and ${LAB_MAX_HOSTS}`);
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
  const managers = Array.from({ length: m }, (_, i) => labManagerAddr(i + 1));
  const st: LabState = { dir, manager: managers[0], managers, registry: LAB_REGISTRY, hosts: labHosts(n, dir), pids: [] };
  saveLab(st);

  // Hosts, then the machine-side services every host reaches.
  await createUnderlay({ bridge: LAB_BRIDGE, bridgeCidr: `${LAB_GATEWAY}/24`, hosts: st.hosts.map((h) => ({ netns: h.netns, addr: h.addr })) });
  await startLabRegistry(st);
  await startLabNats(st);

  // One manager: the embedded default (its own etcd) in host 1. More: an etcd on the machine side
  // of the bridge, shared by managers in hosts 1..M. Agents get the NATS URL from their session.
  const etcdUrl = m > 1 ? await startLabEtcd(st) : undefined;
  for (let i = 1; i <= m; i++) {
    const name = labManagerName(i);
    const args = ['manager', '--listen', managers[i - 1], '--data-dir', path.join(dir, name), '--metrics-listen', `${labHostAddr(i)}:${MANAGER_METRICS_PORT}`, '--nats', st.nats!];
    if (etcdUrl) args.push('--etcd', etcdUrl);
    if (o.heartbeat) args.push('--heartbeat-period', o.heartbeat);
    recordPid(st, name, startInHost(st, st.hosts[i - 1].netns, name, args));
  }
  const api = connectControl(st.manager);
  try {
    for (const addr of managers) {
      const c = connectControl(addr);
      try {
        await labWait(st, `the manager at ${addr}`, async () => !!(await c.getClusterInfo({})), CLUSTER_START_MS);
      } finally {
        c.close();
      }
    }
    const tokens = await api.getJoinTokens({});

    // One agent per host, inside its namespace.
    for (const h of st.hosts) {
      const args = ['agent', '--manager', managers.join(','), '--state-dir', h.agentDir, '--hostname', labHostname(h.index), '--advertise-addr', h.addr, '--insecure-registry', st.registry, '--metrics-listen', `${h.addr}:${AGENT_METRICS_PORT}`];
      // The join token goes through the environment (argv shows in ps).
      h.agentPid = recordPid(st, labAgentName(h.index), startInHost(st, h.netns, labAgentName(h.index), args, { [TOKEN_ENV]: tokens.worker }));
    }
    saveLab(st);
    await labWait(st, `${n} ready agents`, async () => (await api.listNodes({})).nodes.filter((x) => x.status?.state === 'NODE_READY').length >= n, CLUSTER_START_MS);
    out(`lab up: ${n} hosts (${st.hosts.map((h) => `${h.netns} ${h.addr}`).join(', ')}), manager${m > 1 ? 's' : ''} ${managers.join(', ')}, registry ${st.registry}, NATS ${st.nats} (state in ${dir})\n`);

    if (o.demo) {
      st.image = await pushLabImage(st);
      saveLab(st);
      out(await runDemo(st, api, st.image));
    }
    return st;
  } catch (e) {
    saveLab(st);
    throw e;
  } finally {
    api.close();
  }
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
  const mgrAddr = mgr && (st.managers ?? [st.manager])[labManagerIndex(mgr.name) - 1];
  if (mgrAddr) {
    // The task list names the task namespaces to remove. Services are not removed one by one:
    // the containers are stopped below without a grace period, and the store goes with the lab.
    const api = connectControl(mgrAddr);
    try {
      for (const t of (await api.listTasks({})).tasks) taskIds.add(t.id);
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
