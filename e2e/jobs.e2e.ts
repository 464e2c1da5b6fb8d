// Jobs on a 1-host lab (issue 13), through the CLI: a replicated job of real
// containers runs to completion (`service ls` shows it as Docker does), and
// a `* * * * *` schedule fires within a minute; `convoy events` replays the
// runs. Kept short: the schedule is the one wait of up to a minute.
import { strict as assert } from 'node:assert';
import { eventually } from '../common/eventually';
import { startLab, type Lab } from './support/lab';

describe('jobs on a 1-host lab (e2e)', function () {
  this.timeout(300_000);
  let lab: Lab;

  before(async () => {
    lab = await startLab({ hosts: 1 });
  });

  after(async () => {
    await lab?.stop();
  });

  const tasksOf = async (service: string) => (await lab.api.listTasks({ service })).tasks;

  it('a replicated job completes: every task COMPLETE, none restarted; service ls shows the completions', async () => {
    // create waits for the run (the progress view's job form), as docker service create does for jobs.
    const out = await lab.convoy('service', 'create', '--name', 'convoy-e2e-job', '--mode', 'replicated-job', '--replicas', '3', '--max-concurrent', '2', lab.image, 'sh', '-c', 'echo done');
    assert.match(out, /convoy-e2e-job: job progress: 3 out of 3 complete/);
    assert.match(out, /verify: job complete/);
    await eventually(async () => (await lab.api.getService({ service: 'convoy-e2e-job' })).service?.jobStatus?.finishedIteration === 1, 'the job finished', 120_000);
    const ts = await tasksOf('convoy-e2e-job');
    assert.equal(ts.length, 3);
    assert.ok(ts.every((t) => t.status?.state === 'COMPLETE' && t.status.exitCode === 0), JSON.stringify(ts.map((t) => t.status)));
    const ls = await lab.convoy('service', 'ls');
    assert.match(ls, /convoy-e2e-job\s+replicated job\s+0\/0 \(3\/3 completed\)/);
    const ps = await lab.convoy('service', 'ps', 'convoy-e2e-job');
    assert.equal((ps.match(/Complete/g) ?? []).length, 6, `desired and current state Complete for the 3 tasks:\n${ps}`);
  });

  it('a * * * * * schedule fires: a run starts on the minute and completes; events say so', async () => {
    const before = Date.now();
    const created = await lab.convoy('service', 'create', '--name', 'convoy-e2e-cron', '--mode', 'replicated-job', '--schedule', '* * * * *', '--concurrency-policy', 'forbid', lab.image, 'true');
    assert.match(created, /verify: scheduled \(\* \* \* \* \* UTC\): each run is an event/, `a scheduled job returns at once:\n${created}`);
    const atCreation = (await tasksOf('convoy-e2e-cron')).length;
    // Nothing runs before the first whole minute after creation; when one passed meanwhile (a CI run
    // created it at :59.x), its fire may already be there.
    if (Math.floor(Date.now() / 60_000) === Math.floor(before / 60_000)) assert.equal(atCreation, 0, 'nothing at creation');
    await eventually(async () => (await lab.api.getService({ service: 'convoy-e2e-cron' })).service?.jobStatus?.finishedIteration === 1, 'the schedule fired and the run completed', 90_000);
    const js = (await lab.api.getService({ service: 'convoy-e2e-cron' })).service!.jobStatus!;
    assert.equal(js.lastScheduleAt % 60_000, 0, 'on a whole minute');
    await eventually(async () => {
      const out = await lab.convoy('events', '--since', '10m', '--no-follow', '--filter', 'service=convoy-e2e-cron', '--format', 'json');
      const actions = out.trim().split('\n').filter(Boolean).map((l) => (JSON.parse(l) as { action: string }).action);
      return actions.includes('job-started') && actions.includes('job-completed');
    }, 'job-started and job-completed events', 30_000);
  });
});
