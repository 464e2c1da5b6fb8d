// What the lab runs on the machine side of its bridge (10.41.0.1), for every
// host to reach: the registry and, with more than one manager, the etcd they
// share. Each is started detached, recorded by pid in the state file, and
// waited for until it answers. Also the lab's NATS outages on purpose: NATS
// is manager 1's embedded one (in host 1), stopped and started again here.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { eventually } from '../common/eventually';
import { canConnect } from '../common/net';
import { etcdArgs, etcdHealthy } from '../manager/embedded/etcd';
import { ensureEtcdPki, issueEtcdClient } from '../manager/embedded/pki';
import { writeBundle } from '../common/identity';
import { alive, startDetached, stopPid } from './procs';
import { registryAnswers, registryConfig } from './registry';
import { recordPid, saveLab, type LabState } from './state';
import { LAB_ETCD_PORT, LAB_GATEWAY, LAB_NATS_PORT, LAB_REGISTRY, labHostAddr, labManagerName } from './topology';

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

/** Where the lab's NATS runs: manager 1's embedded one, in host 1, on the bridge address of that host. */
export const LAB_NATS_HOST_PORT = `${labHostAddr(1)}:${LAB_NATS_PORT}`;
export const LAB_NATS_URL = `tls://${LAB_NATS_HOST_PORT}`;

/** Manager 1's embedded NATS directory: nats.conf (written by the manager), tls/, jetstream/, nats.log. */
export function labNatsDir(st: { dir: string }): string {
  return path.join(path.resolve(st.dir), labManagerName(1), 'nats');
}

/** nats-server processes running the lab's NATS configuration (manager 1's child, or one startLabNats started). */
export function labNatsPids(st: { dir: string }): number[] {
  const conf = path.join(labNatsDir(st), 'nats.conf');
  const out: number[] = [];
  for (const p of fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const argv = fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0');
      if (path.basename(argv[0]) === 'nats-server' && argv.includes(conf)) out.push(Number(p));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/**
 * Stops the lab's NATS on purpose (an outage: SIGTERM, SIGKILL after 10 s),
 * whoever started it; JetStream store and configuration stay. The manager
 * does not restart it: startLabNats does.
 */
export async function stopLabNats(st: LabState): Promise<void> {
  const pids = labNatsPids(st);
  if (!pids.length) throw new Error('lab: NATS is not running');
  await Promise.all(pids.map((pid) => stopPid(pid)));
  st.pids = st.pids.filter((x) => x.name !== 'nats');
  saveLab(st);
}

/**
 * Starts the lab's NATS again after stopLabNats: nats-server in host 1's
 * namespace with manager 1's configuration (same address, certificate,
 * users and JetStream store: the events stream survives), recorded as
 * 'nats' in the state file (lab down stops it); returns its pid once it
 * accepts connections. Users the manager adds from then on reach the file
 * and this server (the manager reloads whichever nats-server runs its
 * configuration: manager/embedded/nats.ts, natsServersFor).
 */
export async function startLabNats(st: LabState): Promise<number> {
  const running = labNatsPids(st);
  if (running.length) throw new Error(`lab: NATS already runs (pid ${running.join(', ')}); stopLabNats first`);
  const dir = labNatsDir(st);
  const conf = path.join(dir, 'nats.conf');
  if (!fs.existsSync(conf)) throw new Error(`lab: no NATS configuration at ${conf} (manager 1 never started its NATS)`);
  const pid = startDetached(dir, 'nats', 'nsenter', [`--net=/run/netns/${st.hosts[0].netns}`, '--', 'nats-server', '-c', conf]);
  st.pids = [...st.pids.filter((p) => p.name !== 'nats'), { name: 'nats', pid }];
  saveLab(st);
  const end = Date.now() + NATS_START_MS;
  while (!(await canConnect(LAB_NATS_HOST_PORT))) {
    const failed = !alive(pid) ? `nats-server exited at start (is ${LAB_NATS_HOST_PORT} taken?)` : Date.now() > end ? `timed out waiting for NATS on ${LAB_NATS_HOST_PORT}` : '';
    if (failed) {
      await stopPid(pid, 0);
      st.pids = st.pids.filter((p) => p.pid !== pid);
      saveLab(st);
      throw new Error(`lab: ${failed}; see ${path.join(dir, 'nats.log')}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return pid;
}

/**
 * Starts the etcd the lab's managers share when there is more than one (one
 * manager runs the embedded default: its own etcd, in host 1); returns its
 * client URL once it reports healthy, and `convoy manager` flags for each of
 * `managers` (--etcd and a client certificate of its own). TLS with client
 * certificates from an etcd CA of its own in <lab>/etcd-tls (as the embedded
 * etcd; docs/security.md), each manager's client bundle in
 * <lab>/etcd-tls/<manager>/. Detached and recorded by pid like the rest of the
 * lab, so it is not manager/embedded/etcd.ts's child process.
 */
export async function startLabEtcd(st: LabState, managers: string[]): Promise<{ url: string; managerFlags: Map<string, string[]> }> {
  const url = `https://${LAB_GATEWAY}:${LAB_ETCD_PORT}`;
  const peer = `https://${LAB_GATEWAY}:${LAB_ETCD_PORT + 1}`;
  const tlsDir = path.join(st.dir, 'etcd-tls');
  const pki = await ensureEtcdPki(tlsDir, { hosts: [LAB_GATEWAY], clientName: 'lab' });
  const managerFlags = new Map<string, string[]>();
  for (const m of managers) {
    const dir = path.join(tlsDir, m);
    writeBundle(dir, await issueEtcdClient(pki, m));
    managerFlags.set(m, ['--etcd', url, '--etcd-cacert', path.join(dir, 'ca.pem'), '--etcd-cert', path.join(dir, 'cert.pem'), '--etcd-key', path.join(dir, 'key.pem')]);
  }
  const args = etcdArgs({ name: 'convoy-lab', dataDir: path.join(st.dir, 'etcd'), clientUrl: url, peerUrl: peer, tls: pki.server });
  recordPid(st, 'etcd', startDetached(st.dir, 'etcd', 'etcd', args));
  await labWait(st, 'the lab etcd', () => etcdHealthy(url, pki.client), LAB_SERVICE_START_MS);
  return { url, managerFlags };
}
