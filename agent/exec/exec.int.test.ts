// `convoy task exec` end to end on one host: a real manager (real etcd), a
// real agent with the container runtime serving its local socket, a busybox
// task from a real registry; the CLI verb and the socket client against it.
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { startManager, freePort, type ManagerHandle } from '../../e2e/support/manager';
import { eventually } from '../../common/eventually';
import { startAgent, type AgentHandle } from '../mod';
import { Runtime } from '../runtime/runtime';
import { taskHostname } from '../runtime/hostname';
import { startEtcd, type TestEtcd } from '../../lab/etcd';
import { startRegistry, type TestRegistry } from '../../lab/registry';
import { pushBusyboxImage } from '../../lab/images';
import { connectControl, type CliIO, type ConnectedApi } from '../../cli/client';
import { adminSecurity } from '../../e2e/support/security';
import { run } from '../../cli/main';
import { nullLogger } from '../../common/logger';
import type { Task } from '../../proto/mod';
import { agentSocketPath, execInTask, ExecError, sweepStaleSockets } from './mod';
import { agentLocalClient, type ExecResponse__Output } from './proto';

const ROOT = '/tmp/convoy-test-exec';
const AGENT_DIR = path.join(ROOT, 'agent');
const RUN_DIR = path.join(ROOT, 'run');

async function removeContainers(): Promise<void> {
  const rt = new Runtime({ stateDir: AGENT_DIR, layersRoot: path.join(AGENT_DIR, 'layers') });
  for (const c of await rt.list()) await rt.remove(c.id).catch(() => undefined);
}

describe('convoy task exec (integration)', function () {
  this.timeout(60_000);
  let etcd: TestEtcd | undefined;
  let manager: ManagerHandle | undefined;
  let agent: AgentHandle | undefined;
  let reg: TestRegistry | undefined;
  let conn: ConnectedApi | undefined;
  let task: Task;

  /** Runs `convoy ...` in this process; collects its output and exit status. */
  async function convoy(args: string[], env: Record<string, string> = {}): Promise<{ code: number; out: string; err: string }> {
    let out = '';
    let err = '';
    const io: CliIO = {
      out: (s) => void (out += s),
      err: (s) => void (err += s),
      now: () => Date.now(),
      env: { CONVOY_RUN_DIR: RUN_DIR, ...env },
      connect: (host) => connectControl(host, adminSecurity(manager!)),
      setExitCode: () => undefined,
    };
    const code = await run(['-H', manager!.grpcAddr, ...args], io);
    return { code, out, err };
  }

  before(async () => {
    await removeContainers();
    fs.rmSync(ROOT, { recursive: true, force: true });
    fs.mkdirSync(ROOT, { recursive: true });
    reg = await startRegistry();
    const image = await pushBusyboxImage(reg.host);
    etcd = await startEtcd({ dataDir: path.join(ROOT, 'etcd') });
    manager = await startManager({ dataDir: path.join(ROOT, 'manager'), listen: `127.0.0.1:${await freePort()}`, etcdEndpoints: etcd.endpoints, etcdTls: etcd.tls, logger: nullLogger });
    conn = connectControl(manager.grpcAddr, adminSecurity(manager));
    agent = await startAgent({
      managers: [manager.grpcAddr],
      joinToken: (await conn.api.getJoinTokens({})).worker,
      stateDir: AGENT_DIR,
      hostname: 'exec-host',
      advertiseAddr: '127.0.0.1',
      executor: 'container',
      runtime: { insecureRegistries: [reg.host] },
      runDir: RUN_DIR,
      logger: nullLogger,
    });
    await conn.api.createService({ spec: { name: 'rt-exec', replicas: 1, container: { image: image.ref, command: ['sleep', '3600'], stopGracePeriodMs: 200 } } });
    task = await eventually(async () => (await conn!.api.listTasks({ service: 'rt-exec', states: ['RUNNING'] })).tasks[0], 'rt-exec RUNNING', 30_000);
  });

  after(async () => {
    await conn?.api.removeService({ service: 'rt-exec' }).catch(() => undefined);
    await agent?.stop();
    conn?.close();
    await manager?.stop().catch(() => undefined);
    await etcd?.stop().catch(() => undefined);
    await reg?.stop();
    await removeContainers();
    fs.rmSync(ROOT, { recursive: true, force: true });
  });

  it('serves the socket at <run dir>/agent-<node id>.sock, root only', () => {
    const st = fs.statSync(agentSocketPath(RUN_DIR, task.nodeId));
    assert.ok(st.isSocket());
    assert.equal(st.mode & 0o777, 0o600);
  });

  it('sweeps sockets of agents killed with kill -9, never a live one', async () => {
    const stale = path.join(RUN_DIR, 'agent-killedagent.sock');
    // a process that listens on it and is SIGKILLed: the socket file stays
    spawnSync(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(stale)}, () => process.kill(process.pid, 'SIGKILL'))`]);
    assert.ok(fs.statSync(stale).isSocket(), 'the killed listener left its socket');
    const removed = await sweepStaleSockets(RUN_DIR, Date.now() + 60_000);
    assert.deepEqual(removed, [stale]);
    assert.ok(fs.existsSync(agentSocketPath(RUN_DIR, task.nodeId)), 'the live agent keeps its socket');
  });

  it('runs a command in the container: stdout, stderr and its exit status', async () => {
    const r = await convoy(['task', 'exec', task.id, '--', 'sh', '-c', 'hostname; echo oops >&2; exit 3']);
    assert.equal(r.out, `${taskHostname(task)}\n`, 'the container\'s hostname: it ran inside');
    assert.equal(r.err, 'oops\n');
    assert.equal(r.code, 3);
  });

  it('accepts SERVICE.SLOT, -e/-u/-w, and flags after the task belong to the command', async () => {
    const r = await convoy(['task', 'exec', '-e', 'GREETING=hi', '-u', 'nobody', '-w', '/tmp', 'rt-exec.1', 'sh', '-c', 'echo $GREETING; id -u; pwd; ls -d /proc']);
    assert.equal(r.err, '');
    assert.equal(r.out, 'hi\n65534\n/tmp\n/proc\n');
    assert.equal(r.code, 0);
  });

  it('streams stdin to the process', async () => {
    let out = '';
    async function* input() {
      yield 'hello ';
      yield Buffer.from('world\n');
    }
    const code = await execInTask({ socketPath: agentSocketPath(RUN_DIR, task.nodeId), taskId: task.id, args: ['cat'] }, { stdin: input(), stdout: (b) => (out += b.toString()), stderr: () => undefined });
    assert.equal(out, 'hello world\n');
    assert.equal(code, 0);
  });

  it('gives the process a terminal of the container with -t (size, TERM, output on stdout)', async () => {
    let out = '';
    let err = '';
    const code = await execInTask(
      { socketPath: agentSocketPath(RUN_DIR, task.nodeId), taskId: task.id, args: ['sh', '-c', 'tty; stty size; echo $TERM; test -t 0 && echo stdin-is-a-tty; echo to-stderr >&2; exit 4'], tty: { rows: 33, cols: 111 } },
      { stdout: (b) => (out += b.toString()), stderr: (b) => (err += b.toString()) },
    );
    // a terminal turns \n into \r\n
    assert.deepEqual(out.split('\r\n'), ['/dev/pts/0', '33 111', 'xterm', 'stdin-is-a-tty', 'to-stderr', '']);
    assert.equal(err, '');
    assert.equal(code, 4);
    const cli = await convoy(['task', 'exec', '-t', task.id, '--', 'tty']);
    assert.equal(cli.out, '/dev/pts/0\r\n');
    assert.equal(cli.code, 0);
  });

  it('-i with a terminal: what is typed reaches the shell, its echo and output come back; the terminal resizes', async () => {
    let out = '';
    let seen: (() => void) | undefined;
    const outputHas = (s: string) => new Promise<void>((resolve) => (seen = () => out.includes(s) && resolve()));
    let resize: ((size: { rows: number; cols: number }) => void) | undefined;
    async function* keys() {
      const first = outputHas('\r\n42\r\n24 80\r\n');
      yield 'echo $((6*7)); stty size\n';
      await first;
      resize!({ rows: 50, cols: 132 });
      yield 'stty size\n';
      yield 'exit 5\n';
    }
    const code = await execInTask(
      { socketPath: agentSocketPath(RUN_DIR, task.nodeId), taskId: task.id, args: ['sh'], tty: {} },
      {
        stdin: keys(),
        stdout: (b) => {
          out += b.toString();
          seen?.();
        },
        stderr: () => undefined,
        onResize: (l) => {
          resize = l;
          return () => (resize = undefined);
        },
      },
    );
    assert.match(out, /echo \$\(\(6\*7\)\); stty size\r\n42\r\n24 80\r\n/);
    assert.match(out, /stty size\r\n50 132\r\n/);
    assert.equal(code, 5);
  });

  it('a client that goes away hangs its process up', async () => {
    const client = agentLocalClient(agentSocketPath(RUN_DIR, task.nodeId));
    try {
      const call = client.Exec();
      call.on('error', () => undefined); // CANCELLED, ours
      const started = new Promise<void>((resolve) => call.on('data', (m: ExecResponse__Output) => m.stdout?.toString().includes('started') && resolve()));
      call.write({ start: { taskId: task.id, args: ['sh', '-c', 'echo started; exec sleep 314'] } });
      await started;
      const count = async () => (await convoy(['task', 'exec', task.id, '--', 'sh', '-c', 'ps -o args | grep -c "^sleep 314"'])).out.trim();
      assert.equal(await count(), '1', 'the process runs while its client is there');
      call.cancel();
      await eventually(async () => (await count()) === '0' || undefined, 'the process gone after its client left', 10_000);
    } finally {
      client.close();
    }
  });

  it('a command missing in the image: a clear error and status 127', async () => {
    const r = await convoy(['task', 'exec', task.id, '--', '/no/such/cmd']);
    assert.match(r.err, /\/no\/such\/cmd/);
    assert.equal(r.code, 127);
  });

  it('refuses a task of another host with one line naming the host', async () => {
    const elsewhere = path.join(ROOT, 'elsewhere');
    fs.mkdirSync(elsewhere, { recursive: true });
    const r = await convoy(['task', 'exec', task.id, '--', 'true'], { CONVOY_RUN_DIR: elsewhere });
    assert.equal(r.code, 1);
    assert.match(r.err, /^convoy: task \w+ runs on node exec-host \(127\.0\.0\.1\), not on this host .*run `convoy task exec` there\n$/);
  });

  it('an unknown task, a missing command, and a task id the agent has no container for are refused by name', async () => {
    const unknown = await convoy(['task', 'exec', 'nosuchtask', '--', 'true']);
    assert.equal(unknown.code, 1);
    assert.match(unknown.err, /^convoy: task "nosuchtask" not found/);
    const nocmd = await convoy(['task', 'exec', task.id, '--']);
    assert.equal(nocmd.code, 1);
    assert.match(nocmd.err, /^convoy: exec: no command given/);
    await assert.rejects(
      execInTask({ socketPath: agentSocketPath(RUN_DIR, task.nodeId), taskId: 'deadbeef', args: ['true'] }, { stdout: () => undefined, stderr: () => undefined }),
      (e: unknown) => e instanceof ExecError && e.code === 5 && /no container deadbeef/.test(e.message),
    );
  });
});
