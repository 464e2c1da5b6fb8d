// Observability through the whole path: a manager (in this process) with
// etcd and NATS (JetStream) of its own, two agents with the container runtime
// as child processes ("obs-a", "obs-b"), busybox images in a real registry,
// and a real Prometheus server scraping the manager's and the agents' /metrics.
//
// 1. Prometheus returns the expected series for a running service: the
//    manager's desired/running replicas and one usage series per task from
//    the agents.
// 2. `convoy service logs -f` shows lines from tasks on both hosts, each
//    prefixed with task and host.
// 3. `convoy events --since` replays what happened (service created, tasks running).
// 4. A CPU-burning service scales up under load to its max and back down to
//    its min after the load stops; no replica count past the bounds is ever
//    decided (every autoscaled event, and every replica count seen).
// 5. NATS killed: the cluster keeps scheduling (a new service runs); once NATS
//    is back on the same port, events flow again — including the ones
//    published meanwhile (bounded buffer) — and replay finds them.
import { strict as assert } from 'node:assert';
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { startManager, freePort, type ManagerHandle } from '../manager/mod';
import { startNats, type EmbeddedNats } from '../manager/embedded/nats';
import { connectControl, type ConnectedApi, type ControlApi } from '../cli/client';
import { nullLogger } from '../proto/common/logger';
import type { Service, Task } from '../proto/mod';
import type { AgentOptions } from '../agent/mod';
import { Runtime } from '../agent/runtime/runtime';
import { startEtcd, type TestEtcd } from './support/etcd';
import { eventually } from './support/cluster';
import { pushBusyboxImage } from './support/images';
import { killOrphanedRegistries, startRegistry, type TestRegistry } from './support/registry';
import { killOrphanedPrometheus, startPrometheus, type TestPrometheus } from './support/prometheus';

const ROOT = '/tmp/convoy-test-e2e-observability';
const PROC_MAIN = path.join(__dirname, 'support', 'proc-main.js');
const CLI = path.join(__dirname, '..', 'cli', 'main.js');
const DASHBOARD = path.join(__dirname, '..', '..', 'chart', 'dashboards', 'convoy.json');
/** Bound on waiting for the cluster (I/O, not a timing assertion). */
const WAIT_MS = 60_000;
const HOSTS = ['obs-a', 'obs-b'];
/** More output than any command here should print. */
const MAX_CLI_OUTPUT = 1024 * 1024;

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

async function stopProc(a: { child: ChildProcess; exited: Promise<void> } | undefined): Promise<void> {
  if (!a || a.child.exitCode !== null || a.child.signalCode !== null) return;
  a.child.kill('SIGTERM');
  const t = setTimeout(() => a.child.kill('SIGKILL'), 5_000);
  await a.exited;
  clearTimeout(t);
}

/** proc-main agents and CLI followers of a crashed earlier run (re-parented to pid 1, naming our dir). */
function killOrphans(): void {
  for (const p of fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const cmd = fs.readFileSync(`/proc/${p}/cmdline`, 'utf8');
      const stat = fs.readFileSync(`/proc/${p}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === 1 && cmd.includes(ROOT)) process.kill(Number(p), 'SIGKILL');
    } catch {
      /* gone, or not ours */
    }
  }
}

async function removeContainers(): Promise<void> {
  for (const h of HOSTS) {
    const dir = path.join(ROOT, h);
    if (!fs.existsSync(dir)) continue;
    const rt = new Runtime({ stateDir: dir, layersRoot: path.join(dir, 'layers') });
    for (const c of await rt.list()) await rt.remove(c.id).catch(() => undefined);
  }
}

/** Runs the convoy CLI; resolves with its output once it exits. */
function cli(args: string[], env: Record<string, string> = {}): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    // A runaway command must not take the test process down with its output.
    const cap = () => {
      if (out.length + err.length > MAX_CLI_OUTPUT) child.kill('SIGKILL');
    };
    child.stdout.on('data', (d: Buffer) => ((out += d.toString()), cap()));
    child.stderr.on('data', (d: Buffer) => ((err += d.toString()), cap()));
    child.once('exit', (code) => resolve({ code: code ?? 1, out: out.slice(0, MAX_CLI_OUTPUT), err: err.slice(0, MAX_CLI_OUTPUT) }));
  });
}

/** A long-running CLI (a follower): its output so far, and a way to end it. */
function cliFollow(args: string[]): { output(): string; stop(): Promise<void> } {
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  let out = '';
  const add = (d: Buffer) => {
    out += d.toString();
    if (out.length > MAX_CLI_OUTPUT) {
      out = out.slice(-MAX_CLI_OUTPUT);
      child.kill('SIGKILL');
    }
  };
  child.stdout.on('data', add);
  child.stderr.on('data', add);
  return { output: () => out, stop: () => stopProc({ child, exited }) };
}

const running = (ts: Task[]) => ts.filter((t) => t.desiredState === 'RUNNING' && t.status?.state === 'RUNNING');

describe('observability: metrics, events, logs, autoscaling (e2e)', function () {
  this.timeout(300_000);
  let etcd: TestEtcd | undefined;
  let nats: EmbeddedNats | undefined;
  let natsPort = 0;
  let manager: ManagerHandle | undefined;
  let registry: TestRegistry | undefined;
  let prom: TestPrometheus | undefined;
  let conn: ConnectedApi | undefined;
  let api: ControlApi;
  const agents: AgentProc[] = [];
  let image = '';
  const ctlDir = path.join(ROOT, 'ctl');

  before(async () => {
    killOrphans();
    killOrphanedRegistries();
    killOrphanedPrometheus();
    await removeContainers();
    fs.rmSync(ROOT, { recursive: true, force: true });
    fs.mkdirSync(ctlDir, { recursive: true });

    etcd = await startEtcd({ dataDir: path.join(ROOT, 'etcd') });
    natsPort = await freePort();
    nats = await startNats({ dataDir: path.join(ROOT, 'nats'), port: natsPort });
    registry = await startRegistry();
    image = (await pushBusyboxImage(registry.host)).ref;
    const managerMetrics = `127.0.0.1:${await freePort()}`;
    manager = await startManager({
      dataDir: path.join(ROOT, 'manager'),
      listen: `127.0.0.1:${await freePort()}`,
      etcdEndpoints: etcd.endpoints,
      natsUrl: nats.url,
      metricsListen: managerMetrics,
      heartbeatPeriodMs: 300,
      logger: nullLogger,
    });
    conn = connectControl(manager.grpcAddr);
    api = conn.api;
    const token = (await api.getJoinTokens({})).worker;
    const agentMetrics: string[] = [];
    for (const h of HOSTS) {
      const m = `127.0.0.1:${await freePort()}`;
      agentMetrics.push(m);
      agents.push(
        await spawnAgent({
          managers: [manager.grpcAddr],
          joinToken: token,
          stateDir: path.join(ROOT, h),
          hostname: h,
          advertiseAddr: '127.0.0.1',
          executor: 'container',
          runtime: { insecureRegistries: [registry.host] },
          metricsListen: m,
          runDir: '',
        }),
      );
    }
    prom = await startPrometheus({ 'convoy-manager': [manager.metricsAddr ?? managerMetrics], 'convoy-agent': agentMetrics });
  });

  after(async () => {
    for (const s of ['obs-web', 'obs-burn', 'obs-nonats']) await api?.removeService({ service: s }).catch(() => undefined);
    await prom?.stop().catch(() => undefined);
    for (const a of agents) await stopProc(a);
    conn?.close();
    await manager?.stop().catch(() => undefined);
    await nats?.stop().catch(() => undefined);
    await etcd?.stop().catch(() => undefined);
    await registry?.stop().catch(() => undefined);
    await removeContainers().catch(() => undefined);
    fs.rmSync(ROOT, { recursive: true, force: true });
  });

  const host = () => ['--host', manager!.grpcAddr];

  it('Prometheus scrapes the manager and both agents: replicas and per-task usage of a running service', async () => {
    await api.createService({
      spec: {
        name: 'obs-web',
        replicas: 2,
        container: { image, command: ['sh', '-c', 'i=0; while true; do i=$((i+1)); echo "line $i from $(hostname)"; sleep 0.5; done'], stopGracePeriodMs: 500 },
      },
    });
    const tasks = await eventually(async () => {
      const r = running((await api.listTasks({ service: 'obs-web' })).tasks);
      return r.length === 2 && r;
    }, 'obs-web running 2 tasks', WAIT_MS);
    assert.equal(new Set(tasks.map((t) => t.nodeId)).size, 2, 'one task per host');

    const replicas = await eventually(async () => {
      const [d] = await prom!.query('convoy_service_replicas_running{service="obs-web",job="convoy-manager"}');
      return d && Number(d.value[1]) === 2 && d;
    }, 'convoy_service_replicas_running{service="obs-web"} = 2 in Prometheus', WAIT_MS);
    assert.equal(replicas.metric.job, 'convoy-manager');
    const desired = await prom!.query('convoy_service_replicas_desired{service="obs-web"}');
    assert.equal(Number(desired[0]?.value[1]), 2);

    const mem = await eventually(async () => {
      const r = await prom!.query('convoy_task_memory_usage_bytes{service="obs-web",job="convoy-agent"}');
      return r.length === 2 && r;
    }, 'a memory series per obs-web task in Prometheus', WAIT_MS);
    assert.deepEqual(mem.map((s) => s.metric.task).sort(), tasks.map((t) => t.id).sort());
    for (const s of mem) {
      assert.ok(Number(s.value[1]) > 0, `memory of ${s.metric.task} > 0`);
      assert.ok(['1', '2'].includes(s.metric.slot));
    }
    const cpu = await prom!.query('convoy_task_cpu_seconds_total{service="obs-web"}');
    assert.equal(cpu.length, 2);
    const leader = await prom!.query('convoy_manager_leader');
    assert.equal(Number(leader[0]?.value[1]), 1);
    const calls = await prom!.query('convoy_control_requests_total{method="CreateService",code="OK"}');
    assert.ok(Number(calls[0]?.value[1]) >= 1, 'CreateService counted');

    // Every query of the chart's Grafana dashboard is valid PromQL against these series.
    const dash = JSON.parse(fs.readFileSync(DASHBOARD, 'utf8')) as { panels: { title: string; targets: { expr: string }[] }[] };
    let withData = 0;
    for (const p of dash.panels) {
      for (const t of p.targets) {
        const r = await prom!.query(t.expr.replace(/\$service/g, '.*'));
        if (r.length) withData++;
      }
    }
    assert.ok(withData >= 8, `dashboard queries with data: ${withData}`);
  });

  it('`service logs -f` merges lines of tasks on both hosts, prefixed with task and host', async () => {
    const f = cliFollow([...host(), 'service', 'logs', '-f', '--tail', '2', 'obs-web']);
    try {
      await eventually(async () => HOSTS.every((h) => new RegExp(`^obs-web\\.\\d\\.\\w+@${h} +\\| line \\d+`, 'm').test(f.output())), 'log lines from obs-a and obs-b', WAIT_MS);
      // Following: new lines keep coming after the history.
      const seen = f.output().length;
      await eventually(async () => f.output().length > seen + 40, 'more lines while following', WAIT_MS);
    } finally {
      await f.stop();
    }
    const once = await cli([...host(), 'service', 'logs', '--tail', '1', 'obs-web']);
    assert.equal(once.code, 0, once.err);
    assert.equal(once.out.trim().split('\n').length, 2, `one line per task: ${once.out}`);
    const bad = await cli([...host(), 'service', 'logs', 'no-such-service']);
    assert.equal(bad.code, 1);
    assert.match(bad.err, /^convoy: .*no-such-service/);
  });

  it('`events --since` replays what happened', async () => {
    const r = await cli([...host(), 'events', '--since', '10m', '--no-follow', '--filter', 'service=obs-web']);
    assert.equal(r.code, 0, `${r.err} ${r.out.slice(0, 3000)}`);
    assert.match(r.out, / service created obs-web /);
    assert.ok((r.out.match(/ task state obs-web\.\d \S+ RUNNING/g) ?? []).length >= 2, `two tasks RUNNING in: ${r.out}`);
    assert.doesNotMatch(r.out, /obs-burn|node up/, 'filtered to obs-web');
    const j = await cli([...host(), 'events', '--since', '10m', '--no-follow', '--filter', 'type=node', '--format', 'json']);
    const nodes = j.out.trim().split('\n').map((l) => JSON.parse(l) as { type: string; hostname: string });
    assert.ok(nodes.length >= 2 && nodes.every((e) => e.type === 'node'));
  });

  it('a CPU-burning service scales up to its max under load and back to its min after, never past the bounds', async () => {
    // Each task burns while /ctl/burn exists: limited to 0.3 CPU, reserving 0.1 → ~300% of its reservation.
    const burn = 'while true; do if [ -f /ctl/burn ]; then i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; else sleep 0.2; fi; done';
    await api.createService({
      spec: {
        name: 'obs-burn',
        replicas: 1,
        container: { image, command: ['sh', '-c', burn], mounts: [{ type: 'BIND', source: ctlDir, target: '/ctl', readOnly: true }], stopGracePeriodMs: 200 },
        resources: { reservations: { nanoCpus: 1e8 }, limits: { nanoCpus: 3e8 } },
      },
    });
    const set = await cli([...host(), 'service', 'autoscale', 'obs-burn', '--min', '1', '--max', '3', '--cpu', '50', '--scale-down-delay', '4s']);
    assert.equal(set.code, 0, set.err);
    const ls = await cli([...host(), 'service', 'ls']);
    assert.match(ls.out, /obs-burn .* 1-3 cpu 50%/);

    const seen: number[] = [];
    const replicas = async () => {
      const s = (await api.getService({ service: 'obs-burn' })).service as Service;
      seen.push(Number(s.spec?.replicas));
      return Number(s.spec?.replicas);
    };
    await eventually(async () => running((await api.listTasks({ service: 'obs-burn' })).tasks).length === 1, 'obs-burn running', WAIT_MS);
    fs.writeFileSync(path.join(ctlDir, 'burn'), '');
    await eventually(async () => (await replicas()) === 3 && running((await api.listTasks({ service: 'obs-burn' })).tasks).length === 3, 'obs-burn scaled up to 3 running', WAIT_MS);
    fs.rmSync(path.join(ctlDir, 'burn'));
    await eventually(async () => (await replicas()) === 1, 'obs-burn scaled back down to 1', WAIT_MS);
    assert.ok(seen.every((n) => n >= 1 && n <= 3), `replicas within [1,3]: ${seen.join(',')}`);

    const ev = await cli([...host(), 'events', '--since', '10m', '--no-follow', '--filter', 'service=obs-burn', '--filter', 'type=service', '--format', 'json']);
    const scaled = ev.out.trim().split('\n').map((l) => JSON.parse(l) as { action: string; from?: number; to?: number; message?: string }).filter((e) => e.action === 'autoscaled');
    assert.ok(scaled.some((e) => e.to! > e.from!), 'a scale-up event');
    assert.ok(scaled.some((e) => e.to! < e.from!), 'a scale-down event');
    for (const e of scaled) {
      assert.ok(e.to! >= 1 && e.to! <= 3, `autoscaled within bounds: ${JSON.stringify(e)}`);
      assert.match(e.message ?? '', /^cpu \d+% of target over \d+ tasks?: \d+ → \d+/);
    }
  });

  it('keeps scheduling with NATS killed; events flow again (and replay) once it is back', async () => {
    await nats!.stop();
    await api.createService({ spec: { name: 'obs-nonats', replicas: 1, container: { image, command: ['sleep', '3600'], stopGracePeriodMs: 200 } } });
    await eventually(async () => running((await api.listTasks({ service: 'obs-nonats' })).tasks).length === 1, 'obs-nonats running without NATS', WAIT_MS);

    nats = await startNats({ dataDir: path.join(ROOT, 'nats'), port: natsPort });
    const live = cliFollow([...host(), 'events', '--filter', 'service=obs-nonats']);
    try {
      // The follower is subscribed once it printed nothing for a moment; scale until its event shows up.
      await eventually(async () => {
        await api.scaleService({ service: 'obs-nonats', replicas: 2 + (Date.now() % 2) });
        return / service scaled obs-nonats /.test(live.output());
      }, 'a live scaled event after NATS came back', WAIT_MS);
    } finally {
      await live.stop();
    }
    // The created event, published while NATS was down, was kept and sent once it returned.
    const r = await cli([...host(), 'events', '--since', '10m', '--no-follow', '--filter', 'service=obs-nonats']);
    assert.match(r.out, / service created obs-nonats /);
    assert.match(r.out, / service scaled obs-nonats /);
  });
});
