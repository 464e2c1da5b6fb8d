// Jobs end to end through a real manager (startManager on a real etcd) and
// a real agent with the hollow executor (its tasks exit with the code a
// label gives): a replicated job completes with max concurrency, is run again
// by `update --force`, a failing job is retried by its restart policy and
// fails, and a `* * * * *` schedule fires (waits up to a minute, once).
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Service, ServiceSpec, Task } from '../proto/mod';
import { connectControl, type ControlConnection } from '../proto/client';
import { HollowExecutor, startAgent, type AgentHandle } from './mod';
import { eventually } from '../common/eventually';
import { adminSecurity, freePort, startManager } from '../e2e/support/manager';
import { startEtcd, type TestEtcd } from '../lab/etcd';
import { nullLogger } from '../common/logger';

describe('jobs with a real manager and agent (integration)', function () {
  this.timeout(180_000);
  let dir: string;
  let etcd: TestEtcd | undefined;
  let stopManager: (() => Promise<void>) | undefined;
  let agent: AgentHandle | undefined;
  let conn: ControlConnection | undefined;
  let ctl: ControlConnection;

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'convoy-jobs-int-'));
    etcd = await startEtcd({ dataDir: path.join(dir, 'etcd') });
    const port = await freePort();
    const m = await startManager({ dataDir: path.join(dir, 'm'), listen: `127.0.0.1:${port}`, etcdEndpoints: etcd.endpoints, etcdTls: etcd.tls, kekFile: path.join(dir, 'kek'), logger: nullLogger });
    stopManager = () => m.stop();
    conn = ctl = connectControl(m.grpcAddr, { security: adminSecurity({ adminDir: m.adminDir }) });
    const tokens = await ctl.getJoinTokens({});
    agent = await startAgent({ managers: [m.grpcAddr], joinAddr: m.joinAddr, joinToken: tokens.worker, stateDir: path.join(dir, 'a'), advertiseAddr: '127.0.0.1', executor: new HollowExecutor() });
  });

  after(async () => {
    await agent?.stop().catch(() => {});
    conn?.close();
    await stopManager?.().catch(() => {});
    await etcd?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  const tasksOf = async (name: string): Promise<Task[]> => (await ctl.listTasks({ service: name })).tasks;
  const get = async (name: string) => ctl.getService({ service: name });
  const job = (name: string, exit: number, o: Partial<ServiceSpec> = {}) =>
    ({ name, mode: 'REPLICATED_JOB', replicas: 3, container: { image: 'hollow/job:1', labels: { 'convoy.hollow.exit': String(exit) } }, ...o }) as ServiceSpec;

  it('a replicated job runs its tasks to completion, at most max-concurrent at once; --force runs it again', async () => {
    await ctl.createService({ spec: job('convoy-job-ok', 0, { job: { maxConcurrent: 2 } as ServiceSpec['job'] }) });
    let svc: Service | null | undefined;
    await eventually(async () => (svc = (await get('convoy-job-ok')).service)?.jobStatus?.finishedIteration === 1, 'run 1 finished', 60_000);
    assert.equal(svc!.jobStatus!.finishedOk, true);
    const run1 = (await tasksOf('convoy-job-ok')).filter((t) => t.jobIteration === 1);
    assert.equal(run1.length, 3, 'one task per slot, none restarted');
    assert.ok(run1.every((t) => t.status?.state === 'COMPLETE' && t.desiredState === 'COMPLETE'));
    // Never more than two at once: the third slot's task was created after one of the first two completed.
    const byCreate = [...run1].sort((a, b) => (a.meta?.createdAt ?? 0) - (b.meta?.createdAt ?? 0));
    const firstDone = Math.min(...byCreate.slice(0, 2).map((t) => t.status?.timestamp ?? 0));
    assert.ok((byCreate[2].meta?.createdAt ?? 0) >= firstDone - 5, 'slot 3 started after a completion');
    const counts = (await get('convoy-job-ok')).counts;
    assert.equal(counts?.completed, 3);
    // update --force: a new run.
    const cur = (await get('convoy-job-ok')).service!;
    await ctl.updateService({ service: cur.id, version: 0, spec: cur.spec, force: true });
    await eventually(async () => (await get('convoy-job-ok')).service?.jobStatus?.finishedIteration === 2, 'run 2 finished', 60_000);
    assert.equal((await tasksOf('convoy-job-ok')).filter((t) => t.jobIteration === 2 && t.status?.state === 'COMPLETE').length, 3);
  });

  it('a failing job is retried by its restart policy and then the run fails', async () => {
    await ctl.createService({ spec: job('convoy-job-bad', 1, { replicas: 1, restart: { condition: 'RESTART_ON_FAILURE', delayMs: 0, maxAttempts: 1, windowMs: 0 } }) });
    await eventually(async () => (await get('convoy-job-bad')).service?.jobStatus?.finishedIteration === 1, 'run finished', 60_000);
    const s = (await get('convoy-job-bad')).service!;
    assert.equal(s.jobStatus!.finishedOk, false);
    const ts = await tasksOf('convoy-job-bad');
    assert.deepEqual(ts.map((t) => [t.attempt, t.status?.state]).sort(), [
      [0, 'FAILED'],
      [1, 'FAILED'],
    ]);
    assert.equal((await get('convoy-job-bad')).counts?.failed, 1);
  });

  it('a scheduled job does not run at creation and runs when its schedule fires', async () => {
    await ctl.createService({ spec: job('convoy-job-cron', 0, { replicas: 1, job: { schedule: '* * * * *' } as ServiceSpec['job'] }) });
    const created = Date.now();
    const s0 = (await get('convoy-job-cron')).service!;
    assert.equal((await tasksOf('convoy-job-cron')).length, 0);
    await eventually(async () => (await get('convoy-job-cron')).service?.jobStatus?.finishedIteration === 1, 'the schedule fired and the run completed', 75_000);
    const js = (await get('convoy-job-cron')).service!.jobStatus!;
    assert.ok(js.lastScheduleAt > created - 60_000 && js.lastScheduleAt % 60_000 === 0, `fired on a whole minute (${js.lastScheduleAt})`);
    assert.match(js.message, /run 1 (started|completed)/);
    assert.equal(s0.spec?.job?.timezone, 'UTC');
  });
});
