// A task that floods its logs: one 200 MB line, then many 1 MB lines. The
// container's monitor (convoy-init) cuts lines at 16 KiB and rotates by size,
// so its memory, the agent's memory and the disk all stay bounded; and the
// agent's log server answers a history request of that log with bounded
// memory. Real namespaces and a real registry: run under the kernel lock.
import * as assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { startRegistry, type TestRegistry } from '../../lab/registry';
import { pushBusyboxImage, type TestImage } from '../../lab/images';
import { nullLogger } from '../../common/logger';
import type { LogBatch } from '../../proto/events';
import { LogServer } from '../observe/logs';
import { ContainerExecutor } from './executor';
import { makeTask, readLog } from './testing/fixtures';
import { eventually } from '../../common/eventually';

const PREFIX = 'convoy-test-flood-';
const STATE_DIR = '/tmp/convoy-test-logflood';
const MiB = 1024 * 1024;
const LOG_MAX_BYTES = 8 * MiB;
const LOG_MAX_FILES = 3;

/** Resident set of a process in bytes (0 once it is gone). */
function rssOf(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

describe('a task flooding its logs with huge lines (integration)', function () {
  this.timeout(60_000);
  let reg: TestRegistry;
  let base: TestImage;
  let ex: ContainerExecutor;
  const id = `${PREFIX}${randomBytes(3).toString('hex')}`;

  before(async () => {
    fs.rmSync(STATE_DIR, { recursive: true, force: true });
    reg = await startRegistry();
    base = await pushBusyboxImage(reg.host);
    ex = new ContainerExecutor({ stateDir: STATE_DIR, insecureRegistries: [reg.host], logMaxBytes: LOG_MAX_BYTES, logMaxFiles: LOG_MAX_FILES });
  });
  after(async () => {
    await ex?.remove(id).catch(() => undefined);
    await ex?.runtime.cleanupAll(PREFIX).catch(() => undefined);
    await ex?.close();
    await reg?.stop();
    fs.rmSync(STATE_DIR, { recursive: true, force: true });
  });

  it('keeps the monitor, the agent and the log files bounded; the log server reads it back within bounds', async () => {
    // 200 MB without a newline, then 50 lines of 1 MB, then a marker.
    const script = "head -c 200000000 /dev/zero | tr '\\0' x; echo; i=0; while [ $i -lt 50 ]; do head -c 1000000 /dev/zero | tr '\\0' y; echo; i=$((i+1)); done; echo flood-done";
    const task = makeTask(id, { image: base.ref, command: ['sh', '-c', script] });
    global.gc?.();
    const agentBefore = process.memoryUsage().rss;
    await ex.prepare(task);
    await ex.start(task);
    const st = await ex.runtime.readState(id);
    assert.ok(st?.monitorPid, 'the monitor runs');
    let monitorMax = 0;
    let agentMax = 0;
    const sample = setInterval(() => {
      monitorMax = Math.max(monitorMax, rssOf(st.monitorPid!));
      agentMax = Math.max(agentMax, process.memoryUsage().rss);
    }, 20);
    let exit;
    try {
      exit = await ex.wait(id);
    } finally {
      clearInterval(sample);
    }
    assert.equal(exit.exitCode, 0, exit.reason);
    const logs = fs.readdirSync(path.join(STATE_DIR, 'logs')).filter((f) => f.startsWith(`${id}.log`));
    const onDisk = logs.reduce((n, f) => n + fs.statSync(path.join(STATE_DIR, 'logs', f)).size, 0);
    console.log(`      monitor max rss ${(monitorMax / MiB).toFixed(1)} MiB, agent rss growth ${((agentMax - agentBefore) / MiB).toFixed(1)} MiB, ${logs.length} files, ${(onDisk / MiB).toFixed(1)} MiB on disk`);
    assert.ok(monitorMax > 0 && monitorMax < 16 * MiB, `the monitor stays small (${monitorMax} bytes)`);
    assert.ok(agentMax - agentBefore < 64 * MiB, `the agent's memory does not follow the flood (${agentMax - agentBefore} bytes)`);
    assert.ok(logs.length <= LOG_MAX_FILES, logs.join(' '));
    assert.ok(onDisk <= LOG_MAX_FILES * (LOG_MAX_BYTES + 64 * 1024), `${onDisk} bytes on disk`);
    const current = readLog(ex.logPath(id));
    assert.equal(current.at(-1)?.log, 'flood-done');
    assert.ok(current.every((r) => Buffer.byteLength(r.log) <= 16 * 1024), 'every record holds at most 16 KiB of the line');

    // The log server reads that history back: ~24 MiB of records, memory bounded by the files, not by the flood.
    const sent: LogBatch[] = [];
    const server = new LogServer({ nodeId: () => 'n1', logPath: (t) => ex.logPath(t), publish: (_s, b) => sent.push(b), subscribe: () => () => undefined, logger: nullLogger });
    const before = process.memoryUsage().rss;
    let peak = before;
    const watch = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 10);
    try {
      server.handle({ taskIds: [id], follow: false, inbox: 'in', tail: 100 });
      await eventually(() => sent.some((b) => b.done?.length), 'history served', 30_000);
    } finally {
      clearInterval(watch);
    }
    const lines = sent.flatMap((b) => b.lines);
    assert.equal(lines.length, 100);
    assert.equal(lines.at(-1)?.line, 'flood-done');
    console.log(`      log server: history of ${(onDisk / MiB).toFixed(1)} MiB read with ${((peak - before) / MiB).toFixed(1)} MiB more rss`);
    assert.ok(peak - before < 8 * onDisk + 64 * MiB, `reading the history stays within a few times the files (${peak - before} bytes)`);
  });
});
