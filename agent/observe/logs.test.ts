import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { nullLogger } from '../../common/logger';
import type { LogBatch } from '../../proto/events';
import { LOG_BATCH_LINES, LogServer, MAX_CONCURRENT_READS, MAX_QUEUED, parseLogLine } from './logs';
import { eventually } from '../../common/eventually';

const rec = (t: string, log: string, stream = 'stdout') => `${JSON.stringify({ time: t, stream, log })}\n`;

describe('agent log server', () => {
  let dir = '';
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'convoy-test-logs-'));
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  function server(sent: LogBatch[]) {
    return new LogServer({
      nodeId: () => 'n1',
      logPath: (id) => (id === 'hollow' ? undefined : path.join(dir, `${id}.log`)),
      publish: (_s, b) => sent.push(b),
      subscribe: () => () => undefined,
      logger: nullLogger,
    });
  }

  it('parses runtime log records and skips broken ones', () => {
    assert.deepEqual(parseLogLine('t', rec('2026-01-01T00:00:00.500Z', 'hi\n', 'stderr').trim()), { taskId: 't', time: Date.parse('2026-01-01T00:00:00.500Z'), stream: 'stderr', line: 'hi' });
    assert.equal(parseLogLine('t', '{"time":"2026-01-01T00:0'), undefined);
    assert.equal(parseLogLine('t', ''), undefined);
  });

  it('sends rotated files first, applies --since and --tail, and says which tasks it does not hold', async () => {
    fs.writeFileSync(path.join(dir, 'a.log.1'), rec('2026-01-01T00:00:01Z', 'one') + rec('2026-01-01T00:00:02Z', 'two'));
    fs.writeFileSync(path.join(dir, 'a.log'), rec('2026-01-01T00:00:03Z', 'three') + rec('2026-01-01T00:00:04Z', 'four') + '{"time":"2026-01-01T00:00:05Z","str');
    const sent: LogBatch[] = [];
    server(sent).handle({ taskIds: ['a', 'gone', 'hollow', '../a'], follow: false, inbox: 'in', since: Date.parse('2026-01-01T00:00:02Z'), tail: 2 });
    await eventually(() => sent.some((b) => b.done?.length), 'the last batch (done) sent');
    assert.deepEqual(sent.flatMap((b) => b.lines.map((l) => l.line)), ['three', 'four'], 'since 00:02 leaves two..four; tail 2 keeps the last two; the cut line is not sent');
    const last = sent[sent.length - 1];
    assert.deepEqual(last.done, ['a']);
    assert.deepEqual(last.missing, ['gone', 'hollow', '../a'], 'a path is never a task id');
  });

  it('splits large histories into batches and ignores malformed requests', async () => {
    fs.writeFileSync(path.join(dir, 'b.log'), Array.from({ length: LOG_BATCH_LINES + 5 }, (_, i) => rec('2026-01-01T00:00:00Z', `l${i}`)).join(''));
    const sent: LogBatch[] = [];
    const s = server(sent);
    s.handle({ taskIds: 'b', inbox: 'in' });
    s.handle(null);
    s.handle({ taskIds: ['b'], follow: false, inbox: 'in' });
    await eventually(() => sent.some((b) => b.done?.length), 'the last batch (done) sent');
    assert.deepEqual(sent.map((b) => b.lines.length), [LOG_BATCH_LINES, 5, 0]);
  });

  it(`reads at most ${MAX_CONCURRENT_READS} histories at once, queues ${MAX_QUEUED}, answers the rest busy at once, and serves the queue`, async () => {
    fs.writeFileSync(path.join(dir, 'c.log'), rec('2026-01-01T00:00:00Z', 'x'));
    const sent: { inbox: string; b: LogBatch }[] = [];
    const s = new LogServer({ nodeId: () => 'n1', logPath: (id) => path.join(dir, `${id}.log`), publish: (inbox, b) => sent.push({ inbox, b }), subscribe: () => () => undefined, logger: nullLogger });
    const n = 100;
    for (let i = 0; i < n; i++) s.handle({ taskIds: ['c'], follow: false, inbox: `in.${i}` });
    assert.deepEqual(s.load, { reading: MAX_CONCURRENT_READS, queued: MAX_QUEUED });
    const busy = sent.filter((x) => x.b.busy?.length);
    assert.equal(busy.length, n - MAX_CONCURRENT_READS - MAX_QUEUED);
    await eventually(() => sent.filter((x) => x.b.done?.length).length === MAX_CONCURRENT_READS + MAX_QUEUED, 'every admitted request answered');
    assert.deepEqual(s.load, { reading: 0, queued: 0 });
  });
});
