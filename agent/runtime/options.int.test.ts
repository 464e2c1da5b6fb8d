// The container options of issue 13 seen from inside real containers (the
// executor's path: task spec → taskToConfig → runtime → native helper):
// sysctls, ulimits, --init reaping, --read-only, tmpfs sizes, --user,
// --workdir, hostname templates, extra hosts and resolv.conf, a terminal,
// stdin kept open, a device node, --privileged. Real namespaces and a
// registry: run under the kernel lock.
import * as assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { ContainerSpec, Resources } from '../../proto/mod';
import { startRegistry, type TestRegistry } from '../../lab/registry';
import { pushBusyboxImage, type TestImage } from '../../lab/images';
import { assembleImage, buildLayer, pushImage } from './image/push';
import { ContainerExecutor } from './executor';
import { makeTask, readLog, stdoutLines } from './testing/fixtures';

const PREFIX = 'convoy-test-opts-';
const STATE_DIR = '/tmp/convoy-test-opts-state';

describe('container options from inside the container (integration)', function () {
  this.timeout(60_000);
  let reg: TestRegistry;
  let base: TestImage;
  let ex: ContainerExecutor;
  const ids: string[] = [];

  before(async () => {
    fs.rmSync(STATE_DIR, { recursive: true, force: true });
    reg = await startRegistry();
    base = await pushBusyboxImage(reg.host);
    ex = new ContainerExecutor({ stateDir: STATE_DIR, insecureRegistries: [reg.host] });
  });
  after(async () => {
    for (const id of ids) await ex?.remove(id).catch(() => undefined);
    await ex?.runtime.cleanupAll(PREFIX).catch(() => undefined);
    await ex?.close();
    await reg?.stop();
    fs.rmSync(STATE_DIR, { recursive: true, force: true });
  });

  /** Runs `script` with sh -c in a container with `c`; its exit code and stdout lines. */
  const run = async (script: string, c: Partial<ContainerSpec> = {}, limits?: Partial<Resources>) => {
    const id = `${PREFIX}${randomBytes(3).toString('hex')}`;
    ids.push(id);
    const task = makeTask(id, { image: base.ref, command: ['sh', '-c', script], ...c }, limits);
    await ex.prepare(task);
    await ex.start(task);
    const code = (await ex.wait(id)).exitCode;
    return { code, out: stdoutLines(ex.logPath(id)), all: readLog(ex.logPath(id)).map((r) => r.log) };
  };

  it('--sysctl: net.* in the container network namespace, kernel.shm* in its IPC namespace; the host keeps its values', async () => {
    const hostSomaxconn = fs.readFileSync('/proc/sys/net/core/somaxconn', 'utf8').trim();
    const r = await run('cat /proc/sys/net/core/somaxconn /proc/sys/kernel/shmmni', { sysctls: { 'net.core.somaxconn': '1234', 'kernel.shmmni': '2345' } });
    assert.equal(r.code, 0, r.all.join('\n'));
    assert.deepEqual(r.out, ['1234', '2345']);
    assert.equal(fs.readFileSync('/proc/sys/net/core/somaxconn', 'utf8').trim(), hostSomaxconn);
  });

  it('--ulimit: soft and hard limits set before exec', async () => {
    const r = await run('ulimit -n; ulimit -Hn; ulimit -c', { ulimits: [{ name: 'nofile', soft: 1234, hard: 2345 }, { name: 'core', soft: 0, hard: 0 }] });
    assert.equal(r.code, 0, r.all.join('\n'));
    assert.deepEqual(r.out, ['1234', '2345', '0']);
  });

  it('--init: an init is PID 1, reaps orphaned zombies and exits with the process status', async () => {
    // The inner shell leaves a background sleep behind and exits: the sleep is re-parented to PID 1, and once it
    // ends it stays a zombie unless PID 1 reaps it.
    const script = 'echo pid=$$; echo init=$(cat /proc/1/comm); sh -c "sleep 0.2 &"; sleep 1; echo zombies=$(cat /proc/[0-9]*/stat | cut -d" " -f3 | grep -c Z); exit 3';
    const r = await run(script, { init: true });
    assert.equal(r.code, 3, r.all.join('\n'));
    assert.notEqual(r.out[0], 'pid=1');
    assert.deepEqual(r.out.slice(1), ['init=convoy-init', 'zombies=0']);
    const plain = await run('echo pid=$$', {});
    assert.deepEqual(plain.out, ['pid=1']);
  });

  it('--init forwards the stop signal to the process', async () => {
    const id = `${PREFIX}${randomBytes(3).toString('hex')}`;
    ids.push(id);
    const task = makeTask(id, { image: base.ref, command: ['sh', '-c', 'trap "echo got-term; exit 7" TERM; echo ready; while true; do sleep 0.1; done'], init: true });
    await ex.prepare(task);
    await ex.start(task);
    const deadline = Date.now() + 10_000;
    while (!stdoutLines(ex.logPath(id)).includes('ready') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    await ex.stop(id, 10_000);
    assert.equal((await ex.wait(id)).exitCode, 7);
    assert.ok(stdoutLines(ex.logPath(id)).includes('got-term'));
  });

  it('--read-only: a write to the root fails, a tmpfs stays writable', async () => {
    const r = await run('touch /x 2>&1; echo rc=$?; touch /scratch/x && echo tmpfs-ok', { readOnly: true, mounts: [{ type: 'TMPFS', source: '', target: '/scratch', readOnly: false, tmpfsSizeBytes: 0 }] });
    assert.match(r.out.join('\n'), /Read-only file system/);
    assert.ok(r.out.includes('tmpfs-ok'));
    assert.ok(!r.out.includes('rc=0'));
  });

  it('--tmpfs: mounted with its size; without one, the memory limit, else 64 MiB', async () => {
    const mounts = [
      { type: 'TMPFS' as const, source: '', target: '/sized', readOnly: false, tmpfsSizeBytes: 8 << 20 },
      { type: 'TMPFS' as const, source: '', target: '/unsized', readOnly: false, tmpfsSizeBytes: 0 },
    ];
    const r = await run('grep -E " /(sized|unsized) " /proc/mounts', { mounts });
    assert.match(r.out.join('\n'), / \/sized tmpfs .*size=8192k/);
    assert.match(r.out.join('\n'), / \/unsized tmpfs .*size=65536k/);
    const limited = await run('grep " /unsized " /proc/mounts', { mounts: [mounts[1]] }, { memoryBytes: 32 << 20 });
    assert.match(limited.out.join('\n'), /size=32768k/);
  });

  it('--user uid:gid and a name from the image /etc/passwd; --workdir', async () => {
    assert.deepEqual((await run('id -u; id -g; pwd', { user: '1234:2345', dir: '/work/here' })).out, ['1234', '2345', '/work/here']);
    assert.deepEqual((await run('id -u', { user: 'nobody' })).out, ['65534']);
  });

  it('--user: an /etc/passwd that is not a regular file (a symlink to /dev/zero) fails the start instead of hanging it', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'convoy-test-opts-layer-'));
    let ref: string;
    try {
      fs.mkdirSync(path.join(dir, 'etc'));
      fs.symlinkSync('/dev/zero', path.join(dir, 'etc', 'passwd'));
      const layer = await buildLayer(dir, { uid: 0, gid: 0, mtime: 0 });
      ref = `${reg.host}/convoy-test/evil-passwd:1`;
      await pushImage(assembleImage([...base.layers, layer], { cmd: ['sh'] }), ref, { insecureRegistries: [reg.host] });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
    const id = `${PREFIX}${randomBytes(3).toString('hex')}`;
    ids.push(id);
    const task = makeTask(id, { image: ref, command: ['id'], user: 'nobody' });
    await ex.prepare(task);
    await assert.rejects(ex.start(task), /\/etc\/passwd in the image is not a regular file/);
  });

  it('--hostname template: {{.Service.Name}}-{{.Task.Slot}} rendered per task', async () => {
    const r = await run('hostname; cat /etc/hostname', { hostname: '{{.Service.Name}}-{{.Task.Slot}}' });
    assert.deepEqual(r.out, ['web-1', 'web-1']);
  });

  it('--host, --dns, --dns-search, --dns-option: /etc/hosts and /etc/resolv.conf', async () => {
    const r = await run('cat /etc/hosts; echo ---; cat /etc/resolv.conf', {
      hosts: ['10.1.2.3 db db.local', 'fd00::7 v6host'],
      dnsConfig: { nameservers: ['10.9.9.9'], search: ['example.com', 'corp.example'], options: ['ndots:2', 'timeout:1'] },
    });
    const [hosts, resolv] = r.out.join('\n').split('---');
    assert.match(hosts, /^10\.1\.2\.3\tdb\tdb\.local$/m);
    assert.match(hosts, /^fd00::7\tv6host$/m);
    assert.match(hosts, /^127\.0\.0\.1\tlocalhost$/m);
    assert.match(resolv, /^nameserver 10\.9\.9\.9$/m);
    assert.match(resolv, /^search example\.com corp\.example$/m);
    assert.match(resolv, /^options ndots:2 timeout:1$/m);
  });

  it('--tty: the process has a terminal (test -t 0 and 1); without it, stdin is /dev/null', async () => {
    const r = await run('test -t 0 && test -t 1 && echo tty-yes; tty', { tty: true });
    assert.equal(r.code, 0, r.all.join('\n'));
    assert.deepEqual(r.out, ['tty-yes', '/dev/pts/0']);
    assert.deepEqual((await run('test -t 0 && echo tty-yes || echo tty-no; test -c /proc/self/fd/0 && echo char-dev')).out, ['tty-no', 'char-dev']);
  });

  it('stdin_open: stdin is a pipe (the monitor holds its other end) instead of /dev/null', async () => {
    assert.deepEqual((await run('test -p /proc/self/fd/0 && echo pipe', { openStdin: true })).out, ['pipe']);
    assert.deepEqual((await run('test -p /proc/self/fd/0 && echo pipe || echo not-a-pipe')).out, ['not-a-pipe']);
  });

  it('--device: a host device node under another name; a path that is not a device fails the start', async () => {
    const r = await run('test -c /dev/convoyzero && echo char; head -c 4 /dev/convoyzero | od -An -tx1', { devices: [{ pathOnHost: '/dev/zero', pathInContainer: '/dev/convoyzero', permissions: 'rwm' }] });
    assert.equal(r.code, 0, r.all.join('\n'));
    assert.equal(r.out[0], 'char');
    assert.equal(r.out[1].trim(), '00 00 00 00');
    const id = `${PREFIX}${randomBytes(3).toString('hex')}`;
    ids.push(id);
    const task = makeTask(id, { image: base.ref, command: ['true'], devices: [{ pathOnHost: '/dev/shm', pathInContainer: '/dev/x', permissions: '' }] });
    await ex.prepare(task);
    await assert.rejects(ex.start(task), /device \/dev\/shm is not a character or block device/);
  });

  it('--privileged: every capability, no seccomp filter, /proc/sys writable', async () => {
    const r = await run('grep -E "^(CapEff|Seccomp):" /proc/self/status; echo 1 > /proc/sys/net/ipv4/ip_forward && echo sys-writable', { privileged: true });
    // Every capability the agent has itself (its bounding set), as Docker's privileged gets the daemon's.
    const capEff = /CapEff:\s*([0-9a-f]+)/.exec(r.out.join('\n'))![1];
    assert.equal(capEff, /CapBnd:\s*([0-9a-f]+)/.exec(fs.readFileSync('/proc/self/status', 'utf8'))![1]);
    assert.match(r.out.join('\n'), /Seccomp:\s*0/);
    assert.ok(r.out.includes('sys-writable'), r.all.join('\n'));
    const plain = await run('echo 1 > /proc/sys/net/ipv4/ip_forward 2>/dev/null && echo sys-writable || echo sys-ro');
    assert.deepEqual(plain.out, ['sys-ro']);
  });
});
