// What the lab runs on the machine side of its bridge (10.41.0.1), for every
// host to reach: the registry, NATS (JetStream) and, with more than one
// manager, the etcd they share. Each is started detached, recorded by pid in
// the state file, and waited for until it answers.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { eventually } from '../common/eventually';
import { canConnect } from '../common/net';
import { etcdArgs } from '../manager/embedded/etcd';
import { alive, startDetached, stopPid } from './procs';
import { registryAnswers, registryConfig } from './registry';
import { recordPid, saveLab, type LabState } from './state';
import { LAB_ETCD_PORT, LAB_GATEWAY, LAB_NATS_PORT, LAB_REGISTRY } from './topology';

/** Bound on a lab service's start (I/O on a busy machine, never a timing assertion). */
export const LAB_SERVICE_START_MS = 30_000;
/** Bound on NATS's start: it either binds its port at once or exits. */
const NATS_START_MS = 15_000;

/** A lab wait: names the lab's logs when it gives up. */
export function labWait<T>(st: { dir: string }, what: string, cond: () => T | Promise<T>, timeoutMs: number): Promise<unknown> {
  return eventually(cond, `${what} (logs in ${st.dir})`, { timeoutMs, pollMs: 100, prefix: 'lab: timed out waiting for' });
}

/** Starts the lab's registry (storage in the lab dir); returns once it answers. */
export async function startLabRegistry(st: LabState): Promise<void> {
  st.registry = LAB_REGISTRY;
  fs.mkdirSync(path.join(st.dir, 'registry'), { recursive: true });
  const cfg = path.join(st.dir, 'registry.yml');
  fs.writeFileSync(cfg, registryConfig({ root: path.join(st.dir, 'registry'), addr: st.registry }));
  recordPid(st, 'registry', startDetached(st.dir, 'registry', 'docker-registry', ['serve', cfg]));
  await labWait(st, 'the registry', () => registryAnswers(st.registry), LAB_SERVICE_START_MS);
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
  const end = Date.now() + NATS_START_MS;
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

/**
 * Starts the etcd the lab's managers share when there is more than one (one
 * manager runs the embedded default: its own etcd, in host 1); returns its
 * client URL once it reports healthy. Detached and recorded by pid like the
 * rest of the lab, so it is not manager/embedded/etcd.ts's child process.
 */
export async function startLabEtcd(st: LabState): Promise<string> {
  const url = `http://${LAB_GATEWAY}:${LAB_ETCD_PORT}`;
  const peer = `http://${LAB_GATEWAY}:${LAB_ETCD_PORT + 1}`;
  const args = etcdArgs({ name: 'convoy-lab', dataDir: path.join(st.dir, 'etcd'), clientUrl: url, peerUrl: peer });
  recordPid(st, 'etcd', startDetached(st.dir, 'etcd', 'etcd', args));
  await labWait(st, 'the lab etcd', async () => (await fetch(`${url}/health`)).ok, LAB_SERVICE_START_MS);
  return url;
}
