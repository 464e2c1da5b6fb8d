// A netns lab for e2e tests and benchmarks: lab/'s own code (the same
// `convoy lab up|down`), plus what tests need around it — the CLI against the
// lab's manager, a shell inside a running container, the lab's image, the
// metrics addresses, stopping and restarting the lab's NATS (manager 1's).
//
//   const lab = await startLab({ hosts: 3 });       // removes leftovers first
//   await lab.convoy('service', 'create', ...);
//   await lab.stop();                               // in after(), even on failure
import { execFile } from 'node:child_process';
import * as path from 'node:path';
import { ContainerExecutor } from '../../agent/runtime/executor';
import {
  AGENT_METRICS_PORT,
  LAB_DIR,
  MANAGER_METRICS_PORT,
  killLabHost,
  labDown,
  labUp,
  labSecurity,
  pushLabImage,
  readLab,
  startLabNats,
  stopLabNats,
  type LabState,
} from '../../lab/mod';
import { connectControl, type ControlConnection } from '../../proto/client';

/** Where the test lab keeps its state (apart from a developer's `convoy lab up`). */
export const TEST_LAB_DIR = process.env.CONVOY_TEST_LAB_DIR ?? '/var/lib/convoy-lab-test';
const MAIN = path.join(__dirname, '..', '..', 'cli', 'main.js');

export interface Lab {
  state: LabState;
  /** The Control API of the lab's first manager. */
  api: ControlConnection;
  /** Reference of the busybox image in the lab's registry. */
  image: string;
  /** URL of the lab's NATS (manager 1's embedded one, tls://10.41.0.11:4222). */
  nats: string;
  /** host:port of the manager's /metrics, and of every agent's (host order). */
  metrics: { manager: string; agents: string[] };
  /** Runs the convoy CLI against the lab's manager; resolves to stdout, rejects with stderr. */
  convoy(...args: string[]): Promise<string>;
  /** The environment `convoy` needs to talk to the lab's manager (bench:cli runs bin/convoy with it). */
  cliEnv: NodeJS.ProcessEnv;
  /**
   * Runs `sh -c script` inside the running container of taskId (its mount, net, uts and pid namespaces)
   * through nsenter, as this process: root's capabilities, no seccomp filter, the host's clock and
   * user namespace. For probing the network and files only; what a container may do is probed through
   * `convoy task exec` (the container's own confinement), never through this.
   */
  execIn(taskId: string, script: string, timeoutMs?: number): Promise<string>;
  /** Runs this machine's `node` with args in the network namespace only of taskId's running container (its network, the firewall's view of it; no file of the container). */
  nodeInNetnsOf(taskId: string, args: string[], timeoutMs?: number): Promise<string>;
  killHost(index: number): Promise<void>;
  /** Stops the lab's NATS (SIGTERM to manager 1's nats-server); its JetStream store stays. */
  stopNats(): Promise<void>;
  /** Starts the lab's NATS again (manager 1's configuration: same address, users and store); resolves once it accepts connections. */
  startNats(): Promise<void>;
  stop(): Promise<void>;
}

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env, timeout = 30_000): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile(cmd, args, { env, timeout, encoding: 'utf8' }, (err, stdout, stderr) => (err ? reject(new Error(`${path.basename(cmd)} ${args.join(' ')}: ${stderr.trim() || err.message}`)) : resolve(stdout))),
  );
}

/** Removes what an earlier lab (a crashed test run, or a developer's lab: same names) left, then starts one. */
export async function startLab(o: { hosts: number; managers?: number; heartbeat?: string; certExpiry?: string }): Promise<Lab> {
  await labDown(TEST_LAB_DIR);
  if (readLab(LAB_DIR)) await labDown(LAB_DIR);
  let state: LabState;
  let image: string;
  try {
    state = await labUp({ hosts: o.hosts, managers: o.managers, dir: TEST_LAB_DIR, heartbeat: o.heartbeat, certExpiry: o.certExpiry });
    image = await pushLabImage(state);
  } catch (e) {
    // The caller gets no Lab to stop: leave nothing behind.
    await labDown(TEST_LAB_DIR).catch(() => undefined);
    throw e;
  }
  const api = connectControl(state.manager, { security: labSecurity(state) });
  const pidOf = async (taskId: string): Promise<number> => {
    for (const h of state.hosts) {
      const ex = new ContainerExecutor({ stateDir: h.agentDir });
      const c = (await ex.list().finally(() => ex.close())).find((x) => x.taskId === taskId && x.running);
      if (c?.pid) return c.pid;
    }
    throw new Error(`no running container for task ${taskId}`);
  };
  const env = { ...process.env, CONVOY_HOST: state.manager, CONVOY_TLS_DIR: state.tlsDir ?? '' };
  return {
    state,
    api,
    image,
    nats: state.nats ?? '',
    metrics: { manager: `${state.hosts[0].addr}:${MANAGER_METRICS_PORT}`, agents: state.hosts.map((h) => `${h.addr}:${AGENT_METRICS_PORT}`) },
    convoy: (...args) => run(process.execPath, [MAIN, ...args], env),
    cliEnv: env,
    async execIn(taskId, script, timeoutMs = 20_000) {
      return run('nsenter', ['-t', String(await pidOf(taskId)), '-m', '-n', '-u', '-p', '--', 'sh', '-c', script], process.env, timeoutMs);
    },
    async nodeInNetnsOf(taskId, args, timeoutMs = 30_000) {
      return run('nsenter', ['-t', String(await pidOf(taskId)), '-n', '--', process.execPath, ...args], process.env, timeoutMs);
    },
    killHost: (i) => killLabHost(state, i),
    stopNats: () => stopLabNats(state),
    async startNats() {
      await startLabNats(state);
    },
    async stop() {
      api.close();
      await labDown(TEST_LAB_DIR);
    },
  };
}
