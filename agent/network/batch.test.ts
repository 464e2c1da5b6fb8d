// Coalescing of network commands: a burst of jobs becomes few processes, and
// each job still gets its own outcome.
import { strict as assert } from 'node:assert';
import { Coalescer, ipBatch, parseIpBatchErrors } from './batch';
import { CommandError, type Sh } from './sh';

describe('network command batches', () => {
  it('runs the jobs submitted while a batch runs together in the next batch', async () => {
    const batches: number[][] = [];
    let release: () => void = () => undefined;
    const c = new Coalescer<number, number>(async (jobs) => {
      batches.push(jobs);
      if (batches.length === 1) await new Promise<void>((r) => (release = r));
      return jobs.map((j) => (j < 0 ? new Error(`neg ${j}`) : j * 10));
    });
    const first = c.submit(1);
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setImmediate(r));
    const rest = [2, -3, 4].map((j) => c.submit(j).then((v) => String(v), (e: Error) => e.message));
    release();
    assert.equal(await first, 10);
    assert.deepEqual(await Promise.all(rest), ['20', 'neg -3', '40']);
    assert.deepEqual(batches, [[1], [2, -3, 4]]);
  });

  it('puts the jobs of one turn of the event loop into one batch, and fails them all if the batch throws', async () => {
    const batches: string[][] = [];
    const c = new Coalescer<string, void>(async (jobs) => {
      batches.push(jobs);
      throw new Error('helper missing');
    });
    const r = await Promise.allSettled(['a', 'b', 'c'].map((j) => c.submit(j)));
    assert.deepEqual(batches, [['a', 'b', 'c']]);
    assert.deepEqual(
      r.map((x) => (x.status === 'rejected' ? (x.reason as Error).message : 'ok')),
      ['helper missing', 'helper missing', 'helper missing'],
    );
  });

  it("maps ip's 'Command failed -:N' to the lines that failed", () => {
    const m = parseIpBatchErrors('RTNETLINK answers: File exists\nCommand failed -:2\nCannot find device "cvy1"\nCommand failed -:5\n');
    assert.deepEqual([...m], [
      [2, 'RTNETLINK answers: File exists'],
      [5, 'Cannot find device "cvy1"'],
    ]);
  });

  it('runs one `ip -force -batch` for a burst and fails only the job whose line failed', async () => {
    const runs: { args: string[]; input?: string }[] = [];
    const sh: Sh = {
      run: async (cmd, args, input) => {
        runs.push({ args, input });
        const lines = (input ?? '').trim().split('\n');
        const bad = lines.findIndex((l) => l.includes('taken'));
        if (bad < 0) return '';
        const stderr = `RTNETLINK answers: File exists\nCommand failed -:${bad + 1}\n`;
        throw new CommandError(`${cmd} failed`, stderr, 1);
      },
    };
    const ip = ipBatch(sh);
    const r = await Promise.allSettled([ip.submit(['netns add a', 'link add va']), ip.submit(['netns add taken', 'link add vb']), ip.submit(['netns add c'])]);
    assert.equal(runs.length, 1);
    assert.deepEqual(runs[0].args, ['-force', '-batch', '-']);
    assert.equal(runs[0].input, 'netns add a\nlink add va\nnetns add taken\nlink add vb\nnetns add c\n');
    assert.deepEqual(
      r.map((x) => x.status),
      ['fulfilled', 'rejected', 'fulfilled'],
    );
    assert.match(((r[1] as PromiseRejectedResult).reason as Error).message, /netns add taken: RTNETLINK answers: File exists/);
  });
});
