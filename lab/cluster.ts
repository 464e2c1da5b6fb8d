// Bringing the whole lab up and down: the hosts (underlay), the machine-side
// services (services.ts), the managers (manager 1 runs the lab's NATS) and one agent per host, each the real
// `convoy` binary inside its host's namespace, started detached and recorded
// by pid in the state file (state.ts); `labDown` stops them by pid and
// removes the containers (no grace period), the task and host namespaces,
// the bridge and the files.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { canConnect } from '../common/net';
import { configPath, readClientConfig, writeClientConfig } from '../common/client-config';
import { readBundle } from '../common/identity';
import { unmountUnder } from '../agent/runtime/runtime';
import { taskNetnsName } from '../agent/network/attacher';
import { checkRanges, readHostNetworkFacts } from '../common/ranges';
import { loadOrCreateKek } from '../manager/crypto/kek';
import { connectControl, mtls, type ClientSecurity } from '../proto/client';
import { AGENT_METRICS_PORT, DEFAULT_CLUSTER_CIDR, DEFAULT_VIP_CIDR, MANAGER_METRICS_PORT, TOKEN_ENV } from '../proto/defaults';
import { runDemo } from './demo';
import { removeContainers, removeLabNetwork } from './hosts';
import { pushLabImage } from './images';
import { alive, startDetached, stopPid } from './procs';
import { LAB_NATS_HOST_PORT, LAB_NATS_URL, labNatsPids, labWait, startLabEtcd, startLabRegistry } from './services';
import { LAB_DIR, mountLabDisk, readLab, recordPid, saveLab, stateFile, type LabState } from './state';
import { LAB_BRIDGE, LAB_CIDR, LAB_GATEWAY, LAB_MAX_HOSTS, LAB_NATS_PORT, LAB_REGISTRY, labAgentName, labHostAddr, labHostname, labHosts, labManagerAddr, labManagerIndex, labManagerName } from './topology';
import { createUnderlay } from './underlay';

export interface LabOptions {
  hosts: number;
  managers?: number;
  demo?: boolean;
  dir?: string;
  /** Manager's agent heartbeat period ("1s"); shorter makes a dead host noticed sooner. */
  heartbeat?: string;
  /** Lifetime of node certificates ("1m": the cluster's minimum), given to every manager (`convoy manager --cert-expiry`); renewal tests. */
  certExpiry?: string;
  /**
   * Write the per-user client config file (~/.convoy/config.json) pointing the CLI at the lab's
   * manager and admin bundle (`convoy lab up`; tests pass false). An existing file lab up did not
   * write is left alone.
   */
  clientConfig?: boolean;
  out?: (s: string) => void;
}

/** How long lab down waits for an agent to exit on SIGTERM before SIGKILL. */
const AGENT_STOP_GRACE_MS = 2_000;
/** Bound on a manager's start and on every agent reaching READY. */
const CLUSTER_START_MS = 60_000;
const MAIN = path.join(__dirname, '..', 'cli', 'main.js');

/** The credentials of the lab's admin bundle (what the CLI, tests and benchmarks use against the lab). */
export function labSecurity(st: LabState): ClientSecurity {
  if (!st.tlsDir) throw new Error(`the lab in ${st.dir} has no admin bundle (not up yet?)`);
  return mtls(readBundle(st.tlsDir));
}

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

  // One manager: the embedded default (its own etcd) in host 1. More: an etcd on the machine side
  // of the bridge, shared by managers in hosts 1..M. NATS: manager 1's embedded one on its host
  // address (TLS with its certificate from the cluster CA; it admits every node, manager and user
  // of the store as they come), the other managers use it; agents get the URL from their session.
  st.nats = LAB_NATS_URL;
  const sharedEtcd = m > 1 ? await startLabEtcd(st, Array.from({ length: m }, (_, i) => labManagerName(i + 1))) : undefined;
  // One key-encryption key for every manager (each must open the secrets any other sealed), made before they start.
  const kekFile = path.join(dir, 'kek');
  loadOrCreateKek(kekFile);
  for (let i = 1; i <= m; i++) {
    const name = labManagerName(i);
    const args = ['manager', '--listen', managers[i - 1], '--data-dir', path.join(dir, name), '--metrics-listen', `${labHostAddr(i)}:${MANAGER_METRICS_PORT}`, '--kek-file', kekFile];
    args.push(...(i === 1 ? ['--nats', 'embedded', '--nats-port', String(LAB_NATS_PORT)] : ['--nats', LAB_NATS_URL]));
    if (sharedEtcd) args.push(...sharedEtcd.managerFlags.get(name)!);
    if (o.heartbeat) args.push('--heartbeat-period', o.heartbeat);
    if (o.certExpiry) args.push('--cert-expiry', o.certExpiry);
    recordPid(st, name, startInHost(st, st.hosts[i - 1].netns, name, args));
  }
  // Every manager writes an admin bundle into its data dir once it holds the CA: the lab uses manager 1's.
  st.tlsDir = path.join(dir, labManagerName(1), 'admin');
  await labWait(st, 'the admin bundle of manager 1', async () => fs.existsSync(path.join(st.tlsDir!, 'key.pem')), CLUSTER_START_MS);
  saveLab(st);
  const security = labSecurity(st);
  const api = connectControl(st.manager, { security });
  try {
    for (const addr of managers) {
      const c = connectControl(addr, { security });
      try {
        await labWait(st, `the manager at ${addr}`, async () => !!(await c.getClusterInfo({})), CLUSTER_START_MS);
      } finally {
        c.close();
      }
    }
    // Manager 1 runs on without NATS when it could not start one (it logs why): the lab needs it.
    await labWait(st, `manager 1's NATS on ${LAB_NATS_HOST_PORT}`, () => canConnect(LAB_NATS_HOST_PORT), CLUSTER_START_MS);
    const tokens = await api.getJoinTokens({});

    // One agent per host, inside its namespace.
    for (const h of st.hosts) {
      const args = ['agent', '--manager', managers.join(','), '--state-dir', h.agentDir, '--hostname', labHostname(h.index), '--advertise-addr', h.addr, '--insecure-registry', st.registry, '--metrics-listen', `${h.addr}:${AGENT_METRICS_PORT}`];
      // The join token goes through the environment (argv shows in ps).
      h.agentPid = recordPid(st, labAgentName(h.index), startInHost(st, h.netns, labAgentName(h.index), args, { [TOKEN_ENV]: tokens.worker }));
    }
    saveLab(st);
    await labWait(st, `${n} ready agents`, async () => (await api.listNodes({})).nodes.filter((x) => x.status?.state === 'NODE_READY').length >= n, CLUSTER_START_MS);
    if (o.clientConfig) {
      const existing = readClientConfig();
      if (!fs.existsSync(configPath()) || existing.lab) {
        // Named contexts (convoy context) in the file are kept.
        st.clientConfig = writeClientConfig({ contexts: existing.contexts, currentContext: existing.currentContext, host: st.manager, tlsDir: st.tlsDir, lab: dir });
        saveLab(st);
      } else out(`(${configPath()} exists and is not the lab's: left alone; use --tls-dir ${st.tlsDir} --host ${st.manager})\n`);
    }
    out(`lab up: ${n} hosts (${st.hosts.map((h) => `${h.netns} ${h.addr}`).join(', ')}), manager${m > 1 ? 's' : ''} ${managers.join(', ')}, registry ${st.registry}, NATS ${st.nats ?? 'none'} (state in ${dir})\n`);

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
    try {
      const api = connectControl(mgrAddr, { security: labSecurity(st) });
      try {
        for (const t of (await api.listTasks({})).tasks) taskIds.add(t.id);
      } finally {
        api.close();
      }
    } catch {
      /* the manager (or its bundle) may be half up: fall through to the hard cleanup */
    }
  }
  // Agents first, then the manager (and its etcd), NATS and the registry, one after the other.
  // An agent whose containers ran may not exit on SIGTERM (open pipes keep it alive after "agent
  // stopped"); its containers are removed below anyway, so it gets a short grace.
  await Promise.all(st.pids.filter((p) => p.name.startsWith('agent')).map((p) => stopPid(p.pid, AGENT_STOP_GRACE_MS)));
  await Promise.all(st.pids.filter((p) => p.name.startsWith('manager')).map((p) => stopPid(p.pid)));
  // Manager 1's NATS outlives a manager killed with SIGKILL (killLabHost), or was started again by startLabNats.
  await Promise.all(labNatsPids(st).map((pid) => stopPid(pid)));
  for (const name of ['nats', 'etcd', 'registry']) await Promise.all(st.pids.filter((p) => p.name === name).map((p) => stopPid(p.pid)));
  // The containers (an agent leaves them running when it stops): stop and remove them.
  for (const ids of await Promise.all(st.hosts.map((h) => removeContainers(h.agentDir)))) for (const id of ids) taskIds.add(id);
  await removeLabNetwork([...taskIds].map(taskNetnsName));
  await unmountUnder(path.resolve(dir));
  fs.rmSync(dir, { recursive: true, force: true });
  // The client config lab up wrote (only if it is still the one pointing at this lab).
  // Named contexts (convoy context) the operator added to it stay.
  const cfg = st.clientConfig ? readClientConfigAt(st.clientConfig) : undefined;
  if (st.clientConfig && cfg?.lab === dir) {
    if (cfg.contexts && Object.keys(cfg.contexts).length) fs.writeFileSync(st.clientConfig, JSON.stringify({ contexts: cfg.contexts, currentContext: cfg.currentContext }, null, 2) + '\n', { mode: 0o600 });
    else fs.rmSync(st.clientConfig, { force: true });
  }
  out('lab down: every process, container, namespace, link and file of the lab removed\n');
}

function readClientConfigAt(file: string): { lab?: string; contexts?: Record<string, unknown>; currentContext?: string } | undefined {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as { lab?: string; contexts?: Record<string, unknown>; currentContext?: string };
  } catch {
    return undefined;
  }
}
