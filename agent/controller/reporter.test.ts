import { strict as assert } from 'node:assert';
import type { TaskStateName, TaskStatus } from '../../proto/mod';
import { StatusReporter, type StatusUpdate } from './reporter';

const st = (state: TaskStateName): TaskStatus => ({ state, timestamp: 0, message: '', err: '', exitCode: 0, pid: 0, health: '' });
// A flush interval no test waits for: flushes are explicit or size-triggered.
const NEVER = 3_600_000;

describe('StatusReporter', () => {
  it('coalesces updates per task and sends only the latest in one batch', async () => {
    const sent: StatusUpdate[][] = [];
    const r = new StatusReporter(async (b) => void sent.push(b), { flushIntervalMs: NEVER });
    for (const s of ['ACCEPTED', 'PREPARING', 'STARTING', 'RUNNING'] as const) r.report('t1', st(s));
    r.report('t2', st('ACCEPTED'));
    await r.flush();
    assert.equal(sent.length, 1);
    assert.deepEqual(
      sent[0].map((u) => [u.taskId, u.status.state]),
      [
        ['t1', 'RUNNING'],
        ['t2', 'ACCEPTED'],
      ],
    );
    r.close();
  });

  it('flushes on its own once maxBatch tasks are pending', async () => {
    const sent: StatusUpdate[][] = [];
    let resolveSent!: () => void;
    const got = new Promise<void>((res) => (resolveSent = res));
    const r = new StatusReporter(
      async (b) => {
        sent.push(b);
        resolveSent();
      },
      { flushIntervalMs: NEVER, maxBatch: 3 },
    );
    r.report('a', st('RUNNING'));
    r.report('b', st('RUNNING'));
    assert.equal(sent.length, 0);
    r.report('c', st('RUNNING'));
    await got;
    assert.equal(sent[0].length, 3);
    r.close();
  });

  it('keeps a failed batch and retries it, newer statuses superseding the failed ones', async () => {
    const sent: StatusUpdate[][] = [];
    let fail = true;
    const r = new StatusReporter(
      async (b) => {
        if (fail) throw new Error('manager unreachable');
        sent.push(b);
      },
      { flushIntervalMs: NEVER },
    );
    r.report('t1', st('STARTING'));
    r.report('t2', st('RUNNING'));
    await r.flush();
    assert.equal(r.size, 2);
    r.report('t1', st('RUNNING'));
    fail = false;
    await r.flush();
    assert.equal(r.size, 0);
    const all = new Map(sent.flat().map((u) => [u.taskId, u.status.state]));
    assert.deepEqual([...all], [
      ['t2', 'RUNNING'],
      ['t1', 'RUNNING'],
    ]);
    r.close();
  });

  it('paces timed flushes: what arrives while a batch is in flight waits for the next interval; flush() sends it at once', async () => {
    const sent: StatusUpdate[][] = [];
    let answer!: () => void;
    let called!: () => void;
    let inFlight = new Promise<void>((res) => (called = res));
    const r = new StatusReporter(
      (b) => {
        sent.push(b);
        called();
        return new Promise<void>((res) => (answer = res));
      },
      { flushIntervalMs: NEVER },
    );
    r.report('t1', st('ACCEPTED'));
    r.kick(); // a timed flush, now
    await inFlight;
    inFlight = new Promise<void>((res) => (called = res));
    r.report('t2', st('RUNNING'));
    r.report('t1', st('RUNNING'));
    answer();
    // Let the drain loop run past the answered send.
    for (let i = 0; i < 10; i++) await new Promise((res) => setImmediate(res));
    assert.equal(sent.length, 1, 'no back-to-back batch after the answer');
    assert.equal(r.size, 2);
    const done = r.flush();
    await inFlight;
    answer();
    await done;
    assert.deepEqual(sent[1].map((u) => [u.taskId, u.status.state]), [
      ['t2', 'RUNNING'],
      ['t1', 'RUNNING'],
    ]);
    assert.equal(r.size, 0);
    r.close();
  });

  it('bounds memory: beyond maxPending the oldest updates are dropped', async () => {
    const r = new StatusReporter(async () => {
      throw new Error('down');
    }, { flushIntervalMs: NEVER, maxBatch: 1000, maxPending: 5 });
    for (let i = 0; i < 8; i++) r.report(`t${i}`, st('RUNNING'));
    assert.equal(r.size, 5);
    assert.equal(r.dropped, 3);
    r.close();
  });
});
