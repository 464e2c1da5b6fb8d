// bench:schedule — how fast the control plane turns `service create` into
// assigned tasks committed in etcd.
//
// Phase 1 (in memory): reconcile() alone on a snapshot of NODES nodes and one
// service of TASKS replicas, step by step (allocate, orchestrate, schedule,
// addresses), to find hot spots. No etcd.
// Phase 2 (the real thing): a manager as its own process (`convoy manager`,
// embedded etcd), NODES hollow agents on a worker thread of this process
// (real sessions, heartbeats, assignment streams and status reports;
// agent/hollow, ./fleet-worker.ts: on this thread they delayed the watch
// that reads the clock), then
// CreateService with TASKS replicas through the Control API; a watch on
// etcd counts tasks committed with a node and ASSIGNED or later. The clock
// runs from the CreateService call to the last such commit.
// Defaults: 1,000 nodes, 100,000 tasks (NODES, TASKS; ETCD=0 skips phase 2;
// NETWORK=1: the agents also hold Network streams).
// The last line is key=value pairs only. Never fails on time.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import * as grpc from '@grpc/grpc-js';
import { freePort } from '../common/net';
import { watchKind } from '../manager/mod';
import { grpcPackages, type ControlClient, type Network, type Node, type Task } from '../proto/mod';
import { channelCredentials, mtls, securedChannelOptions } from '../proto/client';
import { readBundle } from '../common/identity';
import { reconcile } from '../manager/reconcile';
import { applyWrite, cluster, node, service } from '../manager/orchestrator/testing/fixtures';
import type { ClusterSnapshot } from '../manager/state/snapshot';
import { STALL_FIELD, STALL_MSG, STALL_WINDOW_MS } from '../manager/observe/stall';
import { startFleetWorker } from './fleet-worker';
import { childPids, keepScratch, onInterrupt, procCpuS, scratchDir, sweepScratch } from './support';

const NODES = Number(process.env.NODES ?? 1000);
const TASKS = Number(process.env.TASKS ?? 100_000);
/** NETWORK=1: every hollow agent also opens its Network stream, as a real agent does (default off: the figures of the record are without). */
const NETWORK = process.env.NETWORK === '1';
/** PROFILE=1: the manager runs under --cpu-prof; its profile and log stay in the printed directory. */
const PROFILE = process.env.PROFILE === '1';
/** KEEP=1 (or PROFILE=1): the manager's directory and log stay after the run. */
const KEEP = PROFILE || process.env.KEEP === '1';

/** 1,000 nodes need more than the default /16 (256 node subnets): the bench uses a /12. */
// 4,096 node subnets, clear of the default VIP range (10.43.0.0/16) and the lab (10.41.0.0/24).
const BENCH_CLUSTER_CIDR = '10.64.0.0/12';

/** Each run's directory (manager data dir, embedded etcd, log): <tmp>/convoy-bench-schedule-XXXXXX. */
const SCRATCH_PREFIX = 'convoy-bench-schedule-';

function hollowNodes(n: number): Node[] {
  return Array.from({ length: n }, (_, i) => node(`node${String(i).padStart(5, '0')}`, { mem: 64 * 1024 ** 3, cpus: 32 }));
}

function inMemory(): Record<string, string | number> {
  const nodes = hollowNodes(NODES);
  const snap: ClusterSnapshot = {
    revision: 1,
    now: Date.now(),
    cluster: cluster({ clusterCidr: BENCH_CLUSTER_CIDR }),
    services: new Map([['bench', service('bench', { replicas: TASKS })]]),
    tasks: new Map(),
    nodes: new Map(nodes.map((n) => [n.id, n])),
    networks: new Map(),
  };
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const r = reconcile(snap);
  const wall = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  const cpuMs = (cpu.user + cpu.system) / 1000;
  const ms = r.stats.ms;
  console.log(`in memory: ${NODES} nodes, ${TASKS} tasks: ${r.writes.length} writes in ${wall.toFixed(0)} ms wall, ${cpuMs.toFixed(0)} ms CPU`);
  console.log(`  allocate ${ms.allocate.toFixed(1)} ms, orchestrate ${ms.orchestrate.toFixed(1)} ms, schedule ${ms.schedule.toFixed(1)} ms, addresses ${ms.addresses.toFixed(1)} ms, reap ${ms.reap.toFixed(1)} ms`);
  console.log(`  assigned ${r.stats.assigned}, unschedulable ${r.stats.unschedulable}`);
  // A second tick on the committed result must be cheap and write nothing.
  const next = { tasks: new Map<string, Task>(), services: new Map(snap.services), nodes: new Map(snap.nodes), networks: new Map<string, Network>() };
  for (const w of r.writes) applyWrite(next, w, (m) => ({ version: 2, createdAt: m?.createdAt || snap.now, updatedAt: snap.now }));
  const tasks = next.tasks;
  const t1 = performance.now();
  const r2 = reconcile({ ...snap, ...next });
  const steady = performance.now() - t1;
  console.log(`  steady-state tick over ${tasks.size} tasks: ${steady.toFixed(0)} ms, ${r2.writes.length} writes`);
  return { mem_reconcile_ms: Math.round(wall), mem_cpu_ms: Math.round(cpuMs), mem_schedule_ms: Math.round(ms.schedule), mem_steady_ms: Math.round(steady), mem_tasks_per_s: Math.round(TASKS / (wall / 1000)) };
}

async function main(): Promise<void> {
  const figures: Record<string, string | number> = { nodes: NODES, tasks: TASKS };
  Object.assign(figures, inMemory());
  if (process.env.ETCD !== '0') Object.assign(figures, await withEtcd());
  console.log(Object.entries(figures).map(([k, v]) => `${k}=${v}`).join(' '));
}

/**
 * How many times the lead moved during the run, from the manager's own log
 * (no etcd client needed): every "lost leadership" is a move, and so is every
 * election after the first (a lead lost and won back without the loss being
 * logged, e.g. a campaign that ended quietly).
 */
export function leaderChangesIn(log: string): number {
  let elected = 0;
  let lost = 0;
  for (const line of log.split('\n')) {
    if (line.includes('"msg":"elected leader"')) elected++;
    else if (line.includes('"msg":"lost leadership"')) lost++;
  }
  return Math.max(lost, elected - 1);
}

/** The longest main-thread stall the manager logged (its stall monitor, manager/observe/stall.ts), in ms. */
export function maxStallIn(log: string): number {
  let max = 0;
  const re = new RegExp(`"msg":"${STALL_MSG}".*?"${STALL_FIELD.replace('.', '\\.')}":(\\d+)`);
  for (const line of log.split('\n')) {
    const m = re.exec(line);
    if (m) max = Math.max(max, Number(m[1]));
  }
  return max;
}

/** CPU seconds used so far by the manager, its embedded etcd, and this process (the hollow fleet's worker and the watch). */
function cpuNow(mgrPid: number): { manager: number; etcd: number; bench: number } {
  const u = process.cpuUsage();
  return { manager: procCpuS(mgrPid), etcd: childPids(mgrPid).reduce((a, p) => a + procCpuS(p), 0), bench: (u.user + u.system) / 1e6 };
}

function call<Res>(fn: (cb: (e: grpc.ServiceError | null, r?: Res) => void) => unknown): Promise<Res> {
  return new Promise((resolve, reject) => fn((e, r) => (e || !r ? reject(e ?? new Error('empty response')) : resolve(r))));
}

async function withEtcd(): Promise<Record<string, string | number>> {
  // What an interrupted or crashed earlier run left (its manager and etcd still running, its directory).
  for (const d of await sweepScratch(SCRATCH_PREFIX)) console.log(`removed what an earlier run left: ${d}`);
  const dir = scratchDir(SCRATCH_PREFIX);
  const port = await freePort();
  const main = path.join(__dirname, '..', 'cli', 'main.js');
  const log = fs.openSync(path.join(dir, 'manager.log'), 'a');
  const mgr = spawn(
    process.execPath,
    [...(PROFILE ? ['--cpu-prof', '--cpu-prof-dir', path.join(dir, 'prof')] : []), main, 'manager', '--data-dir', path.join(dir, 'm'), '--listen', `127.0.0.1:${port}`, '--nats', 'none', '--metrics-listen', 'none', '--cluster-cidr', BENCH_CLUSTER_CIDR, '--heartbeat-period', '5s'],
    { stdio: ['ignore', log, log] },
  );
  fs.closeSync(log);
  // A manager that refuses to start must fail the benchmark loudly, not leave it waiting on unref'd gRPC timers.
  let mgrExit: string | undefined;
  mgr.once('exit', (code, sig) => (mgrExit = `manager exited (${code ?? sig}); see ${path.join(dir, 'manager.log')}`));
  const addr = `127.0.0.1:${port}`;
  let watcher: { close(): Promise<void> } | undefined;
  let fleet: Awaited<ReturnType<typeof startFleetWorker>> | undefined;
  let control: ControlClient | undefined;
  let stopped: Promise<void> | undefined;
  /** The lead moved during the run: keep the directory, so that the manager's log can tell why. */
  let lostLead = false;
  /** Stops what this run started (once): the fleet, the clients, the manager (which stops its etcd); removes or keeps the directory. */
  const stopAll = (interrupted = false) =>
    (stopped ??= (async () => {
      await fleet?.stop().catch(() => undefined);
      control?.close();
      await watcher?.close().catch(() => undefined);
      // Keep the directory (its manager.log) only when asked to or when the manager died on its own
      // (a Ctrl-C reaches the manager too: that is no death of its own).
      const died = mgrExit !== undefined && !interrupted;
      if (mgr.exitCode === null && mgr.signalCode === null) {
        const exited = new Promise((r) => mgr.once('exit', r));
        mgr.kill('SIGTERM');
        await exited;
      }
      if (KEEP || died || lostLead) keepScratch(dir);
      else fs.rmSync(dir, { recursive: true, force: true });
    })());
  const offInterrupt = onInterrupt(() => stopAll(true));
  try {
    // Mutual TLS with the admin bundle the manager writes into its data dir (docs/security.md).
    const adminDir = path.join(dir, 'm', 'admin');
    for (let i = 0; !fs.existsSync(path.join(adminDir, 'key.pem')); i++) {
      if (mgrExit || i > 150) throw new Error(`${mgrExit ?? 'manager did not start'}; see ${path.join(dir, 'manager.log')}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    const security = mtls(readBundle(adminDir));
    const ctl = new (grpcPackages().control.convoy.Control)(addr, channelCredentials(security, addr), securedChannelOptions(security)) as unknown as ControlClient;
    control = ctl;
    let info;
    for (let i = 0; ; i++) {
      try {
        info = await call<{ cluster: unknown }>((cb) => ctl.GetClusterInfo({}, { deadline: Date.now() + 1000 }, cb));
        break;
      } catch (e) {
        if (mgrExit) throw new Error(`${mgrExit}: ${fs.readFileSync(path.join(dir, 'manager.log'), 'utf8').trim().split('\n').at(-1)}`);
        if (i > 150) throw new Error(`manager did not start; see ${path.join(dir, 'manager.log')}`);
        await new Promise((r) => setTimeout(r, 200));
      }
    }
    void info;
    const etcdUrl = fs.readFileSync(path.join(dir, 'manager.log'), 'utf8').match(/"endpoint":"(https:\/\/[^"]+)"/)?.[1];
    if (!etcdUrl) throw new Error('embedded etcd endpoint not found in the manager log');
    const tokens = await call<{ worker: string }>((cb) => ctl.GetJoinTokens({}, cb));
    let t = performance.now();
    const cpuJoin0 = cpuNow(mgr.pid!);
    fleet = await startFleetWorker({ count: NODES, managers: [addr], joinToken: tokens.worker, stateRoot: path.join(dir, 'fleet'), network: NETWORK });
    const joinS = (performance.now() - t) / 1000;
    const cpuJoin = cpuNow(mgr.pid!);
    console.log(`etcd phase: ${NODES} hollow nodes joined in ${joinS.toFixed(1)} s (CPU: manager ${(cpuJoin.manager - cpuJoin0.manager).toFixed(1)} s, etcd ${(cpuJoin.etcd - cpuJoin0.etcd).toFixed(1)} s, fleet ${(cpuJoin.bench - cpuJoin0.bench).toFixed(1)} s)`);
    for (;;) {
      const r = await call<{ nodes: Node[] }>((cb) => ctl.ListNodes({}, cb));
      if (r.nodes.filter((x) => x.status?.state === 'NODE_READY').length >= NODES) break;
      await new Promise((r2) => setTimeout(r2, 200));
    }
    // Count commits from a watch: a task counts once it is stored with a node and ASSIGNED or later.
    const placed = new Set<string>();
    let lastCommit = 0;
    // The embedded etcd admits the client certificate it made for its manager (manager/embedded/pki.ts).
    const etcdTlsDir = path.join(dir, 'm', 'etcd', 'tls');
    const etcdTls = { ca: fs.readFileSync(path.join(etcdTlsDir, 'ca.pem'), 'utf8'), cert: fs.readFileSync(path.join(etcdTlsDir, 'client.pem'), 'utf8'), key: fs.readFileSync(path.join(etcdTlsDir, 'client-key.pem'), 'utf8') };
    watcher = await watchKind([etcdUrl], 'tasks', (id, v) => {
      if (v.includes('"nodeId":""') || /"state":"(NEW|PENDING)"/.test(v)) return;
      if (!placed.has(id)) {
        placed.add(id);
        lastCommit = performance.now();
      }
    }, etcdTls);
    // The fleet's steady state (heartbeats) alone, to tell the burst's own CPU from it.
    const IDLE_S = 3;
    const idle0 = cpuNow(mgr.pid!);
    await new Promise((r) => setTimeout(r, IDLE_S * 1000));
    const idle1 = cpuNow(mgr.pid!);
    t = performance.now();
    const cpu0 = cpuNow(mgr.pid!);
    let cpu1 = cpu0;
    await call((cb) => ctl.CreateService({ spec: { name: 'bench', replicas: TASKS, container: { image: 'bench/x:1' } } }, cb));
    const createMs = performance.now() - t;
    let lastPrint = 0;
    const deadline = t + 30 * 60_000;
    // A manager that died mid-run ends the wait (its log says why).
    while (placed.size < TASKS && performance.now() < deadline && !mgrExit) {
      if (performance.now() - lastPrint > 2000) {
        console.log(`  ${((performance.now() - t) / 1000).toFixed(1)} s: ${placed.size}/${TASKS} assigned and committed`);
        lastPrint = performance.now();
      }
      await new Promise((r) => setTimeout(r, 50));
      // CPU up to the poll that saw the last commit (within 50 ms of it).
      if (placed.size >= TASKS) cpu1 = cpuNow(mgr.pid!);
    }
    if (cpu1 === cpu0) cpu1 = cpuNow(mgr.pid!);
    await watcher.close();
    const secs = (lastCommit - t) / 1000;
    if (placed.size < TASKS) console.log(`gave up after 30 min: ${placed.size}/${TASKS}`);
    else console.log(`all ${TASKS} tasks assigned and committed ${secs.toFixed(2)} s after CreateService (the call itself: ${createMs.toFixed(0)} ms)`);
    // The stall monitor reports a window after it closes: let the last one in.
    await new Promise((r) => setTimeout(r, STALL_WINDOW_MS + 500));
    const mlog = fs.readFileSync(path.join(dir, 'manager.log'), 'utf8');
    const leaderChanges = leaderChangesIn(mlog);
    // Sessions beyond one per node: agents that registered again (an RPC past its deadline, a lapsed session).
    const reRegistrations = Math.max(0, (mlog.match(/"msg":"node session"/g) ?? []).length - NODES);
    // CPU seconds per 1,000 tasks over the burst: steadier than tasks/s on a shared machine.
    const per1k = (k: 'manager' | 'etcd' | 'bench') => (((cpu1[k] - cpu0[k]) * 1000) / Math.max(1, placed.size)).toFixed(3);
    // Net of the idle rate over the burst's length: what the burst itself cost (robust to a slow, shared machine).
    const net1k = (k: 'manager' | 'etcd' | 'bench') => (((cpu1[k] - cpu0[k] - ((idle1[k] - idle0[k]) / IDLE_S) * secs) * 1000) / Math.max(1, placed.size)).toFixed(3);
    console.log(`idle CPU per second: manager ${((idle1.manager - idle0.manager) / IDLE_S).toFixed(2)} s, fleet ${((idle1.bench - idle0.bench) / IDLE_S).toFixed(2)} s; burst CPU per 1,000 tasks net of it: manager ${net1k('manager')} s, etcd ${net1k('etcd')} s, fleet ${net1k('bench')} s`);
    console.log(`burst CPU per 1,000 tasks: manager ${per1k('manager')} s, etcd ${per1k('etcd')} s, bench (fleet + watch) ${per1k('bench')} s`);
    lostLead = leaderChanges > 0;
    if (KEEP) console.log(`manager log${PROFILE ? ' and profile' : ''} kept in ${dir}`);
    else if (lostLead) console.log(`the lead moved ${leaderChanges} time(s): manager log kept in ${dir} (remove it by hand)`);
    return {
      join_s: joinS.toFixed(1),
      join_cpu_mgr_s: (cpuJoin.manager - cpuJoin0.manager).toFixed(1),
      join_cpu_fleet_s: (cpuJoin.bench - cpuJoin0.bench).toFixed(1),
      seconds: secs.toFixed(2),
      tasks_per_s: Math.round(placed.size / secs),
      tasks_per_s_scope: 'create_to_committed_etcd',
      cpu_mgr_s_per_1k: per1k('manager'),
      cpu_etcd_s_per_1k: per1k('etcd'),
      cpu_fleet_s_per_1k: per1k('bench'),
      net_cpu_mgr_s_per_1k: net1k('manager'),
      net_cpu_fleet_s_per_1k: net1k('bench'),
      leader_changes: leaderChanges,
      network_streams: NETWORK ? 1 : 0,
      max_stall_ms: maxStallIn(mlog),
      re_registrations: reRegistrations,
      load1: os.loadavg()[0].toFixed(1),
    };
  } finally {
    await offInterrupt();
    await stopAll();
  }
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
