// The real `convoy` binary against a real manager: `convoy manager` and two
// `convoy agent --executor hollow` as child processes on a throwaway etcd,
// then the operator verbs as a person would type them.
import { strict as assert } from 'node:assert';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { eventually } from '../common/eventually';
import { startEtcd, type TestEtcd } from '../lab/etcd';
import { freePort } from '../common/net';
import type { Node, Service, Task } from '../proto/mod';

const MAIN = path.join(__dirname, 'main.js');

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

describe('convoy binary (integration: real manager, hollow agents, real etcd)', function () {
  this.timeout(120_000);
  let etcd: TestEtcd;
  let dir: string;
  let host: string;
  const daemons: { name: string; child: ChildProcess; exited: Promise<number | null> }[] = [];

  const convoy = (...args: string[]): Promise<Result> =>
    new Promise((resolve) => {
      execFile(process.execPath, [MAIN, ...args], { env: { ...process.env, CONVOY_HOST: host, CONVOY_TLS_DIR: path.join(dir, 'manager', 'admin') } }, (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
        resolve({ code, stdout, stderr });
      });
    });
  const ok = async (...args: string[]): Promise<string> => {
    const r = await convoy(...args);
    assert.equal(r.code, 0, `convoy ${args.join(' ')} failed: ${r.stderr}`);
    return r.stdout;
  };
  const daemon = (name: string, args: string[]) => {
    const child = spawn(process.execPath, [MAIN, ...args], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, CONVOY_LOG_LEVEL: 'warn' } });
    let err = '';
    child.stderr!.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-4000)));
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    exited.then((code) => {
      if (code) process.stderr.write(`${name} exited ${code}: ${err}\n`);
    });
    daemons.push({ name, child, exited });
  };
  const running = async (service: string) =>
    (JSON.parse(await ok('service', 'ps', service, '--format', 'json')) as Task[]).filter((t) => t.desiredState === 'RUNNING' && t.status?.state === 'RUNNING');

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'convoy-cli-int-'));
    etcd = await startEtcd({ dataDir: path.join(dir, 'etcd') });
    host = `127.0.0.1:${await freePort()}`;
    daemon('manager', ['manager', '--listen', host, ...etcd.managerFlags(), '--data-dir', path.join(dir, 'manager'), '--metrics-listen', 'none', '--nats', 'none', '--heartbeat-period', '300ms']);
    await eventually(async () => (await convoy('cluster', 'info')).code === 0, 'manager answers');
    const token = (await ok('cluster', 'join-token', '-q', 'worker')).trim();
    for (const h of ['h1', 'h2'])
      daemon(`agent-${h}`, ['agent', '--manager', host, '--token', token, '--executor', 'hollow', '--hostname', h, '--advertise-addr', '127.0.0.1', '--state-dir', path.join(dir, h), '--metrics-listen', 'none', '--label', `zone=${h}`]);
    await eventually(async () => (JSON.parse(await ok('node', 'ls', '--format', 'json')) as Node[]).filter((n) => n.status?.state === 'NODE_READY').length === 2, '2 nodes ready');
  });

  after(async () => {
    for (const d of daemons) if (d.child.exitCode === null) d.child.kill('SIGKILL');
    await etcd?.stop().catch(() => undefined);
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('lists the nodes', async () => {
    const out = await ok('node', 'ls');
    assert.match(out, /^ID\s+HOSTNAME\s+STATUS\s+AVAILABILITY/);
    assert.match(out, /\sh1\s+Ready\s+Active\s+Worker\s/);
    assert.match(out, /\sh2\s+Ready\s+Active\s+Worker\s/);
  });

  it('creates a service and shows it running', async () => {
    const id = (await ok('service', 'create', '-d', '--name', 'web', '--replicas', '4', '-p', '8080:80', '--restart-delay', '1s', 'registry.local/web:1', 'httpd', '-f')).trim();
    assert.match(id, /^[0-9a-f]{10,}$/);
    await eventually(async () => (await running('web')).length === 4, '4 running');
    const ls = await ok('service', 'ls');
    assert.match(ls, /\sweb\s+replicated\s+4\/4\s+registry\.local\/web:1\s+\*:8080->80\/tcp\s+-/);
    const ps = await ok('service', 'ps', 'web');
    for (const slot of [1, 2, 3, 4]) assert.match(ps, new RegExp(`\\sweb\\.${slot}\\s+registry\\.local/web:1\\s+h[12]\\s+Running\\s+Running `));
    const svc = JSON.parse(await ok('service', 'inspect', 'web')) as Service[];
    assert.deepEqual(svc[0].spec?.container?.args, ['httpd', '-f']);
  });

  it('scales, updates and rolls back', async () => {
    assert.equal(await ok('service', 'scale', '-d', 'web=2'), 'web scaled to 2\n');
    await eventually(async () => (await running('web')).length === 2, 'scaled to 2');
    await ok('service', 'update', '-d', '--image', 'registry.local/web:2', '--env-add', 'A=1', '--update-parallelism', '0', 'web');
    await eventually(async () => {
      const r = await running('web');
      return r.length === 2 && r.every((t) => t.spec?.container?.image === 'registry.local/web:2');
    }, 'updated to web:2');
    const ps = await ok('service', 'ps', 'web');
    assert.match(ps, / \\_ web\.1\s+registry\.local\/web:1\s+h[12]\s+Shutdown/, 'history under the new task');
    await ok('service', 'rollback', '-d', 'web');
    await eventually(async () => {
      const r = await running('web');
      return r.length === 2 && r.every((t) => t.spec?.container?.image === 'registry.local/web:1');
    }, 'rolled back to web:1');
  });

  it('drains a node', async () => {
    await ok('node', 'update', '--availability', 'drain', 'h1');
    await eventually(async () => {
      const r = await running('web');
      return r.length === 2 && r.every((t) => t.nodeId !== '') && (await ok('task', 'ls', '--node', 'h1', '--filter', 'desired-state=running', '-q')) === '';
    }, 'no running task left on h1');
    await ok('node', 'update', '--availability', 'active', 'h1');
  });

  it('reports failures in one line with a non-zero status', async () => {
    const missing = await convoy('service', 'ps', 'nope');
    assert.equal(missing.code, 1);
    assert.equal(missing.stderr, 'convoy: service "nope" not found\n');
    const dup = await convoy('service', 'create', '--name', 'web', 'registry.local/web:1');
    assert.equal(dup.code, 1);
    assert.match(dup.stderr, /^convoy: spec\.name: .*"web".*\n$/);
    const neg = await convoy('service', 'create', '--name', 'neg', '--replicas', '-1', 'registry.local/web:1');
    assert.equal(neg.code, 1);
    assert.match(neg.stderr, /^convoy: spec\.replicas: [^\n]*\n$/);
    const flag = await convoy('service', 'create', '--publish', '80:http', 'img');
    assert.equal(flag.code, 1);
    assert.equal(flag.stderr, 'convoy: --publish: "80:http" is not a port mapping (e.g. 8080:80, 8080:80/udp, mode=host,target=80,published=8080)\n');
    const down = await convoy('--host', `127.0.0.1:${await freePort()}`, 'service', 'ls');
    assert.equal(down.code, 1);
    assert.match(down.stderr, /^convoy: cannot reach a manager at 127\.0\.0\.1:\d+ \(connection refused\)[^\n]*\n$/);
  });

  it('removes the service', async () => {
    assert.equal(await ok('service', 'rm', 'web'), 'web\n');
    assert.equal(await ok('service', 'ls', '-q'), '');
  });

  it('stops the daemons cleanly on SIGTERM', async () => {
    for (const d of daemons) d.child.kill('SIGTERM');
    const codes = await Promise.all(daemons.map((d) => d.exited));
    assert.deepEqual(codes, daemons.map(() => 0));
  });
});
