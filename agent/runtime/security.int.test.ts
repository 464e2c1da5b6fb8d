// What a hostile container tries, on the real runtime (namespaces, cgroups,
// the helper's capabilities and seccomp allowlist), with a real registry: a
// static probe (testing/probe.c, built next to the helper) makes each syscall
// and prints its errno; busybox applets where they exist. Also --cap-add,
// --cap-drop, read-only binds with submounts, --read-only and the default
// pids limit.
import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { startRegistry, type TestRegistry } from '../../lab/registry';
import { pushBusyboxImage, type TestImage } from '../../lab/images';
import type { ContainerSpec } from '../../proto/mod';
import { ContainerExecutor } from './executor';
import { assembleImage, buildLayer, pushImage } from './image/push';
import { DEFAULT_PIDS_LIMIT } from './runtime';
import { makeTask, stdoutLines } from './testing/fixtures';

const PREFIX = 'convoy-test-sec-';
const STATE_DIR = '/tmp/convoy-test-security';
/** Docker's default capability set as /proc/<pid>/status prints it. */
const DOCKER_DEFAULT_CAPS = '00000000a80425fb';

let seq = 0;
const newId = () => `${PREFIX}${++seq}-${randomBytes(3).toString('hex')}`;

async function clearLeftovers(): Promise<void> {
  await new ContainerExecutor({ stateDir: STATE_DIR }).runtime.cleanupAll(PREFIX);
  fs.rmSync(STATE_DIR, { recursive: true, force: true });
}

/** "name errno" lines of the probe → name → "EPERM" | "ok" | ... */
function probeResults(lines: string[]): Map<string, string> {
  return new Map(lines.filter((l) => /^[a-z_0-9:-]+ (ok|E[A-Z0-9]+|unknown-probe)$/.test(l)).map((l) => l.split(' ') as [string, string]));
}

function statusCaps(lines: string[]): Record<string, string> {
  return Object.fromEntries(lines.filter((l) => /^Cap(Inh|Prm|Eff|Bnd|Amb):\t/.test(l)).map((l) => l.split(':\t') as [string, string]));
}

describe('runtime security (integration)', function () {
  this.timeout(60_000);
  let reg: TestRegistry;
  let image: TestImage;
  let ex: ContainerExecutor;
  const used: string[] = [];
  const cleanups: (() => void)[] = [];

  before(async () => {
    await clearLeftovers();
    reg = await startRegistry();
    const base = await pushBusyboxImage(reg.host);
    // the busybox image plus /bin/probe (static, so it needs nothing from the image)
    const probe = path.join(path.dirname(new ContainerExecutor({ stateDir: STATE_DIR }).runtime.helper), 'probe');
    assert.ok(fs.existsSync(probe), `${probe} missing: run \`npm run build:native\``);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'convoy-test-probe-'));
    try {
      fs.mkdirSync(path.join(dir, 'bin'));
      fs.copyFileSync(probe, path.join(dir, 'bin', 'probe'));
      fs.chmodSync(path.join(dir, 'bin', 'probe'), 0o755);
      const layer = await buildLayer(dir, { uid: 0, gid: 0, mtime: 0 });
      const ref = `${reg.host}/convoy-test/probe:1`;
      const built = assembleImage([...base.layers, layer], { cmd: ['sh'] });
      const res = await pushImage(built, ref, { insecureRegistries: [reg.host] });
      image = { ref, digest: res.digest, layers: [...base.layers, layer] };
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
    ex = new ContainerExecutor({ stateDir: STATE_DIR, insecureRegistries: [reg.host] });
  });

  after(async () => {
    for (const id of used) await ex?.remove(id).catch(() => undefined);
    for (const c of cleanups.reverse()) {
      try {
        c();
      } catch {
        // best effort
      }
    }
    await ex?.close();
    await reg?.stop();
    await clearLeftovers();
  });

  async function run(container: Partial<ContainerSpec>, limits?: Parameters<typeof makeTask>[2]) {
    const id = newId();
    used.push(id);
    const task = makeTask(id, { image: image.ref, ...container }, limits);
    await ex.prepare(task);
    await ex.start(task);
    const exit = await ex.wait(id);
    return { id, exit, out: stdoutLines(ex.logPath(id)) };
  }

  async function startTask(container: Partial<ContainerSpec>) {
    const id = newId();
    used.push(id);
    const task = makeTask(id, { image: image.ref, ...container });
    await ex.prepare(task);
    await ex.start(task);
    return id;
  }

  const sh = (script: string) => ({ command: ['sh', '-c', script] });

  describe('a default container', () => {
    it("fails every hostile syscall with Docker's errno, and keeps the ordinary ones", async () => {
      const other = await startTask({ command: ['sleep', '1000'] });
      const otherPid = (await ex.runtime.readState(other))?.pid;
      assert.ok(otherPid);
      const expected: Record<string, string> = {
        mount: 'EPERM',
        umount: 'EPERM',
        finit_module: 'EPERM',
        init_module: 'EPERM',
        delete_module: 'EPERM',
        clock_settime: 'EPERM',
        settimeofday: 'EPERM',
        'adjtimex-set': 'EPERM', // allowed syscall; the kernel wants CAP_SYS_TIME to change anything
        keyctl: 'EPERM',
        add_key: 'EPERM',
        request_key: 'EPERM',
        bpf: 'EPERM',
        perf_event_open: 'EPERM',
        userfaultfd: 'EPERM',
        'unshare-user': 'EPERM',
        'unshare-mnt': 'EPERM',
        'clone-newns': 'EPERM',
        'clone-newuser': 'EPERM',
        clone3: 'ENOSYS', // so that libc falls back to clone
        setns: 'EPERM',
        open_by_handle_at: 'EPERM',
        kexec_load: 'EPERM',
        reboot: 'EPERM',
        io_uring_setup: 'EPERM',
        'personality-norandom': 'EPERM',
        'socket-alg': 'EPERM',
        // processes outside the container: the test itself and another container's pid 1, by their host pids
        [`ptrace:${process.pid}`]: 'ESRCH',
        [`ptrace:${otherPid}`]: 'ESRCH',
        // what ordinary programs need
        'adjtimex-read': 'ok',
        clone: 'ok',
        'personality-query': 'ok',
        'socket-inet': 'ok',
        chroot: 'ok',
        getpid: 'ok',
      };
      const r = await run(sh(`probe ${Object.keys(expected).join(' ')}; grep -E '^(Cap|Seccomp|NoNewPrivs)' /proc/self/status`));
      assert.equal(r.exit.exitCode, 0, r.exit.reason);
      assert.deepEqual(Object.fromEntries(probeResults(r.out)), expected);
      const caps = statusCaps(r.out);
      assert.deepEqual(caps, { CapInh: '0000000000000000', CapPrm: DOCKER_DEFAULT_CAPS, CapEff: DOCKER_DEFAULT_CAPS, CapBnd: DOCKER_DEFAULT_CAPS, CapAmb: '0000000000000000' });
      assert.ok(r.out.includes('Seccomp:\t2'));
      await ex.stop(other, 0);
    });

    it('refuses mount, module loading, the clock and new namespaces to busybox too', async () => {
      const r = await run(
        sh(
          'mount -t tmpfs x /mnt 2>&1; echo mount=$?; insmod /bin/busybox 2>&1; echo insmod=$?; date -s 2001-01-01 >/dev/null 2>&1; echo year=$(date +%Y); ' +
            'unshare -U true 2>&1; echo unshare-U=$?; unshare -m true 2>&1; echo unshare-m=$?',
        ),
      );
      const kv = new Map(r.out.filter((l) => /^[a-zA-Z-]+=\d+$/.test(l)).map((l) => l.split('=') as [string, string]));
      for (const k of ['mount', 'insmod', 'unshare-U', 'unshare-m']) assert.notEqual(kv.get(k), '0', `${k}: ${r.out.join(' | ')}`);
      assert.notEqual(kv.get('year'), '2001');
      assert.ok(r.out.some((l) => /^unshare: unshare\(0x10000000\): Operation not permitted$/.test(l)), r.out.join(' | '));
      assert.ok(r.out.some((l) => /^unshare: unshare\(0x20000\): Operation not permitted$/.test(l)), r.out.join(' | '));
    });

    it('applies the same capabilities and filter to an exec (from the compiled-filter cache)', async () => {
      const id = await startTask({ command: ['sleep', '1000'] });
      const r = await ex.runtime.execCollect(id, ['sh', '-c', "probe mount keyctl unshare-user clone3 getpid; grep -E '^Cap(Inh|Bnd)' /proc/self/status"]);
      assert.equal(r.code, 0, r.stderr);
      const lines = r.stdout.trim().split('\n');
      assert.deepEqual(Object.fromEntries(probeResults(lines)), { mount: 'EPERM', keyctl: 'EPERM', 'unshare-user': 'EPERM', clone3: 'ENOSYS', getpid: 'ok' });
      assert.deepEqual(statusCaps(lines), { CapInh: '0000000000000000', CapBnd: DOCKER_DEFAULT_CAPS });
      // one compiled filter per capability set, private to root
      const cache = path.join(STATE_DIR, 'seccomp');
      assert.equal(fs.statSync(cache).mode & 0o777, 0o700);
      assert.ok(fs.readdirSync(cache).some((f) => f.startsWith('00000000a80425fb-') && f.endsWith('.bpf')), fs.readdirSync(cache).join(' '));
      await ex.stop(id, 0);
    });
  });

  describe('--cap-add and --cap-drop', () => {
    it('CAP_SYS_ADMIN allows mount and new mount namespaces, inside the container only; keyrings stay refused', async () => {
      const r = await run({ ...sh("mount -t tmpfs x /tmp 2>&1 && echo mounted; grep ' /tmp ' /proc/mounts | cut -d' ' -f3; probe unshare-mnt clone-newns keyctl; grep CapBnd /proc/self/status"), capAdd: ['sys_admin'] });
      assert.equal(r.exit.exitCode, 0, r.exit.reason);
      assert.deepEqual(r.out.slice(0, 2), ['mounted', 'tmpfs']);
      assert.deepEqual(Object.fromEntries(probeResults(r.out)), { 'unshare-mnt': 'ok', 'clone-newns': 'ok', keyctl: 'EPERM' });
      assert.equal(BigInt(`0x${statusCaps(r.out).CapBnd}`), 0xa80425fbn | (1n << 21n));
      assert.ok(!fs.readFileSync('/proc/self/mountinfo', 'utf8').includes(` ${path.join(ex.runtime.containerDir(r.id), 'merged')}/tmp `));
    });

    it("NET_ADMIN changes the container's own interfaces; without it that fails", async () => {
      const script = 'ip link set lo mtu 1280 2>&1; echo rc=$?; cat /sys/class/net/lo/mtu';
      const without = await run(sh(script));
      assert.match(without.out[0], /Operation not permitted/);
      assert.notEqual(without.out[1], 'rc=0');
      assert.equal(without.out[2], '65536');
      const withCap = await run({ ...sh(script), capAdd: ['CAP_NET_ADMIN'] });
      assert.deepEqual(withCap.out, ['rc=0', '1280']);
    });

    it('dropping CHOWN makes chown fail; drop ALL leaves none', async () => {
      const r = await run({ ...sh('touch /tmp/f; chown 1:1 /tmp/f 2>&1; echo rc=$?; grep CapEff /proc/self/status'), capDrop: ['CHOWN'] });
      assert.equal(r.out[0], "chown: /tmp/f: Operation not permitted");
      assert.equal(r.out[1], 'rc=1');
      assert.equal(BigInt(`0x${statusCaps(r.out).CapEff}`), 0xa80425fbn & ~1n);
      const none = await run({ ...sh("grep -E '^Cap(Prm|Bnd)' /proc/self/status; probe chroot"), capDrop: ['ALL'] });
      assert.deepEqual(statusCaps(none.out), { CapPrm: '0000000000000000', CapBnd: '0000000000000000' });
      assert.equal(probeResults(none.out).get('chroot'), 'EPERM'); // without SYS_CHROOT, as Docker's profile
    });
  });

  describe('mounts and the root filesystem', () => {
    it('keeps a read-only bind read-only all the way down: a submount under it is not writable', async () => {
      const host = fs.mkdtempSync('/tmp/convoy-test-robind-');
      fs.mkdirSync(path.join(host, 'sub'));
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'convoy-test-sub', path.join(host, 'sub')]);
      cleanups.push(() => {
        execFileSync('umount', ['-l', path.join(host, 'sub')]);
        fs.rmSync(host, { recursive: true, force: true });
      });
      const bind = (target: string, readOnly: boolean) => ({ type: 'BIND' as const, source: host, target, readOnly, tmpfsSizeBytes: 0 });
      const r = await run({
        ...sh('for f in /ro/top /ro/sub/x /rw/sub/y; do touch $f 2>&1 && echo "$f written"; done; grep -E " /(ro|rw)(/sub)? " /proc/mounts | cut -d" " -f2,4 | cut -d, -f1'),
        mounts: [bind('/ro', true), bind('/rw', false)],
      });
      assert.equal(r.exit.exitCode, 0, r.exit.reason);
      assert.deepEqual(r.out.slice(0, 3), ["touch: /ro/top: Read-only file system", "touch: /ro/sub/x: Read-only file system", '/rw/sub/y written']);
      assert.deepEqual(r.out.slice(3).sort(), ['/ro ro', '/ro/sub ro', '/rw rw', '/rw/sub rw']);
      assert.ok(!fs.existsSync(path.join(host, 'top')) && !fs.existsSync(path.join(host, 'sub', 'x')));
      assert.ok(fs.existsSync(path.join(host, 'sub', 'y')));
    });

    it('--read-only: the root is not writable, /dev/shm, mounts and volumes are', async () => {
      const r = await run({
        ...sh('for f in /x /etc/x /tmp/x /dev/shm/x /scratch/x /data/x; do touch $f 2>/dev/null && echo "$f rw" || echo "$f ro"; done'),
        readOnly: true,
        mounts: [
          { type: 'TMPFS', source: '', target: '/scratch', readOnly: false, tmpfsSizeBytes: 1 << 20 },
          { type: 'VOLUME', source: `${PREFIX}vol`, target: '/data', readOnly: false, tmpfsSizeBytes: 0 },
        ],
      });
      cleanups.push(() => fs.rmSync(path.join(STATE_DIR, 'volumes', `${PREFIX}vol`), { recursive: true, force: true }));
      assert.deepEqual(r.out, ['/x ro', '/etc/x ro', '/tmp/x ro', '/dev/shm/x rw', '/scratch/x rw', '/data/x rw']);
      const upper = path.join(ex.runtime.containerDir(r.id), 'upper');
      for (const f of ['x', 'etc/x', 'tmp/x']) assert.ok(!fs.existsSync(path.join(upper, f)), f);
      const rw = await run(sh('touch /x && echo written'));
      assert.deepEqual(rw.out, ['written']);
    });

    it('puts a pids limit on every container: the default, or the spec\'s', async () => {
      const pidsMax = (id: string) => {
        const dir = ex.runtime.cgroups.paths(id).find((p) => fs.existsSync(path.join(p, 'pids.max')));
        assert.ok(dir, 'a pids cgroup');
        return fs.readFileSync(path.join(dir, 'pids.max'), 'utf8').trim();
      };
      const a = await startTask({ command: ['sleep', '1000'] });
      assert.equal(pidsMax(a), String(DEFAULT_PIDS_LIMIT));
      await ex.stop(a, 0);
      const id = newId();
      used.push(id);
      await ex.prepare(makeTask(id, { image: image.ref, command: ['sleep', '1000'] }, { pids: 100 }));
      assert.equal(pidsMax(id), '100');
    });
  });
});
