// Stacks on a 2-host lab (issue 13, "What it must show"): a compose file of
// six services on two networks with a named volume, a secret, a config,
// healthchecks, depends_on with service_healthy, a published port, placement
// on node.role == manager, a replicated job and a scheduled job
// (x-convoy-job); everything runs, services resolve each other by their short
// names, the job completes, the schedule fires; a redeploy with one changed
// service restarts only that one; --prune; stack rm leaves no key of the
// stack in etcd and nothing of its tasks on any host (the named volume's data
// stays, as Docker's stack rm keeps volumes: docs/stacks.md).
import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { ContainerExecutor } from '../agent/runtime/executor';
import { taskNetnsName, vethName } from '../agent/network/attacher';
import { DEFAULT_TASK_FILES_ROOT } from '../agent/runtime/task-files';
import { eventually } from '../common/eventually';
import { labHostname } from '../lab/topology';
import type { Task } from '../proto/mod';
import { labEtcdctl } from './support/etcd';
import { startLab, type Lab } from './support/lab';

const execFileP = promisify(execFile);

const PUBLISHED = 8081;
// DEMO_HTTPD with compose's $$ escapes: each replica serves "<hostname> <address>".
const HTTPD = 'mkdir -p /www && echo "$$(hostname) $$(hostname -i)" > /www/index.html && exec httpd -f -p 80 -h /www';

function wget(url: string): Promise<string | undefined> {
  return new Promise((resolve) => execFile('busybox', ['wget', '-O-', url], { timeout: 3000, encoding: 'utf8' }, (err, out) => resolve(err ? undefined : out.trim())));
}

const composeFile = (image: string, o: { webEnv?: string; withWeb?: boolean } = {}) => `version: "3.8"
services:
${
  o.withWeb === false
    ? ''
    : `  web:
    image: ${image}
    command: ["sh", "-c", '${HTTPD}']
    environment:
      REV: "${o.webEnv ?? '1'}"
    ports: ["${PUBLISHED}:80"]
    networks: [front]
    depends_on:
      api: {condition: service_healthy}
    deploy:
      replicas: 2
`
}  api:
    image: ${image}
    command: ["sh", "-c", '${HTTPD}']
    networks: [front, back]
    healthcheck:
      test: ["CMD-SHELL", "wget -q -O- http://127.0.0.1/ >/dev/null"]
      interval: 1s
      retries: 3
    depends_on:
      db: {condition: service_healthy}
    secrets: [s]
    configs:
      - {source: c, target: /etc/app.conf}
  db:
    image: ${image}
    command: ["sh", "-c", 'echo stored > /data/x && ${HTTPD}']
    networks: [back]
    volumes: ["data:/data"]
    healthcheck:
      test: "test -f /data/x"
      interval: 1s
  admin:
    image: ${image}
    command: ["sleep", "1000000"]
    networks: [back]
    deploy:
      placement:
        constraints: [node.role == manager]
  migrate:
    image: ${image}
    command: ["sh", "-c", "wget -q -O- http://db/ >/dev/null"]
    networks: [back]
    depends_on:
      db: {condition: service_healthy}
    deploy: {mode: replicated-job, replicas: 2}
  cron:
    image: ${image}
    command: ["true"]
    networks: [back]
    deploy: {mode: replicated-job}
    x-convoy-job:
      schedule: "* * * * *"
      concurrency_policy: forbid
networks:
  front: {}
  back: {}
volumes:
  data: {}
secrets:
  s: {file: ./s.txt}
configs:
  c: {file: ./c.txt}
`;

/** Every service of the stack; web is the one v3.yml leaves out. */
const SERVICES = ['web', 'api', 'db', 'admin', 'migrate', 'cron'].map((s) => `app_${s}`);
const SECRET = 'the stack secret';
const CONFIG = 'listen = 80';

describe('stacks on a 2-host lab', function () {
  this.timeout(300_000);
  let lab: Lab;
  let dir: string;

  const running = async (service: string): Promise<Task[]> =>
    (await lab.api.listTasks({ service })).tasks.filter((t) => t.desiredState === 'RUNNING' && t.status?.state === 'RUNNING');
  const tasksOf = async (service: string): Promise<Task[]> => (await lab.api.listTasks({ service })).tasks;
  const jobStatus = async (service: string) => (await lab.api.getService({ service })).service?.jobStatus;
  const file = (name: string, text: string) => {
    const p = path.join(dir, name);
    fs.writeFileSync(p, text);
    return p;
  };
  /** The lab host (its agent dir, netns) a task was placed on, and its node. */
  const hostOf = async (t: Task) => {
    const node = (await lab.api.listNodes({})).nodes.find((n) => n.id === t.nodeId);
    const host = lab.state.hosts.find((h) => labHostname(h.index) === node?.description?.hostname);
    assert.ok(node && host, `task ${t.id} on node ${t.nodeId}: not a lab host`);
    return { node, host };
  };

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'convoy-stack-e2e-'));
    fs.writeFileSync(path.join(dir, 's.txt'), SECRET);
    fs.writeFileSync(path.join(dir, 'c.txt'), CONFIG);
    lab = await startLab({ hosts: 2 });
    // The lab's registry speaks plain HTTP: --resolve-image (default always) may use it as the agents do.
    lab.cliEnv.CONVOY_INSECURE_REGISTRIES = lab.image.split('/')[0];
    // Nothing promotes host 1: its agent, beside the manager, registers as a MANAGER node (docs/stacks.md, node roles).
    // Not part of the stack: stack rm must leave it.
    await lab.convoy('service', 'create', '-d', '--name', 'bystander', lab.image, 'sleep', '1000000');
  });

  after(async () => {
    try {
      await lab?.stop();
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('deploys in dependency order, waiting for health, and everything runs', async () => {
    const out = await lab.convoy('stack', 'deploy', '-d', '-c', file('v1.yml', composeFile(lab.image)), 'app');
    // db healthy before api is created, api healthy before web.
    assert.match(out, /Creating service app_db[\s\S]*Waiting for service app_db to be healthy[\s\S]*Creating service app_api[\s\S]*Waiting for service app_api to be healthy[\s\S]*Creating service app_web/);
    for (const s of SERVICES) assert.match(out, new RegExp(`Creating service ${s}\\b`));
    await eventually(
      async () => (await running('app_web')).length === 2 && (await running('app_api')).length === 1 && (await running('app_db')).length === 1 && (await running('app_admin')).length === 1,
      'the stack running',
      120_000,
    );
    // --resolve-image always: every node runs the digest the tag had at deploy time.
    const web = (await lab.api.getService({ service: 'app_web' })).service!;
    assert.match(web.spec!.container!.image, new RegExp(`^${lab.image.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}@sha256:[0-9a-f]{64}$`));
    const ls = await lab.convoy('stack', 'ls');
    assert.match(ls, /^app\s+6$/m);
    assert.match(await lab.convoy('stack', 'services', 'app'), /app_web[\s\S]*\*:8081->80\/tcp/);
    // stack ps lists the tasks of every service of the stack (cron's come and go with its schedule: listed after).
    await eventually(async () => (await jobStatus('app_migrate'))?.finishedIteration === 1, 'the migrate job finished', 120_000);
    const steady: string[] = [];
    for (const s of SERVICES.filter((x) => x !== 'app_cron')) steady.push(...(await tasksOf(s)).map((t) => t.id));
    assert.equal(steady.length, 7, 'web 2, api, db, admin, migrate 2');
    // -q prints ids truncated to 12 characters, as docker's.
    const ps = (await lab.convoy('stack', 'ps', 'app', '-q')).trim().split('\n');
    const cron = (await tasksOf('app_cron')).map((t) => t.id.slice(0, 12));
    assert.deepEqual(ps.filter((id) => !cron.includes(id)).sort(), steady.map((id) => id.slice(0, 12)).sort());
  });

  it('a replicated job completes: every task COMPLETE with exit 0', async () => {
    const js = (await jobStatus('app_migrate'))!;
    assert.equal(js.finishedOk, true, JSON.stringify(js));
    const ts = await tasksOf('app_migrate');
    assert.equal(ts.length, 2);
    assert.ok(
      ts.every((t) => t.status?.state === 'COMPLETE' && t.status.exitCode === 0),
      JSON.stringify(ts.map((t) => t.status)),
    );
  });

  it('the named volume, the secret and the config are there inside the tasks', async () => {
    const [db] = await running('app_db');
    assert.equal((await lab.execIn(db.id, 'cat /data/x')).trim(), 'stored');
    // The volume is the agent's, under its stack-scoped name, on db's host.
    const { host } = await hostOf(db);
    assert.equal(fs.readFileSync(path.join(host.agentDir, 'volumes', 'app_data', '_data', 'x'), 'utf8').trim(), 'stored');
    const [api] = await running('app_api');
    assert.equal(await lab.execIn(api.id, 'cat /run/secrets/s'), SECRET);
    assert.equal(await lab.execIn(api.id, 'cat /etc/app.conf'), CONFIG);
  });

  it('node.role == manager places on the manager host', async () => {
    const [admin] = await running('app_admin');
    const { node, host } = await hostOf(admin);
    assert.equal(node.spec?.role, 'MANAGER');
    assert.equal(host.index, 1, 'the host that runs the lab manager');
    // The constraint decided something: the other host is a worker.
    const others = (await lab.api.listNodes({})).nodes.filter((n) => n.id !== node.id);
    assert.ok(others.length === 1 && others[0].spec?.role === 'WORKER', JSON.stringify(others.map((n) => n.spec)));
  });

  it('services resolve each other by their short names on the networks they share', async () => {
    const [web] = await running('app_web');
    const [api] = await running('app_api');
    const apiAddr = api.networks.flatMap((n) => n.addresses.map((a) => a.split('/')[0]));
    const page = await lab.execIn(web.id, 'wget -q -O- http://api/');
    assert.ok(apiAddr.includes(page.trim().split(/\s+/)[1]), `web reached api by its short name: ${page}`);
    const dbPage = await lab.execIn(api.id, 'wget -q -O- http://db/');
    assert.match(dbPage, /\S+ \d+\.\d+\.\d+\.\d+/, 'api reached db');
    // admin (on back only) reaches db too; the migrate job did, by exiting 0.
    const [admin] = await running('app_admin');
    assert.match(await lab.execIn(admin.id, 'wget -q -O- http://db/'), /\S+ \d+\.\d+\.\d+\.\d+/, 'admin reached db');
    // web is not on db's network: the short name is not answered there.
    assert.match(await lab.execIn(web.id, 'nslookup db 2>&1; true'), /NXDOMAIN|can't find/i);
  });

  it('publishes the port on every host', async () => {
    for (const h of lab.state.hosts) await eventually(async () => !!(await wget(`http://${h.addr}:${PUBLISHED}/`)), `port ${PUBLISHED} on ${h.addr}`, 30_000);
  });

  it('a redeploy with one changed service restarts only that one, and does not wait', async () => {
    const ids = async (s: string) => (await running(s)).map((t) => t.id).sort();
    const before = { api: await ids('app_api'), db: await ids('app_db'), web: await ids('app_web'), admin: await ids('app_admin') };
    const migrated = (await jobStatus('app_migrate'))!.iteration;
    const same = await lab.convoy('stack', 'deploy', '-d', '-c', file('v1b.yml', composeFile(lab.image)), 'app');
    assert.match(same, /up to date \(6 services unchanged\)/);
    const out = await lab.convoy('stack', 'deploy', '-d', '-c', file('v2.yml', composeFile(lab.image, { webEnv: '2' })), 'app');
    assert.match(out, /Updating service app_web/);
    assert.doesNotMatch(out, /app_api|app_db|app_admin|app_migrate|app_cron|Waiting/);
    await eventually(async () => {
      const now = await ids('app_web');
      return now.length === 2 && now.every((id) => !before.web.includes(id));
    }, 'web replaced', 120_000);
    assert.deepEqual(await ids('app_api'), before.api, 'api untouched');
    assert.deepEqual(await ids('app_db'), before.db, 'db untouched');
    assert.deepEqual(await ids('app_admin'), before.admin, 'admin untouched');
    assert.equal((await jobStatus('app_migrate'))!.iteration, migrated, 'the job did not run again');
  });

  it('--prune removes the services the file no longer has', async () => {
    const kept = await lab.convoy('stack', 'deploy', '-d', '-c', file('v3.yml', composeFile(lab.image, { withWeb: false })), 'app');
    assert.doesNotMatch(kept, /Removing/);
    assert.ok((await lab.api.listServices({})).services.some((e) => e.service?.spec?.name === 'app_web'), 'without --prune web stays');
    const out = await lab.convoy('stack', 'deploy', '-d', '--prune', '-c', file('v3.yml', composeFile(lab.image, { withWeb: false })), 'app');
    assert.match(out, /Removing service app_web/);
    assert.doesNotMatch(out, /Removing service app_(?!web)/);
    await eventually(async () => !(await lab.api.listServices({})).services.some((e) => e.service?.spec?.name === 'app_web'), 'app_web gone', 30_000);
    assert.match(await lab.convoy('stack', 'ls'), /^app\s+5$/m);
  });

  it('the scheduled job fires on the minute and its run completes', async () => {
    // Created with the stack (a minute or more ago, or less): the first whole minute since starts run 1.
    await eventually(async () => ((await jobStatus('app_cron'))?.finishedIteration ?? 0) >= 1, 'the schedule fired and the run completed', 90_000);
    const js = (await jobStatus('app_cron'))!;
    // A scheduled job does not run at creation (docs/jobs.md): the run came from a fire time, on a whole minute.
    assert.ok(js.lastScheduleAt > 0 && js.lastScheduleAt % 60_000 === 0, `on a whole minute: ${js.lastScheduleAt}`);
    assert.ok(js.startedAt >= js.lastScheduleAt, JSON.stringify(js));
    const done = (await tasksOf('app_cron')).filter((t) => t.status?.state === 'COMPLETE');
    assert.ok(done.length >= 1 && done.every((t) => t.status?.exitCode === 0), JSON.stringify(done.map((t) => t.status)));
  });

  it('stack rm removes every object of the stack, leaves no key of it in etcd and nothing of its tasks on any host', async () => {
    // What the stack made, to look for afterwards.
    const stackServices = (await lab.api.listServices({})).services.map((e) => e.service!).filter((s) => s.spec?.name.startsWith('app_'));
    assert.equal(stackServices.length, 5);
    const taskIds: string[] = [];
    for (const s of stackServices) taskIds.push(...(await tasksOf(s.id)).map((t) => t.id));
    // web's tasks (pruned) and older ones the reaper took are gone already; these are the ones to follow.
    assert.ok(taskIds.length >= 6, taskIds.join(','));
    const networkIds = (await lab.api.listNetworks({})).networks.filter((n) => n.spec?.name.startsWith('app_')).map((n) => n.id);
    const secretIds = (await lab.api.listSecrets({})).secrets.filter((s) => s.secret?.spec?.name === 'app_s').map((s) => s.secret!.id);
    const configIds = (await lab.api.listConfigs({})).configs.filter((c) => c.config?.spec?.name === 'app_c').map((c) => c.config!.id);
    assert.equal(networkIds.length, 2);
    assert.equal(secretIds.length, 1);
    assert.equal(configIds.length, 1);
    const ids = [...stackServices.map((s) => s.id), ...taskIds, ...networkIds, ...secretIds, ...configIds];
    const [db] = await running('app_db');
    const dbHost = (await hostOf(db)).host;
    // Before: the keyspace does hold the stack (else the check after proves nothing).
    assert.match(await labEtcdctl(lab.state, ['get', '--prefix', '']), /"com\.docker\.stack\.namespace":"app"/);

    await lab.convoy('stack', 'rm', 'app');
    const services = (await lab.api.listServices({})).services.map((e) => e.service?.spec?.name);
    assert.deepEqual(services, ['bystander']);
    const nets = (await lab.api.listNetworks({})).networks.map((n) => n.spec?.name ?? '');
    assert.ok(!nets.some((n) => n.startsWith('app_')), nets.join(','));
    assert.ok(!(await lab.api.listSecrets({})).secrets.some((s) => s.secret?.spec?.name.startsWith('app_')), 'secret removed');
    assert.ok(!(await lab.api.listConfigs({})).configs.some((c) => c.config?.spec?.name.startsWith('app_')), 'config removed');
    assert.match(await lab.convoy('stack', 'ls'), /^NAME\s+SERVICES\s*$/);

    // etcd: the whole keyspace (keys and values, JSON). Convoy keeps no events or audit records in
    // etcd (NATS carries them), so nothing of the stack may survive: no key and no value naming any
    // of its objects (ids, "app_..." names, the stack label). Tasks go once their agents reported
    // them stopped and the reaper took them: waited for.
    let left: string[] = [];
    await eventually(
      async () => {
        const keys = (await labEtcdctl(lab.state, ['get', '--prefix', '', '--keys-only'])).split('\n').filter(Boolean);
        const all = (await labEtcdctl(lab.state, ['get', '--prefix', ''])).split('\n');
        left = [
          ...keys.filter((k) => k.includes('app_') || ids.some((id) => k.includes(id))),
          ...all.filter((l) => l.includes('"app_') || l.includes('"com.docker.stack.namespace":"app"') || ids.some((id) => l.includes(id))).map((l) => l.slice(0, 300)),
        ];
        return left.length === 0;
      },
      'no key of the stack in etcd',
      90_000,
    ).catch((e: Error) => {
      throw new Error(`${e.message}; left:\n${left.join('\n')}`);
    });

    // Hosts: no container (state dir, log), network namespace, veth or secret/config tmpfs of any task of the stack.
    const remains = async (): Promise<string[]> => {
      const found: string[] = [];
      const netns = fs.existsSync('/run/netns') ? fs.readdirSync('/run/netns') : [];
      const files = fs.existsSync(DEFAULT_TASK_FILES_ROOT) ? fs.readdirSync(DEFAULT_TASK_FILES_ROOT) : [];
      for (const h of lab.state.hosts) {
        const ex = new ContainerExecutor({ stateDir: h.agentDir });
        const containers = (await ex.list().finally(() => ex.close())).map((c) => c.taskId);
        const links = (await execFileP('ip', ['-n', h.netns, '-o', 'link', 'show'], { encoding: 'utf8' })).stdout;
        for (const id of taskIds) {
          if (containers.includes(id)) found.push(`${h.netns}: container ${id}`);
          if (fs.existsSync(path.join(h.agentDir, 'containers', id))) found.push(`${h.netns}: containers/${id}`);
          if (fs.existsSync(path.join(h.agentDir, 'logs', `${id}.log`))) found.push(`${h.netns}: logs/${id}.log`);
          if (links.includes(`${vethName(id)}@`) || links.includes(`${vethName(id)}:`)) found.push(`${h.netns}: veth ${vethName(id)} of ${id}`);
        }
      }
      for (const id of taskIds) {
        if (netns.includes(taskNetnsName(id))) found.push(`netns ${taskNetnsName(id)}`);
        if (files.includes(id)) found.push(`${DEFAULT_TASK_FILES_ROOT}/${id}`);
      }
      return found;
    };
    let found: string[] = [];
    await eventually(async () => (found = await remains()).length === 0, 'nothing of the stack on any host', 60_000).catch((e: Error) => {
      throw new Error(`${e.message}; left: ${found.join(', ')}`);
    });
    await eventually(async () => (await lab.api.listTasks({})).tasks.every((t) => t.serviceName === 'bystander'), 'only the bystander has tasks', 30_000);
    // As Docker's stack rm, Convoy keeps named volumes' data (docs/stacks.md): `app_data` is still on db's host.
    assert.equal(fs.readFileSync(path.join(dbHost.agentDir, 'volumes', 'app_data', '_data', 'x'), 'utf8').trim(), 'stored');
  });
});
