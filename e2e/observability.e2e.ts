// Observability through the whole path on a 2-host netns lab (cli/lab, the
// same `convoy lab up`): the registry on the machine side of the lab bridge,
// the manager (embedded etcd and NATS with JetStream, mutual TLS) in host 1,
// one agent with the container runtime per host (lab-h1, lab-h2), busybox
// images in the lab's registry, and a real Prometheus server on the machine
// scraping the manager's and the agents' /metrics over the bridge. The CLI
// runs on the machine against the lab's manager.
//
// 1. Prometheus returns the expected series for a running service: the
//    manager's desired/running replicas and one usage series per task from
//    the agents; every query of the Grafana dashboard is valid.
// 2. `convoy service logs -f` shows lines from tasks on both hosts, each
//    prefixed with task and host.
// 3. `convoy events --since` replays what happened (service created, tasks running).
// 4. A CPU-burning service scales up under load to its max and back down to
//    its min after the load stops; no replica count past the bounds is ever
//    decided (every autoscaled event, and every replica count seen).
// 5. The lab's NATS stopped: the cluster keeps scheduling (a new service
//    runs); once NATS is back on the same address and store, events flow
//    again — including the ones published meanwhile (bounded buffer) — and
//    replay finds them.
import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { connectControl, type ControlApi, type ControlConnection } from '../proto/client';
import { labSecurity } from '../lab/mod';
import type { Node, Service, Task } from '../proto/mod';
import { eventually } from '../common/eventually';
import { startLab, type Lab } from './support/lab';
import { killOrphanedPrometheus, startPrometheus, type TestPrometheus } from './support/prometheus';
import { killOrphans } from '../lab/procs';
import { stopChild } from '../common/net';

/** The burn control dir (bind-mounted into the burning tasks: agents share the machine's filesystem). */
const ROOT = '/tmp/convoy-test-e2e-observability';
const CLI = path.join(__dirname, '..', 'cli', 'main.js');
const DASHBOARD = path.join(__dirname, '..', '..', 'chart', 'dashboards', 'convoy.json');
/** Bound on waiting for the cluster (I/O, not a timing assertion). */
const WAIT_MS = 60_000;
/** More output than any command here should print. */
const MAX_CLI_OUTPUT = 1024 * 1024;
/** Marks the CLI processes this test starts (in their environment), so a crashed run's followers are found. */
const MARKER = 'CONVOY_E2E_OBSERVABILITY';

/** CLI followers of a crashed earlier run: re-parented to pid 1, with our marker in their environment. */
function killOrphanedFollowers(): void {
  killOrphans((o) => o.cmdline.includes(CLI) && o.environ().includes(`${MARKER}=1`));
}

let cliEnv: NodeJS.ProcessEnv = { ...process.env, [MARKER]: '1' };

/** Runs the convoy CLI; resolves with its output once it exits. */
function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { env: cliEnv, stdio: ['ignore', 'pipe', 'pipe'] });
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
  const child = spawn(process.execPath, [CLI, ...args], { env: cliEnv, stdio: ['ignore', 'pipe', 'pipe'] });
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
  return { output: () => out, stop: () => stopChild(child) };
}

const running = (ts: Task[]) => ts.filter((t) => t.desiredState === 'RUNNING' && t.status?.state === 'RUNNING');

describe('observability on a 2-host lab: metrics, events, logs, autoscaling (e2e)', function () {
  this.timeout(300_000);
  let lab: Lab | undefined;
  let prom: TestPrometheus | undefined;
  let conn: ControlConnection | undefined;
  let api: ControlApi;
  let image = '';
  /** Hostnames of the lab's agents (lab-h1, lab-h2) by node id. */
  let hostnames = new Map<string, string>();
  /** Hostnames of the hosts running obs-web's two tasks. */
  let webHosts: string[] = [];
  const ctlDir = path.join(ROOT, 'ctl');

  before(async () => {
    // Leftovers of a crashed earlier run: its CLI followers and Prometheus (startLab takes its lab down).
    killOrphanedFollowers();
    killOrphanedPrometheus();
    fs.rmSync(ROOT, { recursive: true, force: true });
    fs.mkdirSync(ctlDir, { recursive: true });

    lab = await startLab({ hosts: 2, heartbeat: '500ms' });
    image = lab.image;
    cliEnv = { ...process.env, [MARKER]: '1', CONVOY_HOST: lab.state.manager, CONVOY_TLS_DIR: lab.state.tlsDir ?? '' };
    conn = connectControl(lab.state.manager, { security: labSecurity(lab.state) });
    api = conn;
    hostnames = new Map(((await api.listNodes({})).nodes as Node[]).map((n) => [n.id, n.description?.hostname ?? '']));
    assert.deepEqual([...hostnames.values()].sort(), ['lab-h1', 'lab-h2']);
    assert.match(lab.nats, /^tls:\/\/10\.41\.0\.11:4222$/);
    prom = await startPrometheus({ 'convoy-manager': [lab.metrics.manager], 'convoy-agent': lab.metrics.agents });
  });

  after(async () => {
    await prom?.stop().catch(() => undefined);
    conn?.close();
    await lab?.stop();
    fs.rmSync(ROOT, { recursive: true, force: true });
  });

  const host = () => ['--host', lab!.state.manager];

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
    webHosts = tasks.map((t) => hostnames.get(t.nodeId) ?? '').sort();
    assert.deepEqual(webHosts, ['lab-h1', 'lab-h2']);

    // Every target is up: the manager's and both agents' /metrics, scraped over the lab bridge.
    const up = await eventually(async () => {
      const r = await prom!.query('up == 1');
      return r.length === 1 + lab!.metrics.agents.length && r;
    }, 'every scrape target up', WAIT_MS);
    assert.deepEqual(up.map((s) => s.metric.instance).sort(), [lab!.metrics.manager, ...lab!.metrics.agents].sort());

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
    // Each task's series comes from the agent of the host it runs on.
    const agentOf = new Map(lab!.state.hosts.map((h, i) => [`lab-h${h.index}`, lab!.metrics.agents[i]]));
    for (const t of tasks) assert.equal(mem.find((s) => s.metric.task === t.id)?.metric.instance, agentOf.get(hostnames.get(t.nodeId) ?? ''), `series of ${t.id}`);
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
      await eventually(async () => webHosts.every((h) => new RegExp(`^obs-web\\.\\d\\.\\w+@${h} +\\| line \\d+ from `, 'm').test(f.output())), `log lines from ${webHosts.join(' and ')}`, WAIT_MS);
      // Following: new lines keep coming after the history.
      const seen = f.output().length;
      await eventually(async () => f.output().length > seen + 40, 'more lines while following', WAIT_MS);
    } finally {
      await f.stop();
    }
    const once = await cli([...host(), 'service', 'logs', '--tail', '1', 'obs-web']);
    assert.equal(once.code, 0, once.err);
    const lines = once.out.trim().split('\n');
    assert.equal(lines.length, 2, `one line per task: ${once.out}`);
    assert.deepEqual(lines.map((l) => /@(\S+) +\|/.exec(l)?.[1]).sort(), webHosts, `one line from each host: ${once.out}`);
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
    assert.equal(j.code, 0, j.err);
    const nodes = j.out.trim().split('\n').map((l) => JSON.parse(l) as { type: string; hostname: string });
    assert.ok(nodes.length >= 2 && nodes.every((e) => e.type === 'node'), j.out);
    assert.deepEqual([...new Set(nodes.map((e) => e.hostname))].sort(), ['lab-h1', 'lab-h2'], `node events of both hosts: ${j.out}`);
  });

  it('a CPU-burning service scales up to its max under load and back to its min after, never past the bounds', async () => {
    // Each task burns while /ctl/burn exists: limited to 0.3 CPU, reserving 0.1 → ~300% of its reservation.
    const burn = 'while true; do if [ -f /ctl/burn ]; then i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; else sleep 0.2; fi; done';
    // Bind mounts come only from paths the cluster allows.
    await api.updateCluster({ bindAllow: [ctlDir], setBindAllow: true });
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
    const natsConnected = async (v: number) => {
      const r = await prom!.query('convoy_agent_nats_connected');
      return r.length === lab!.metrics.agents.length && r.every((x) => Number(x.value[1]) === v);
    };
    await lab!.stopNats();
    await eventually(() => natsConnected(0), 'both agents report NATS disconnected', WAIT_MS);
    await api.createService({ spec: { name: 'obs-nonats', replicas: 1, container: { image, command: ['sleep', '3600'], stopGracePeriodMs: 200 } } });
    await eventually(async () => running((await api.listTasks({ service: 'obs-nonats' })).tasks).length === 1, 'obs-nonats running without NATS', WAIT_MS);

    await lab!.startNats();
    await eventually(() => natsConnected(1), 'both agents back on NATS', WAIT_MS);
    const live = cliFollow([...host(), 'events', '--filter', 'service=obs-nonats']);
    try {
      // The follower is subscribed once it printed nothing for a moment; scale until its event shows up.
      await eventually(async () => {
        await api.scaleService({ service: 'obs-nonats', replicas: 2 + (Date.now() % 2) });
        return / service scaled obs-nonats /.test(live.output());
      }, 'a live scaled event after NATS came back', WAIT_MS);
      // And an agent's: slot 4, created now (the follower is subscribed), starts on a host.
      await api.scaleService({ service: 'obs-nonats', replicas: 4 });
      await eventually(async () => / task state obs-nonats\.4 \S+ RUNNING/.test(live.output()), 'a live task event from an agent after NATS came back', WAIT_MS).catch((e: Error) => {
        throw new Error(`${e.message}; the follower printed:\n${live.output()}`);
      });
    } finally {
      await live.stop();
    }
    // What was published while NATS was down (the manager's created event, the agent's RUNNING of
    // slot 1) was kept and sent once it returned; replay finds it with what came after.
    const r = await cli([...host(), 'events', '--since', '10m', '--no-follow', '--filter', 'service=obs-nonats']);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, / service created obs-nonats /);
    assert.match(r.out, / task state obs-nonats\.1 \S+ RUNNING/);
    assert.match(r.out, / service scaled obs-nonats /);
  });
});
