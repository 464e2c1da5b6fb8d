// The runtime's proof points through the whole path: a real manager (etcd,
// in this process) and a real agent with the ContainerExecutor as a child
// process (so `kill -9` is real), images in a real registry.
//
// 1. An image whose registry is down: the task is REJECTED with a reason
//    naming the registry, the orchestrator creates a new task for the slot
//    (attempt + 1) per the restart policy, and once the registry is up on the
//    same port with the image pushed, the service runs.
// 2. An unknown image: REJECTED with a reason naming the image.
// 3. The agent killed with kill -9 while 2 containers run, the service
//    removed meanwhile, the agent restarted on the same state dir: no
//    container process, cgroup, mount or container dir of those tasks is left.
import { strict as assert } from 'node:assert';
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { startManager, type ManagerHandle } from '../manager/mod';
import { freePort, stopChild } from '../common/net';
import { connectControl, type ControlApi, type ControlConnection } from '../proto/client';
import { adminSecurity } from './support/security';
import { nullLogger } from '../common/logger';
import type { Task } from '../proto/mod';
import type { AgentOptions } from '../agent/mod';
import { Runtime, alive, type ContainerState } from '../agent/runtime/runtime';
import { detectCgroupDriver } from '../agent/runtime/cgroups/cgroups';
import { startEtcd, type TestEtcd } from '../lab/etcd';
import { eventually } from '../common/eventually';
import { pushBusyboxImage } from '../lab/images';
import { REGISTRY_BINARY, killOrphanedRegistries } from '../lab/registry';
import { killOrphans } from '../lab/procs';

/** Everything of this file lives here (agent state, registry storage, manager data). */
const ROOT = '/tmp/convoy-test-e2e-runtime';
const AGENT_DIR = path.join(ROOT, 'agent');
const PROC_MAIN = path.join(__dirname, 'support', 'proc-main.js');
/** Bound on waiting for the cluster (I/O, not a timing assertion). */
const WAIT_MS = 30_000;

// ---- a registry that can be started later on a port chosen now ----------

interface PortRegistry {
  host: string;
  stop(): Promise<void>;
}

/** docker-registry on 127.0.0.1:`port` (the support helper picks its own port; here it must be the one the service names). */
async function startRegistryAt(port: number): Promise<PortRegistry> {
  killOrphanedRegistries();
  // under a convoy-test-registry- dir so killOrphanedRegistries finds it after a crash
  const dir = fs.mkdtempSync(path.join(ROOT, 'convoy-test-registry-'));
  const host = `127.0.0.1:${port}`;
  const config = path.join(dir, 'config.yml');
  fs.writeFileSync(
    config,
    ['version: 0.1', 'log:', '  level: error', '  accesslog:', '    disabled: true', 'storage:', '  filesystem:', `    rootdirectory: ${path.join(dir, 'data')}`, 'http:', `  addr: ${host}`, ''].join('\n'),
  );
  const child = spawn(REGISTRY_BINARY, ['serve', config], { stdio: ['ignore', 'ignore', 'ignore'] });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exited;
    }
    fs.rmSync(dir, { recursive: true, force: true });
  };
  try {
    await eventually(async () => (await fetch(`http://${host}/v2/`)).ok, `docker-registry on ${host}`, 15_000);
  } catch (e) {
    await stop();
    throw e;
  }
  return { host, stop };
}

// ---- the agent as a child process (e2e/support/proc-main.ts) --------------

interface AgentProc {
  child: ChildProcess;
  exited: Promise<void>;
}

function spawnAgent(opts: AgentOptions): Promise<AgentProc> {
  const child = spawn(process.execPath, [PROC_MAIN, JSON.stringify({ role: 'agent', opts })], { stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-4000)));
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (/READY .*\n/.test(out)) resolve({ child, exited });
    });
    child.once('exit', (code) => reject(new Error(`agent exited (${code}) before it was ready: ${err}`)));
  });
}

/** Agents of a crashed earlier run of this file: re-parented to pid 1, running proc-main with our state dir. */
function killOrphanedAgents(): void {
  killOrphans((o) => o.cmdline.some((a) => a.endsWith('proc-main.js')) && o.cmdline.some((a) => a.includes(AGENT_DIR)));
}

/** Containers the agent state dir still holds (a crashed run's, or ours at the end). */
async function removeContainers(): Promise<void> {
  const rt = new Runtime({ stateDir: AGENT_DIR, layersRoot: path.join(AGENT_DIR, 'layers') });
  for (const c of await rt.list()) await rt.remove(c.id).catch(() => undefined);
}

async function clearLeftovers(): Promise<void> {
  killOrphanedAgents();
  killOrphanedRegistries();
  await removeContainers();
  fs.rmSync(ROOT, { recursive: true, force: true });
  fs.mkdirSync(ROOT, { recursive: true });
}

const tasksOf = async (api: ControlApi, service: string): Promise<Task[]> => (await api.listTasks({ service })).tasks;
const stateOf = (t: Task) => t.status?.state ?? 'NEW';
const reasonOf = (t: Task) => `${t.status?.message ?? ''}: ${t.status?.err ?? ''}`;

describe('runtime through the agent (e2e)', function () {
  this.timeout(120_000);
  let etcd: TestEtcd | undefined;
  let manager: ManagerHandle | undefined;
  let conn: ControlConnection | undefined;
  let api: ControlApi;
  let agent: AgentProc | undefined;
  let registry: PortRegistry | undefined;
  let agentOpts: AgentOptions;
  let registryPort = 0;
  let registryHost = '';

  /** The registry, up on the port the services name, with busybox pushed (the first case starts it late on purpose). */
  async function ensureRegistry(): Promise<void> {
    if (registry) return;
    registry = await startRegistryAt(registryPort);
    await pushBusyboxImage(registry.host);
  }

  before(async () => {
    await clearLeftovers();
    etcd = await startEtcd({ dataDir: path.join(ROOT, 'etcd') });
    manager = await startManager({
      dataDir: path.join(ROOT, 'manager'),
      listen: `127.0.0.1:${await freePort()}`,
      etcdEndpoints: etcd.endpoints,
      etcdTls: etcd.tls,
      heartbeatPeriodMs: 300,
      logger: nullLogger,
    });
    conn = connectControl(manager.grpcAddr, { security: adminSecurity(manager) });
    api = conn;
    registryPort = await freePort();
    registryHost = `127.0.0.1:${registryPort}`;
    agentOpts = {
      managers: [manager.grpcAddr],
      joinToken: (await api.getJoinTokens({})).worker,
      stateDir: AGENT_DIR,
      hostname: 'rt-e2e',
      advertiseAddr: '127.0.0.1',
      executor: 'container',
      runtime: { insecureRegistries: [registryHost] },
      runDir: path.join(ROOT, 'run'),
    };
    agent = await spawnAgent(agentOpts);
  });

  after(async () => {
    for (const s of ['rt-down', 'rt-unknown', 'rt-crash']) await api?.removeService({ service: s }).catch(() => undefined);
    await stopChild(agent?.child);
    conn?.close();
    await manager?.stop().catch(() => undefined);
    await etcd?.stop().catch(() => undefined);
    await registry?.stop().catch(() => undefined);
    await removeContainers().catch(() => undefined);
    fs.rmSync(ROOT, { recursive: true, force: true });
  });

  it('rejects a task whose registry is down, naming it; retries the slot; runs once the registry is up', async () => {
    const image = `${registryHost}/convoy-test/busybox:1`;
    await api.createService({
      spec: { name: 'rt-down', replicas: 1, container: { image, command: ['sleep', '3600'] }, restart: { condition: 'RESTART_ANY', delayMs: 300 } },
    });
    // the first attempt ends; its state is checked last, after the retry and the recovery
    const rejected = await eventually(async () => (await tasksOf(api, 'rt-down')).find((t) => ['REJECTED', 'FAILED'].includes(stateOf(t))), 'the first task of rt-down to end', WAIT_MS);
    const host = registryHost.replace(/\./g, '\\.');
    assert.match(reasonOf(rejected), new RegExp(`registry ${host} unreachable`), `reason names the registry: ${reasonOf(rejected)}`);
    // the orchestrator replaces it: a new task for the same slot, attempt + 1
    const retry = await eventually(
      async () => (await tasksOf(api, 'rt-down')).find((t) => t.slot === rejected.slot && t.attempt > rejected.attempt && t.id !== rejected.id),
      'a new task for the rejected slot',
      WAIT_MS,
    );
    assert.equal(retry.attempt, rejected.attempt + 1);

    await ensureRegistry();
    const running = await eventually(async () => (await tasksOf(api, 'rt-down')).find((t) => stateOf(t) === 'RUNNING'), 'rt-down RUNNING once the registry is up', WAIT_MS);
    assert.equal(running.slot, rejected.slot);
    assert.ok(running.attempt >= 1, `the running task is a retry (attempt ${running.attempt})`);
    await api.removeService({ service: 'rt-down' });
    assert.equal(stateOf(rejected), 'REJECTED', `an unreachable registry rejects the task (${reasonOf(rejected)})`);
  });

  it('rejects a task whose image the registry does not have, naming the image', async () => {
    await ensureRegistry();
    await api.createService({
      spec: { name: 'rt-unknown', replicas: 1, container: { image: `${registryHost}/convoy-test/nope:1`, command: ['sleep', '3600'] }, restart: { condition: 'RESTART_ANY', delayMs: 300 } },
    });
    const rejected = await eventually(async () => (await tasksOf(api, 'rt-unknown')).find((t) => stateOf(t) === 'REJECTED'), 'a REJECTED task of rt-unknown', WAIT_MS);
    assert.match(reasonOf(rejected), /convoy-test\/nope/, `reason names the image: ${reasonOf(rejected)}`);
    assert.match(reasonOf(rejected), /not found/, `reason says it is unknown: ${reasonOf(rejected)}`);
    await api.removeService({ service: 'rt-unknown' });
  });

  it('an agent killed with kill -9 and restarted leaves nothing of removed tasks behind', async () => {
    await ensureRegistry();
    await api.createService({ spec: { name: 'rt-crash', replicas: 2, container: { image: `${registryHost}/convoy-test/busybox:1`, command: ['sleep', '3600'], stopGracePeriodMs: 500 } } });
    const running = await eventually(
      async () => {
        const ts = (await tasksOf(api, 'rt-crash')).filter((t) => stateOf(t) === 'RUNNING');
        return ts.length === 2 ? ts : undefined;
      },
      'rt-crash: 2 tasks RUNNING',
      WAIT_MS,
    );
    const ids = running.map((t) => t.id);
    const states = ids.map((id) => JSON.parse(fs.readFileSync(path.join(AGENT_DIR, 'containers', id, 'state.json'), 'utf8')) as ContainerState);
    for (const st of states) assert.ok(alive(st.pid, st.pidStart), `container ${st.config.id} runs`);

    agent!.child.kill('SIGKILL');
    await agent!.exited;
    // the containers outlive the agent (their monitors are detached)
    for (const st of states) assert.ok(alive(st.pid, st.pidStart), `container ${st.config.id} survives the agent`);
    await api.removeService({ service: 'rt-crash' });
    agent = await spawnAgent(agentOpts);

    const cgroups = detectCgroupDriver();
    await eventually(
      async () => {
        const left: string[] = [];
        for (const st of states) {
          if (alive(st.pid, st.pidStart)) left.push(`process ${st.pid}`);
          if (alive(st.monitorPid, st.monitorStart)) left.push(`monitor ${st.monitorPid}`);
          if (fs.existsSync(path.join(AGENT_DIR, 'containers', st.config.id))) left.push(`dir of ${st.config.id}`);
        }
        for (const name of await cgroups.list()) if (ids.includes(name)) left.push(`cgroup convoy/${name}`);
        for (const line of fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
          const point = line.split(' ')[4];
          if (point && point.startsWith(`${AGENT_DIR}/`)) left.push(`mount ${point}`);
        }
        if (left.length) throw new Error(`left behind: ${left.join(', ')}`);
        return true;
      },
      'nothing left of the removed tasks',
      WAIT_MS,
    );
  });
});
