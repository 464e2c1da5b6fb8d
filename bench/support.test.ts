// The benchmarks' scratch directories: what a crashed run left is swept
// (its processes stopped, its directory removed), what a live run or an
// operator's KEEP=1 owns is not.
import { strict as assert } from 'node:assert';
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { keepScratch, processesUnder, scratchDir, sweepScratch } from './support';

const PREFIX = 'convoy-bench-test-';

/** A process whose command line names a path under dir (as a manager's --data-dir does). */
function runningUnder(dir: string): ChildProcess {
  return spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60_000)', path.join(dir, 'm')], { stdio: 'ignore' });
}

/** The pid of a process that has exited. */
async function deadPid(): Promise<number> {
  const p = spawn('true');
  await new Promise((r) => p.once('exit', r));
  return p.pid!;
}

describe('bench scratch directories', () => {
  let tmp: string;
  const children: ChildProcess[] = [];
  beforeEach(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'convoy-bench-support-'));
  });
  afterEach(() => {
    for (const c of children.splice(0)) c.kill('SIGKILL');
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('names this process as the owner of a new directory', () => {
    const d = scratchDir(PREFIX, tmp);
    assert.ok(path.basename(d).startsWith(PREFIX));
    assert.equal(fs.readFileSync(path.join(d, 'owner.pid'), 'utf8').trim(), String(process.pid));
  });

  it('stops the processes of a crashed run and removes its directory; keeps a live run and a kept one', async () => {
    const crashed = fs.mkdtempSync(path.join(tmp, PREFIX));
    fs.writeFileSync(path.join(crashed, 'owner.pid'), `${await deadPid()}\n`);
    const orphan = runningUnder(crashed);
    children.push(orphan);
    const exited = new Promise((r) => orphan.once('exit', r));

    const unnamed = fs.mkdtempSync(path.join(tmp, PREFIX));

    const live = fs.mkdtempSync(path.join(tmp, PREFIX));
    const owner = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60_000)'], { stdio: 'ignore' });
    children.push(owner);
    fs.writeFileSync(path.join(live, 'owner.pid'), `${owner.pid}\n`);
    children.push(runningUnder(live));

    const kept = fs.mkdtempSync(path.join(tmp, PREFIX));
    fs.writeFileSync(path.join(kept, 'owner.pid'), `${await deadPid()}\n`);
    keepScratch(kept);

    const other = fs.mkdtempSync(path.join(tmp, 'convoy-other-'));

    // The orphan shows up as running under its directory before the sweep.
    for (let i = 0; !processesUnder(crashed).includes(orphan.pid!); i++) {
      assert.ok(i < 100, 'the orphan never showed up in /proc');
      await new Promise((r) => setTimeout(r, 20));
    }
    const removed = await sweepScratch(PREFIX, tmp);

    assert.deepEqual(removed.sort(), [crashed, unnamed].sort());
    await exited;
    assert.ok(!fs.existsSync(crashed) && !fs.existsSync(unnamed));
    assert.ok(fs.existsSync(live) && fs.existsSync(kept) && fs.existsSync(other));
    assert.equal(processesUnder(live).length, 1, "the live run's process is left running");
  });
});

/** Runs script in a child node with `onInterrupt` of this module in scope; resolves to its output and how it ended. */
function runWithSupport(script: string): Promise<{ out: string; code: number | null; signal: NodeJS.Signals | null }> {
  const support = require.resolve('./support');
  const child = spawn(process.execPath, ['-e', `const { onInterrupt } = require(${JSON.stringify(support)});\n${script}`], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve({ out, code, signal })));
}

describe('bench interrupts (onInterrupt)', () => {
  it('on SIGTERM runs every registered cleanup, newest first, even past one that fails, and exits 143; the run never cleans up a second time', async () => {
    const r = await runWithSupport(`
      const say = (s) => new Promise((res) => process.stdout.write(s + '\\n', res));
      const offLab = onInterrupt(async () => { await new Promise((r) => setTimeout(r, 50)); await say('lab stopped'); });
      const offBroken = onInterrupt(async () => { throw new Error('boom'); });
      const offService = onInterrupt(() => say('service removed'));
      (async () => {
        try {
          await new Promise((_res, rej) => setTimeout(() => rej(new Error('the call failed as the lab went away')), 20));
        } finally {
          await offService();
          await say('the run cleaned up itself');
        }
      })().catch(() => say('the run failed'));
      setTimeout(() => process.kill(process.pid, 'SIGTERM'), 10);
      setTimeout(() => {}, 10_000);
    `);
    assert.equal(r.code, 143);
    assert.deepEqual(r.out.trim().split('\n'), ['service removed', 'lab stopped']);
  });

  it('once every cleanup is unregistered, a signal is the default again (the process dies of it)', async () => {
    const r = await runWithSupport(`
      const off1 = onInterrupt(async () => process.stdout.write('cleanup ran\\n'));
      const off2 = onInterrupt(async () => process.stdout.write('cleanup ran\\n'));
      (async () => {
        await off1();
        await off2();
        await off2();
        process.stdout.write('unregistered\\n', () => process.kill(process.pid, 'SIGTERM'));
      })();
      setTimeout(() => {}, 10_000);
    `);
    assert.equal(r.signal, 'SIGTERM');
    assert.equal(r.out, 'unregistered\n');
  });

  it('an unregistered cleanup does not run; the ones still registered do', async () => {
    const r = await runWithSupport(`
      onInterrupt(async () => process.stdout.write('registry stopped\\n'));
      const off = onInterrupt(async () => process.stdout.write('gone already\\n'));
      off().then(() => process.kill(process.pid, 'SIGINT'));
      setTimeout(() => {}, 10_000);
    `);
    assert.equal(r.code, 130);
    assert.equal(r.out, 'registry stopped\n');
  });
});
