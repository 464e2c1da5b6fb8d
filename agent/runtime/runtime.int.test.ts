// Integration tests of the runtime with real namespaces, cgroups, overlayfs
// and a real registry (docker-registry on a free loopback port).
import * as assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ExecutorError, type HealthState, type NetworkAttacher } from '../executor';
import { startRegistry, type TestRegistry } from '../../lab/registry';
import { pushBusyboxImage, pushDerivedImage, type TestImage } from '../../lab/images';
import { ContainerExecutor } from './executor';
import { ImageError } from './image/registry';
import { ImageStore } from './image/store';
import { Runtime, alive, type ContainerConfig } from './runtime';
import { makeTask, readLog, stdoutLines } from './testing/fixtures';
import { eventually } from '../../common/eventually';

const PREFIX = 'convoy-test-rt-';
const STATE_DIR = '/tmp/convoy-test-runtime';
const NETNS = 'convoy-test-rt-ns';
const MiB = 1024 * 1024;
/** Ids whose first 12 characters are digits (as about one random hex task id in 280). */
const NUMERIC_PREFIX = `123456789012${PREFIX}`;

let seq = 0;
const newId = () => `${PREFIX}${++seq}-${randomBytes(3).toString('hex')}`;

async function clearLeftovers(): Promise<void> {
  const ex = new ContainerExecutor({ stateDir: STATE_DIR });
  await ex.runtime.cleanupAll(PREFIX);
  await ex.runtime.cleanupAll(NUMERIC_PREFIX);
  fs.rmSync(STATE_DIR, { recursive: true, force: true });
  try {
    execFileSync('ip', ['netns', 'del', NETNS], { stdio: 'ignore' });
  } catch {
    // not there
  }
}

describe('runtime (integration)', function () {
  this.timeout(60_000);
  let reg: TestRegistry;
  let base: TestImage;
  let ex: ContainerExecutor;
  const used: string[] = [];

  before(async () => {
    await clearLeftovers();
    reg = await startRegistry();
    base = await pushBusyboxImage(reg.host);
    ex = new ContainerExecutor({ stateDir: STATE_DIR, insecureRegistries: [reg.host], logMaxBytes: 4096, logMaxFiles: 3 });
  });

  after(async () => {
    for (const id of used) await ex?.remove(id).catch(() => undefined);
    await ex?.close();
    await reg?.stop();
    await clearLeftovers();
  });

  /** prepare + start + wait; returns the exit and the stdout lines. */
  async function run(container: Parameters<typeof makeTask>[1], limits?: Parameters<typeof makeTask>[2]) {
    const id = newId();
    used.push(id);
    const task = makeTask(id, { image: base.ref, ...container }, limits);
    await ex.prepare(task);
    await ex.start(task);
    const exit = await ex.wait(id);
    return { id, exit, out: stdoutLines(ex.logPath(id)), log: readLog(ex.logPath(id)) };
  }

  async function startTask(container: Parameters<typeof makeTask>[1], limits?: Parameters<typeof makeTask>[2]) {
    const id = newId();
    used.push(id);
    const task = makeTask(id, { image: base.ref, ...container }, limits);
    await ex.prepare(task);
    await ex.start(task);
    return { id, task };
  }

  describe('images', () => {
    it('pulls a second image on the same base downloading only its new layer', async () => {
      const derived = await pushDerivedImage(reg.host, base, { files: { 'etc/derived': 'yes\n' } });
      const store = new ImageStore({ stateDir: path.join(STATE_DIR, 'pull-test'), registry: { insecureRegistries: [reg.host] }, helperPath: ex.runtime.helper });
      await store.pull(base.ref);
      const before = store.counters.layerBytesPulled;
      assert.equal(before, base.layers[0].size);
      await store.pull(derived.ref);
      assert.equal(store.counters.layerBytesPulled - before, derived.layers[1].size);
      assert.equal(store.counters.layersReused, 1);
      // both images use the same directory for the base layer
      const a = await store.get(base.ref);
      const b = await store.get(derived.ref);
      assert.equal(store.layerDir(a!.layers[0]), store.layerDir(b!.layers[0]));
      assert.ok(fs.existsSync(path.join(store.layerDir(b!.layers[1]), 'etc', 'derived')));
      // gc keeps what images reference, drops the rest
      await store.removeImage(derived.ref);
      const { removedLayers } = await store.gc();
      assert.deepEqual(removedLayers, [b!.layers[1]]);
    });

    it('de-duplicates concurrent pulls of the same layer', async () => {
      const store = new ImageStore({ stateDir: path.join(STATE_DIR, 'dedup-test'), registry: { insecureRegistries: [reg.host] }, helperPath: ex.runtime.helper });
      await Promise.all([store.pull(base.ref), store.pull(base.ref), store.pull(`${base.ref.split(':1')[0]}@${base.digest}`)]);
      assert.equal(store.counters.layersPulled, 1);
      assert.equal(store.counters.layerBytesPulled, base.layers[0].size);
    });

    it('refuses a layer whose content does not match its digest and keeps nothing', async () => {
      const bad = await pushDerivedImage(reg.host, base, { files: { 'etc/bad': randomBytes(16).toString('hex') }, repo: 'convoy-test/bad' });
      const layer = bad.layers[1];
      fs.writeFileSync(reg.blobPath(layer.digest), randomBytes(layer.size));
      const stateDir = path.join(STATE_DIR, 'digest-test');
      const store = new ImageStore({ stateDir, registry: { insecureRegistries: [reg.host] }, helperPath: ex.runtime.helper });
      await assert.rejects(store.pull(bad.ref), (e: unknown) => {
        assert.ok(e instanceof ImageError);
        assert.equal(e.kind, 'digest-mismatch');
        assert.match(e.message, new RegExp(`layer ${layer.digest}.*refused`));
        return true;
      });
      assert.ok(!fs.existsSync(path.join(store.layersRoot, layer.diffId.slice(7))));
      assert.deepEqual(fs.readdirSync(path.join(stateDir, 'tmp')), []);
      assert.equal(await store.get(bad.ref), undefined);
    });

    it('fails prepare with a clear, non-retryable error for an unknown image', async () => {
      const task = makeTask(newId(), { image: `${reg.host}/convoy-test/nope:1` });
      await assert.rejects(ex.prepare(task), (e: unknown) => {
        assert.ok(e instanceof ExecutorError);
        assert.equal(e.retryable, false);
        assert.match(e.message, /convoy-test\/nope:1 not found/);
        return true;
      });
    });

    it('fails prepare with a retryable error when the registry is unreachable', async () => {
      const task = makeTask(newId(), { image: '127.0.0.1:9/convoy-test/busybox:1' });
      const ex2 = new ContainerExecutor({ stateDir: STATE_DIR, insecureRegistries: ['127.0.0.1:9'] });
      await assert.rejects(ex2.prepare(task), (e: unknown) => {
        assert.ok(e instanceof ExecutorError);
        assert.equal(e.retryable, true);
        assert.match(e.message, /registry 127\.0\.0\.1:9 unreachable/);
        return true;
      });
    });
  });

  describe('isolation', () => {
    it('sees only its own processes and its own hostname', async () => {
      const r = await run({ command: ['sh', '-c', 'ps -o pid,comm; hostname; cat /etc/hostname'], hostname: 'isolated-1' });
      assert.equal(r.exit.exitCode, 0, r.exit.reason);
      const procs = r.out.slice(1, -2).map((l) => l.trim().split(/\s+/));
      assert.deepEqual(procs.map((p) => p[0]), ['1', procs[1][0]]); // sh (pid 1) and ps
      assert.equal(procs.length, 2);
      assert.deepEqual(r.out.slice(-2), ['isolated-1', 'isolated-1']);
    });

    it('resolves its own hostname from /etc/hosts, also when the task id starts with 12 digits', async () => {
      // glibc takes an all-digit name for a (bad) numeric address and never reads /etc/hosts for it:
      // `hostname -i` of a container named after such an id printed nothing (e2e "keeps services on
      // different networks apart" got a page without an address about once in 280 tasks).
      for (const id of [`${NUMERIC_PREFIX}${++seq}`, newId()]) {
        used.push(id);
        const task = makeTask(id, { image: base.ref, command: ['sh', '-c', 'hostname; hostname -i'] });
        await ex.prepare(task);
        await ex.start(task);
        assert.equal((await ex.wait(id)).exitCode, 0, readLog(ex.logPath(id)).map((l) => l.log).join(''));
        const [name, addr] = stdoutLines(ex.logPath(id));
        assert.ok(id.startsWith(name), `hostname ${name} is a prefix of the task id ${id}`);
        assert.equal(addr, '127.0.1.1');
      }
    });

    it("cannot see the host's files; writes go to its upper layer, not to the image", async () => {
      const marker = `/tmp/convoy-test-marker-${randomBytes(4).toString('hex')}`;
      fs.writeFileSync(marker, 'host');
      try {
        const r = await run({ command: ['sh', '-c', `test -e ${marker} && echo visible || echo hidden; echo changed > /etc/passwd; echo new > /created; ls /`] });
        assert.equal(r.out[0], 'hidden');
        assert.deepEqual(r.out.slice(1).sort(), ['bin', 'created', 'dev', 'etc', 'home', 'proc', 'root', 'sys', 'tmp', 'usr', 'var', 'www'].sort());
        const upper = path.join(ex.runtime.containerDir(r.id), 'upper');
        assert.equal(fs.readFileSync(path.join(upper, 'created'), 'utf8'), 'new\n');
        assert.equal(fs.readFileSync(path.join(upper, 'etc', 'passwd'), 'utf8'), 'changed\n');
        const img = await ex.images.get(base.ref);
        assert.match(fs.readFileSync(path.join(ex.images.layerDir(img!.layers[0]), 'etc', 'passwd'), 'utf8'), /^root:x:0:0/);
      } finally {
        fs.rmSync(marker, { force: true });
      }
    });

    it('cannot mount, load modules or change the clock', async () => {
      const r = await run({
        command: [
          'sh',
          '-c',
          'mount -t tmpfs none /mnt 2>&1; echo mount=$?; insmod /bin/busybox 2>&1; echo insmod=$?; date -s 2001-01-01 2>&1; echo year=$(date +%Y); grep -E "^(CapEff|CapBnd|Seccomp|NoNewPrivs):" /proc/self/status',
        ],
      });
      const kv = new Map(r.out.filter((l) => /^(mount|insmod|year)=/.test(l)).map((l) => l.split('=') as [string, string]));
      assert.notEqual(kv.get('mount'), '0');
      assert.notEqual(kv.get('insmod'), '0');
      assert.ok(r.out.includes("insmod: can't insert '/bin/busybox': Operation not permitted"));
      // busybox date exits 0 even when it cannot set the clock
      assert.ok(r.out.includes("date: can't set date: Operation not permitted"));
      assert.notEqual(kv.get('year'), '2001');
      const status = new Map(r.out.filter((l) => l.includes(':\t')).map((l) => l.split(':\t') as [string, string]));
      const bnd = BigInt(`0x${status.get('CapBnd')}`);
      for (const cap of [16n /* SYS_MODULE */, 21n /* SYS_ADMIN */, 25n /* SYS_TIME */]) assert.equal((bnd >> cap) & 1n, 0n, `capability ${cap}`);
      assert.equal(bnd, 0xa80425fbn); // Docker's default set exactly
      assert.equal(status.get('Seccomp'), '2');
      assert.equal(status.get('NoNewPrivs'), '1');
    });

    it('has a new network namespace with only loopback, up', async () => {
      const r = await run({ command: ['sh', '-c', "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '; cat /sys/class/net/lo/operstate /sys/class/net/lo/flags"] });
      assert.deepEqual(r.out[0], 'lo');
      assert.equal(r.out.length, 3);
      assert.equal(Number(r.out[2]) & 1, 1); // IFF_UP
    });

    it('joins the network namespace a NetworkAttacher gives and gets its resolv.conf', async () => {
      execFileSync('ip', ['netns', 'add', NETNS]);
      const calls: string[] = [];
      const attacher: NetworkAttacher = {
        attach: async (t) => {
          calls.push(`attach ${t.id}`);
          return { netnsPath: `/run/netns/${NETNS}`, resolvConf: 'nameserver 10.41.0.1\n', hosts: '127.0.0.1 localhost\n10.42.0.5 me\n' };
        },
        detach: async (id) => {
          calls.push(`detach ${id}`);
        },
      };
      const ex2 = new ContainerExecutor({ stateDir: STATE_DIR, insecureRegistries: [reg.host], network: attacher });
      const id = newId();
      const task = makeTask(id, { image: base.ref, command: ['sh', '-c', 'cat /etc/resolv.conf /etc/hosts; readlink /proc/self/ns/net'] });
      try {
        await ex2.prepare(task);
        await ex2.start(task);
        assert.equal((await ex2.wait(id)).exitCode, 0);
        const out = stdoutLines(ex2.logPath(id));
        assert.deepEqual(out.slice(0, 3), ['nameserver 10.41.0.1', '127.0.0.1 localhost', '10.42.0.5 me']);
        const nsIno = fs.statSync(`/run/netns/${NETNS}`).ino;
        assert.equal(out[3], `net:[${nsIno}]`);
      } finally {
        await ex2.remove(id);
        execFileSync('ip', ['netns', 'del', NETNS]);
      }
      assert.deepEqual(calls, [`attach ${id}`, `detach ${id}`]);
    });
  });

  describe('resources', () => {
    it('OOM-kills a memory hog and reports it', async () => {
      const r = await run({ command: ['sh', '-c', 'x=$(head -c 200000000 /dev/zero | tr "\\0" a); echo survived'] }, { memoryBytes: 32 * MiB });
      assert.equal(r.exit.oomKilled, true, r.exit.reason);
      assert.match(r.exit.reason, /OOM killed \(limit 32MiB\)/);
      assert.ok(!r.out.includes('survived'));
    });

    it('stops a fork bomb at the pids limit', async () => {
      const { id } = await startTask({ command: ['sh', '-c', 'bomb() { bomb | bomb & }; bomb; sleep 1000'] }, { pids: 32 });
      // wait until the bomb has hit the limit
      for (let i = 0; i < 200 && (await ex.runtime.cgroups.pidsLimitHits(id)) === 0; i++) await new Promise((r) => setTimeout(r, 25));
      assert.ok((await ex.runtime.cgroups.pidsLimitHits(id)) > 0, 'forks were refused');
      const stats = await ex.stats(id);
      assert.ok(stats && stats.pids <= 32, `pids ${stats?.pids}`);
      await ex.stop(id, 0);
      const exit = await ex.wait(id);
      assert.equal(exit.signal, 'SIGKILL');
    });

    it('holds a CPU burner to its quota', async () => {
      const { id } = await startTask({ command: ['sh', '-c', 'while :; do :; done'] }, { nanoCpus: 0.25e9 });
      await new Promise((r) => setTimeout(r, 300));
      const a = await ex.stats(id);
      const t0 = Date.now();
      await new Promise((r) => setTimeout(r, 2000));
      const b = await ex.stats(id);
      const used = (b!.cpuSeconds - a!.cpuSeconds) / ((Date.now() - t0) / 1000);
      await ex.stop(id, 0);
      assert.ok(used > 0.05, `burner ran (${used.toFixed(3)} CPUs)`);
      assert.ok(used < 0.4, `held to 0.25 CPUs, used ${used.toFixed(3)}`);
    });
  });

  describe('lifecycle', () => {
    it('logs stdout and stderr as JSON lines, rotated by size, and reports the exit code', async () => {
      const r = await run({ command: ['sh', '-c', 'echo out; echo err >&2; for i in $(seq 1 200); do echo line-$i; done; exit 3'] });
      assert.equal(r.exit.exitCode, 3);
      assert.equal(r.exit.reason, 'exit code 3');
      const logs = fs.readdirSync(path.join(STATE_DIR, 'logs')).filter((f) => f.startsWith(`${r.id}.log`));
      assert.deepEqual(logs.sort(), [`${r.id}.log`, `${r.id}.log.1`, `${r.id}.log.2`]);
      assert.ok(fs.statSync(ex.logPath(r.id)).size <= 4096);
      assert.equal(r.out[r.out.length - 1], 'line-200');
      // stdout and stderr are separate pipes: their relative order in the log is not defined, so look per stream.
      const rec = r.log.filter((x) => x.stream === 'stdout').at(-1);
      assert.equal(rec?.log, 'line-200');
      assert.ok(!Number.isNaN(Date.parse(rec.time)));
      const small = await run({ command: ['sh', '-c', 'echo out; echo err >&2'] });
      assert.deepEqual(
        small.log.map((x) => `${x.stream}:${x.log}`).sort(),
        ['stderr:err', 'stdout:out'],
      );
      const all = [2, 1].flatMap((n) => readLog(`${ex.logPath(r.id)}.${n}`)).concat(r.log);
      assert.ok(all.length < 202); // the oldest rotated away
    });

    it('stops with the stop signal, then SIGKILL after the grace period', async () => {
      const polite = await startTask({ command: ['sh', '-c', 'trap "echo got-term; exit 0" TERM; while :; do sleep 0.1; done'] });
      const stubborn = await startTask({ command: ['sleep', '1000'], stopSignal: 'SIGUSR1' });
      await new Promise((r) => setTimeout(r, 200));
      await ex.stop(polite.id, 10_000);
      const e1 = await ex.wait(polite.id);
      assert.equal(e1.exitCode, 0);
      assert.ok(stdoutLines(ex.logPath(polite.id)).includes('got-term'));
      await ex.stop(stubborn.id, 200);
      const e2 = await ex.wait(stubborn.id);
      assert.equal(e2.signal, 'SIGKILL');
      assert.equal(e2.reason, 'killed by SIGKILL');
    });

    it('runs image defaults: entrypoint, cmd, env, working dir, user', async () => {
      const img = await pushBusyboxImage(reg.host, {
        repo: 'convoy-test/defaults',
        spec: { entrypoint: ['sh', '-c'], cmd: ['echo $GREETING; pwd; id -u; id -g'], env: ['PATH=/bin', 'GREETING=hello'], workingDir: '/srv/app', user: 'nobody' },
      });
      const r = await run({ image: img.ref });
      assert.deepEqual(r.out, ['hello', '/srv/app', '65534', '65534']);
      const r2 = await run({ image: img.ref, args: ['echo $GREETING-$EXTRA; id -u'], env: ['EXTRA=x'], user: '1000:1000', dir: '/' });
      assert.deepEqual(r2.out, ['hello-x', '1000']);
    });

    it('execs a process inside a running container', async () => {
      const { id } = await startTask({ command: ['sleep', '1000'], hostname: 'exec-box', env: ['FOO=bar'] });
      const r = await ex.runtime.execCollect(id, ['sh', '-c', 'hostname; echo $FOO; pwd']);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(r.stdout.trim().split('\n'), ['exec-box', 'bar', '/']);
      // The container's pid namespace, and only it: its pid 1 and the exec'd ps itself. (Not through a
      // shell pipeline: whether `| wc` is forked yet when ps reads /proc is a race.)
      const ps = await ex.runtime.execCollect(id, ['ps', '-o', 'pid,comm']);
      assert.equal(ps.code, 0, ps.stderr);
      const procs = ps.stdout.trim().split('\n').slice(1).map((l) => l.trim().split(/\s+/));
      assert.deepEqual(procs.map(([, comm]) => comm).sort(), ['ps', 'sleep'], ps.stdout);
      assert.deepEqual(procs.find(([, comm]) => comm === 'sleep')?.[0], '1', ps.stdout);
      const bad = await ex.runtime.execCollect(id, ['no-such-binary']);
      assert.notEqual(bad.code, 0);
      await ex.stop(id, 0);
    });

    it('mounts named volumes (kept across tasks), binds read-only and tmpfs', async () => {
      const vol = `${PREFIX}vol-${randomBytes(3).toString('hex')}`;
      const hostDir = fs.mkdtempSync('/tmp/convoy-test-bind-');
      fs.writeFileSync(path.join(hostDir, 'f'), 'from-host');
      try {
        const w = await run({
          command: ['sh', '-c', 'echo kept > /data/v; cat /ro/f; echo; echo x > /ro/g 2>/dev/null && echo rw || echo ro; grep " /scratch " /proc/mounts | cut -d" " -f3'],
          mounts: [
            { type: 'VOLUME', source: vol, target: '/data', readOnly: false, tmpfsSizeBytes: 0 },
            { type: 'BIND', source: hostDir, target: '/ro', readOnly: true, tmpfsSizeBytes: 0 },
            { type: 'TMPFS', source: '', target: '/scratch', readOnly: false, tmpfsSizeBytes: 8 * MiB },
          ],
        });
        assert.deepEqual(w.out, ['from-host', 'ro', 'tmpfs']);
        const r = await run({ command: ['cat', '/data/v'], mounts: [{ type: 'VOLUME', source: vol, target: '/data', readOnly: true, tmpfsSizeBytes: 0 }] });
        assert.deepEqual(r.out, ['kept']);
      } finally {
        fs.rmSync(hostDir, { recursive: true, force: true });
        fs.rmSync(path.join(STATE_DIR, 'volumes', vol), { recursive: true, force: true });
      }
    });

    it('runs health checks and reports transitions', async () => {
      const events: HealthState[] = [];
      const { id } = await startTask({
        command: ['sh', '-c', 'sleep 0.5; touch /tmp/ok; sleep 1000'],
        healthcheck: { test: ['CMD-SHELL', 'test -e /tmp/ok'], intervalMs: 150, timeoutMs: 2000, retries: 2, startPeriodMs: 0 },
      });
      ex.onHealthChange((t, s) => {
        if (t === id) events.push(s);
      });
      const until = (s: HealthState) => eventually(() => ex.health(id) === s, `health ${s}`, 10_000);
      await until('healthy');
      await ex.runtime.execCollect(id, ['rm', '/tmp/ok']);
      await until('unhealthy');
      assert.deepEqual(events.filter((s, i) => events[i - 1] !== s).slice(-2), ['healthy', 'unhealthy']);
      await ex.stop(id, 0);
    });

    it('leaves nothing behind after remove', async () => {
      const { id } = await startTask({ command: ['sleep', '1000'] });
      const pid = (await ex.list()).find((c) => c.taskId === id)?.pid;
      assert.ok(pid);
      await ex.remove(id);
      assert.ok(!alive(pid, undefined));
      assert.ok(!fs.existsSync(ex.runtime.containerDir(id)));
      assert.ok(!fs.existsSync(ex.logPath(id)));
      assert.ok(!(await ex.runtime.cgroups.list()).includes(id));
      assert.ok(!(await ex.list()).some((c) => c.taskId === id));
    });
  });

  describe('agent crash', () => {
    it('finds, adopts and cleans up containers of a runtime killed with SIGKILL', async () => {
      const img = await ex.images.pull(base.ref);
      const cfg = (id: string, args: string[]): ContainerConfig => ({ id, image: base.ref, layers: img.layers, args, env: ['PATH=/bin'] });
      const [a, b, c] = [newId(), newId(), newId()];
      used.push(a, b, c);
      const items = [
        { config: cfg(a, ['sh', '-c', 'trap "exit 7" TERM; while :; do sleep 0.1; done']), start: true },
        { config: cfg(b, ['sleep', '1000']), start: true },
        { config: cfg(c, ['sleep', '1000']), start: false },
      ];
      const script = path.join(__dirname, 'testing', 'crash-child.js');
      const child = spawn(process.execPath, [script, STATE_DIR, ex.images.layersRoot, JSON.stringify(items)], { stdio: ['ignore', 'pipe', 'pipe'] });
      let err = '';
      child.stderr.on('data', (d: Buffer) => (err += d.toString()));
      await new Promise<void>((resolve, reject) => {
        child.stdout.on('data', (d: Buffer) => d.toString().includes('ready') && resolve());
        child.on('exit', (code) => reject(new Error(`crash child exited ${code}: ${err}`)));
      });
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));

      const rt = new Runtime({ stateDir: STATE_DIR, layersRoot: ex.images.layersRoot });
      const found = new Map((await rt.list()).map((x) => [x.id, x]));
      assert.equal(found.get(a)?.running, true);
      assert.equal(found.get(b)?.running, true);
      assert.equal(found.get(c)?.running, false);
      const pids = [found.get(a)?.pid, found.get(b)?.pid];

      await rt.adopt(a);
      const waited = rt.wait(a);
      await rt.stop(a, 5000);
      assert.equal((await waited).exitCode, 7);

      for (const id of [a, b, c]) await rt.remove(id);
      for (const pid of pids) assert.ok(!alive(pid, undefined), `pid ${pid} gone`);
      const cgroups = await rt.cgroups.list();
      for (const id of [a, b, c]) {
        assert.ok(!cgroups.includes(id), `cgroup ${id} gone`);
        assert.ok(!fs.existsSync(rt.containerDir(id)));
      }
      assert.ok(!(await rt.list()).some((x) => [a, b, c].includes(x.id)));
    });
  });
});
