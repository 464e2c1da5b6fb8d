import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { cfsQuotaUs, CgroupV1Driver, CgroupV2Driver, detectCgroupDriver, sharesToWeight } from './cgroups';

describe('cgroups', () => {
  let root: string;
  beforeEach(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'convoy-cgroup-test-'));
  });
  afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

  const read = (...p: string[]) => fs.readFileSync(path.join(root, ...p), 'utf8');

  it('converts nano CPUs to a CFS quota and shares to a v2 weight', () => {
    assert.equal(cfsQuotaUs(0.5e9), 50_000);
    assert.equal(cfsQuotaUs(2e9), 200_000);
    assert.equal(cfsQuotaUs(1), 1_000); // kernel minimum
    assert.equal(sharesToWeight(1024), 39);
    assert.equal(sharesToWeight(2), 1);
    assert.equal(sharesToWeight(262144), 10000);
  });

  describe('v2 driver (fake hierarchy)', () => {
    beforeEach(() => {
      fs.writeFileSync(path.join(root, 'cgroup.controllers'), 'cpuset cpu io memory pids\n');
      fs.writeFileSync(path.join(root, 'cgroup.subtree_control'), '');
    });

    it('is chosen when the unified hierarchy is mounted at the root', () => {
      assert.equal(detectCgroupDriver(root).version, 2);
    });

    it('delegates controllers and writes the limits under convoy/', async () => {
      const d = new CgroupV2Driver({ root });
      // the kernel would populate the new parent's controllers; the fake does it by hand
      fs.mkdirSync(path.join(root, 'convoy'));
      fs.writeFileSync(path.join(root, 'convoy', 'cgroup.controllers'), 'cpu memory pids\n');
      const dirs = await d.create('task1', { memoryBytes: 64 * 1024 * 1024, nanoCpus: 1.5e9, cpuShares: 512, pids: 100 });
      assert.deepEqual(dirs, [path.join(root, 'convoy', 'task1')]);
      assert.equal(read('cgroup.subtree_control'), '+cpu +memory +pids');
      assert.equal(read('convoy', 'cgroup.subtree_control'), '+cpu +memory +pids');
      assert.equal(read('convoy', 'task1', 'memory.max'), String(64 * 1024 * 1024));
      assert.equal(read('convoy', 'task1', 'cpu.max'), '150000 100000');
      assert.equal(read('convoy', 'task1', 'cpu.weight'), String(sharesToWeight(512)));
      assert.equal(read('convoy', 'task1', 'pids.max'), '100');
    });

    it('reads OOM kills, pids limit hits and stats', async () => {
      const d = new CgroupV2Driver({ root });
      const dir = path.join(root, 'convoy', 't');
      fs.mkdirSync(dir, { recursive: true });
      fs.writeFileSync(path.join(dir, 'memory.events'), 'low 0\nhigh 0\nmax 4\noom 1\noom_kill 1\n');
      fs.writeFileSync(path.join(dir, 'pids.events'), 'max 7\n');
      fs.writeFileSync(path.join(dir, 'cpu.stat'), 'usage_usec 2500000\nuser_usec 2000000\n');
      fs.writeFileSync(path.join(dir, 'memory.current'), '1048576\n');
      fs.writeFileSync(path.join(dir, 'memory.max'), 'max\n');
      fs.writeFileSync(path.join(dir, 'pids.current'), '3\n');
      assert.equal(await d.oomKills('t'), 1);
      assert.equal(await d.pidsLimitHits('t'), 7);
      assert.deepEqual(await d.stats('t'), { cpuSeconds: 2.5, memoryBytes: 1048576, memoryLimitBytes: 0, pids: 3 });
      assert.deepEqual(await d.list(), ['t']);
    });

    it('refuses names that could escape the parent', async () => {
      const d = new CgroupV2Driver({ root });
      await assert.rejects(d.create('../evil', {}), /invalid cgroup name/);
    });
  });

  describe('v1 driver (fake hierarchies)', () => {
    beforeEach(() => {
      for (const c of ['memory', 'cpu,cpuacct', 'pids', 'devices']) fs.mkdirSync(path.join(root, c));
    });

    it('writes limits into each controller and finds co-mounted ones', async () => {
      const d = new CgroupV1Driver({ root });
      assert.equal(detectCgroupDriver(root).version, 1);
      const dirs = await d.create('t1', { memoryBytes: 32 * 1024 * 1024, nanoCpus: 0.25e9, pids: 20 });
      assert.deepEqual(dirs.sort(), ['cpu,cpuacct', 'devices', 'memory', 'pids'].map((c) => path.join(root, c, 'convoy', 't1')).sort());
      assert.equal(read('memory', 'convoy', 't1', 'memory.limit_in_bytes'), String(32 * 1024 * 1024));
      assert.equal(read('cpu,cpuacct', 'convoy', 't1', 'cpu.cfs_quota_us'), '25000');
      assert.equal(read('cpu,cpuacct', 'convoy', 't1', 'cpu.cfs_period_us'), '100000');
      assert.equal(read('pids', 'convoy', 't1', 'pids.max'), '20');
      assert.equal(read('devices', 'convoy', 't1', 'devices.deny'), 'a');
      fs.writeFileSync(path.join(root, 'memory', 'convoy', 't1', 'memory.oom_control'), 'oom_kill_disable 0\nunder_oom 0\noom_kill 2\n');
      assert.equal(await d.oomKills('t1'), 2);
    });
  });
});
