// Container start benchmark: start-to-exit of /bin/true with every namespace
// and a cgroup, Convoy's runtime against `runc run` (Debian's runc) on the same
// busybox root filesystem, alternating, N runs each; then how many containers
// per second the runtime starts when 100 are started at once.
//
// Then the same through the whole agent path: a real manager (startManager,
// embedded etcd, no NATS) and a real agent (startAgent, ContainerExecutor) in
// this process, busybox from the local registry. A watch on etcd's task keys
// records, per task, the status timestamp of its ASSIGNED write (the
// scheduler's) and of its RUNNING write (the agent's report, ~100 ms batching
// included): assigned → running, one task at a time (--tasks, scaling a
// service by one), then a 100-replica service on the one agent (--replicas):
// first ASSIGNED → 100th RUNNING gives starts_per_s_100.
//
//   npm run bench:start [-- --runs 50 --burst 100 --tasks 30 --replicas 100]
//
// Last line: key=value pairs (convoy_median_ms, runc_median_ms, ratio,
// starts_per_s, assigned_to_running_median_ms, assigned_to_running_p99_ms,
// starts_per_s_100, ...). Never fails on time. Needs root, the native helper
// built, runc and docker-registry.
import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { startRegistry } from '../lab/registry';
import { pushBusyboxImage } from '../lab/images';
import { startAgent, type AgentHandle } from '../agent/mod';
import { startManager, watchKind, type ManagerHandle } from '../manager/mod';
import { freePort } from '../common/net';
import { connectControl, type ConnectedApi } from '../cli/client';
import { adminSecurity } from '../e2e/support/security';
import { nullLogger } from '../common/logger';
import type { Task } from '../proto/mod';
import { ImageStore } from '../agent/runtime/image/store';
import { Runtime, type ContainerConfig } from '../agent/runtime/runtime';
import { ContainerExecutor } from '../agent/runtime/executor';
import { findHelper } from '../agent/runtime/native';
import { arg, onInterrupt, quantile } from './support';
import { eventually } from '../common/eventually';

const BENCH_DIR = '/tmp/convoy-bench-start';
const PREFIX = 'convoy-bench-';

const fmt = (n: number) => n.toFixed(2);

function runOnce(cmd: string, args: string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'inherit'] });
    child.on('error', reject);
    child.on('exit', (code) => {
      if (code !== 0) reject(new Error(`${cmd} ${args.join(' ')} exited ${code}`));
      else resolve(Number(process.hrtime.bigint() - t0) / 1e6);
    });
  });
}

/** Per task, from the etcd watch: status timestamps of its ASSIGNED and RUNNING writes, and when the RUNNING write was seen. */
interface TaskTimes {
  service: string;
  assigned?: number;
  running?: number;
  runningSeen?: number;
}

interface AgentPathResult {
  /** assigned → running per task, one task at a time (status timestamps). */
  single: number[];
  /** assigned → RUNNING committed in etcd (seen by the watch), one at a time. */
  singleCommitted: number[];
  /** The first task: includes the image pull. */
  firstMs: number;
  /** assigned → running per task of the 100-replica service. */
  burstTask: number[];
  /** first ASSIGNED → last RUNNING of the 100-replica service. */
  burstWallMs: number;
}

/** Bound on waiting for the cluster (I/O, not a timing assertion). */
const AGENT_WAIT_MS = 180_000;

const until = (what: string, cond: () => boolean | Promise<boolean>) => eventually(cond, what, { timeoutMs: AGENT_WAIT_MS, pollMs: 20, prefix: 'bench: gave up waiting for' });

/**
 * The agent path: manager + agent in this process, tasks assigned through
 * etcd, containers started by the ContainerExecutor. See the file comment.
 */
async function agentPath(dir: string, registryHost: string, imageRef: string, tasks: number, replicas: number): Promise<AgentPathResult> {
  let manager: ManagerHandle | undefined;
  let agent: AgentHandle | undefined;
  let conn: ConnectedApi | undefined;
  let watcher: { close(): Promise<void> } | undefined;
  const agentDir = path.join(dir, 'agent');
  const stopAll = async () => {
    await agent?.stop().catch(() => undefined);
    conn?.close();
    await watcher?.close();
    await manager?.stop().catch(() => undefined);
    // whatever the agent left (a failed run): its containers, by its own state dir
    const rt = new Runtime({ stateDir: agentDir, layersRoot: path.join(agentDir, 'layers') });
    for (const c of await rt.list()) await rt.remove(c.id).catch(() => undefined);
  };
  const offInterrupt = onInterrupt(stopAll);
  try {
    manager = await startManager({ dataDir: path.join(dir, 'manager'), listen: `127.0.0.1:${await freePort()}`, natsUrl: '', logger: nullLogger });
    conn = connectControl(manager.grpcAddr, adminSecurity(manager));
    const api = conn.api;
    const tokens = await api.getJoinTokens({});
    agent = await startAgent({
      managers: [manager.grpcAddr],
      joinToken: tokens.worker,
      stateDir: agentDir,
      advertiseAddr: '127.0.0.1',
      executor: 'container',
      runtime: { insecureRegistries: [registryHost] },
      logger: nullLogger,
    });
    const times = new Map<string, TaskTimes>();
    watcher = await watchKind(manager.etcdEndpoints, 'tasks', (_id, v) => {
      const t = JSON.parse(v) as Task;
      let e = times.get(t.id);
      if (!e) times.set(t.id, (e = { service: t.serviceName }));
      const st = t.status?.state;
      const ts = Number(t.status?.timestamp ?? 0);
      if (st === 'ASSIGNED' && e.assigned === undefined) e.assigned = ts;
      if (st === 'RUNNING' && e.running === undefined) {
        e.running = ts;
        e.runningSeen = Date.now();
      }
    }, manager.etcdTls);
    const of = (svc: string) => [...times.values()].filter((e) => e.service === svc);
    const runningOf = (svc: string) => of(svc).filter((e) => e.running !== undefined && e.assigned !== undefined);
    const containers = agent.executor instanceof ContainerExecutor ? agent.executor.runtime : undefined;
    const drained = async () => !containers || (await containers.list()).length === 0;
    const spec = (name: string, n: number) => ({ name, replicas: n, container: { image: imageRef, command: ['sleep', '3600'] } });

    // one at a time: the first task pulls the image; then scale by one
    await api.createService({ spec: spec('bench-seq', 1) });
    await until('the first task RUNNING', () => runningOf('bench-seq').length === 1);
    const first = runningOf('bench-seq')[0];
    const firstMs = first.running! - first.assigned!;
    for (let i = 2; i <= tasks + 1; i++) {
      await api.scaleService({ service: 'bench-seq', replicas: i });
      await until(`${i} tasks RUNNING`, () => runningOf('bench-seq').length === i);
    }
    const seq = runningOf('bench-seq').filter((e) => e !== first);
    await api.removeService({ service: 'bench-seq' });
    await until('the one-at-a-time containers removed', drained);

    // 100 at once
    await api.createService({ spec: spec('bench-burst', replicas) });
    await until(`${replicas} tasks RUNNING`, () => runningOf('bench-burst').length === replicas);
    const burst = runningOf('bench-burst');
    const burstWallMs = Math.max(...burst.map((e) => e.running!)) - Math.min(...burst.map((e) => e.assigned!));
    await watcher.close();
    await api.removeService({ service: 'bench-burst' });
    await until('the burst containers removed', drained);
    return {
      single: seq.map((e) => e.running! - e.assigned!),
      singleCommitted: seq.map((e) => e.runningSeen! - e.assigned!),
      firstMs,
      burstTask: burst.map((e) => e.running! - e.assigned!),
      burstWallMs,
    };
  } finally {
    await offInterrupt();
    await stopAll();
  }
}

async function main(): Promise<void> {
  const runs = arg('runs', 50);
  const burst = arg('burst', 100);
  const tasks = arg('tasks', 30);
  const replicas = arg('replicas', 100);
  const stateDir = path.join(BENCH_DIR, 'state');
  const clusterDir = path.join(BENCH_DIR, 'cluster');
  // leftovers of a crashed run first (containers by their state dirs), then the dir
  const rt0 = new Runtime({ stateDir, layersRoot: path.join(stateDir, 'layers') });
  await rt0.cleanupAll(PREFIX);
  const leftAgent = new Runtime({ stateDir: path.join(clusterDir, 'agent'), layersRoot: path.join(clusterDir, 'agent', 'layers') });
  for (const c of await leftAgent.list()) await leftAgent.remove(c.id).catch(() => undefined);
  fs.rmSync(BENCH_DIR, { recursive: true, force: true });
  const reg = await startRegistry();
  let runcRootfs = '';
  const cleanup = async () => {
    if (runcRootfs) {
      try {
        execFileSync('umount', ['-l', runcRootfs]);
      } catch {
        // not mounted
      }
    }
    await rt0.cleanupAll(PREFIX).catch(() => undefined);
    await reg.stop();
    fs.rmSync(BENCH_DIR, { recursive: true, force: true });
  };
  const offInterrupt = onInterrupt(cleanup);
  try {
    const image = await pushBusyboxImage(reg.host);
    const store = new ImageStore({ stateDir, registry: { insecureRegistries: [reg.host] }, helperPath: findHelper() });
    const img = await store.pull(image.ref);
    const rt = new Runtime({ stateDir, layersRoot: store.layersRoot });
    const config = (id: string): ContainerConfig => ({ id, image: img.ref, layers: img.layers, args: ['/bin/true'], env: ['PATH=/bin'], hostname: 'bench' });

    // runc: a bundle whose root is an overlay of the same layer, mounted once
    const bundle = path.join(BENCH_DIR, 'bundle');
    runcRootfs = path.join(bundle, 'rootfs');
    for (const d of ['rootfs', 'upper', 'work']) fs.mkdirSync(path.join(bundle, d), { recursive: true });
    execFileSync('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${store.layerDir(img.layers[0])},upperdir=${path.join(bundle, 'upper')},workdir=${path.join(bundle, 'work')}`, runcRootfs]);
    execFileSync('runc', ['spec'], { cwd: bundle });
    const spec = JSON.parse(fs.readFileSync(path.join(bundle, 'config.json'), 'utf8')) as {
      process: { terminal: boolean; args: string[] };
      root: { path: string; readonly: boolean };
      hostname: string;
      linux: { namespaces: { type: string }[]; cgroupsPath?: string };
    };
    spec.process.terminal = false;
    spec.process.args = ['/bin/true'];
    spec.root = { path: 'rootfs', readonly: false };
    spec.hostname = 'bench';
    if (!spec.linux.namespaces.some((n) => n.type === 'cgroup')) spec.linux.namespaces.push({ type: 'cgroup' });
    const runcState = path.join(BENCH_DIR, 'runc-state');
    const runcOnce = async (i: number) => {
      spec.linux.cgroupsPath = `/convoy/${PREFIX}runc-${i}`;
      fs.writeFileSync(path.join(bundle, 'config.json'), JSON.stringify(spec));
      return runOnce('runc', ['--root', runcState, 'run', '--bundle', bundle, `${PREFIX}runc-${i}`]);
    };
    const convoyOnce = async (i: number) => {
      const id = `${PREFIX}${i}`;
      const t0 = process.hrtime.bigint();
      await rt.create(config(id));
      await rt.start(id);
      const exit = await rt.wait(id);
      await rt.remove(id);
      if (exit.exitCode !== 0) throw new Error(`convoy container exited: ${exit.reason}`);
      return Number(process.hrtime.bigint() - t0) / 1e6;
    };

    // warm-up (page cache, first spawn)
    await convoyOnce(-1);
    await runcOnce(-1);
    const convoy: number[] = [];
    const runc: number[] = [];
    for (let i = 0; i < runs; i++) {
      convoy.push(await convoyOnce(i));
      runc.push(await runcOnce(i));
    }

    // burst: `burst` containers started at once (sleeping, so they all run together)
    const ids = Array.from({ length: burst }, (_, i) => `${PREFIX}burst-${i}`);
    const tb = process.hrtime.bigint();
    await Promise.all(
      ids.map(async (id) => {
        await rt.create({ ...config(id), args: ['sleep', '5'] });
        await rt.start(id);
      }),
    );
    const burstMs = Number(process.hrtime.bigint() - tb) / 1e6;
    await Promise.all(ids.map((id) => rt.remove(id)));

    // the agent path
    const ap = await agentPath(clusterDir, reg.host, image.ref, tasks, replicas);

    const cm = quantile(convoy, 0.5);
    const rm = quantile(runc, 0.5);
    console.log(`convoy: median ${fmt(cm)} ms, p99 ${fmt(quantile(convoy, 0.99))} ms over ${runs} runs (create+start+wait+remove)`);
    console.log(`runc:   median ${fmt(rm)} ms, p99 ${fmt(quantile(runc, 0.99))} ms over ${runs} runs (runc run)`);
    console.log(`burst:  ${burst} containers started in ${fmt(burstMs)} ms`);
    const am = quantile(ap.single, 0.5);
    const sps100 = replicas / (ap.burstWallMs / 1000);
    console.log(`agent path, assigned → running (status timestamps), one task at a time: median ${fmt(am)} ms, p99 ${fmt(quantile(ap.single, 0.99))} ms over ${ap.single.length} tasks (first task, with the image pull: ${fmt(ap.firstMs)} ms)`);
    console.log(`agent path, assigned → RUNNING committed in etcd (status batching included): median ${fmt(quantile(ap.singleCommitted, 0.5))} ms, p99 ${fmt(quantile(ap.singleCommitted, 0.99))} ms`);
    console.log(`agent path, ${replicas} replicas at once on one agent: first assigned → last running ${fmt(ap.burstWallMs)} ms = ${sps100.toFixed(1)} starts/s; per task median ${fmt(quantile(ap.burstTask, 0.5))} ms, p99 ${fmt(quantile(ap.burstTask, 0.99))} ms`);
    console.log(
      [
        `convoy_median_ms=${fmt(cm)}`,
        `convoy_p99_ms=${fmt(quantile(convoy, 0.99))}`,
        `runc_median_ms=${fmt(rm)}`,
        `runc_p99_ms=${fmt(quantile(runc, 0.99))}`,
        `ratio=${(cm / rm).toFixed(3)}`,
        `starts_per_s=${(burst / (burstMs / 1000)).toFixed(1)}`,
        `assigned_to_running_median_ms=${fmt(am)}`,
        `assigned_to_running_p99_ms=${fmt(quantile(ap.single, 0.99))}`,
        `assigned_to_running_committed_median_ms=${fmt(quantile(ap.singleCommitted, 0.5))}`,
        `starts_per_s_100=${sps100.toFixed(1)}`,
        `burst_task_median_ms=${fmt(quantile(ap.burstTask, 0.5))}`,
        `burst_task_p99_ms=${fmt(quantile(ap.burstTask, 0.99))}`,
        `runs=${runs}`,
        `burst=${burst}`,
        `tasks=${tasks}`,
        `replicas=${replicas}`,
      ].join(' '),
    );
  } finally {
    await offInterrupt();
    await cleanup();
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
