// stack deploy/rm against the real Control API on a MemoryStore (the
// manager's own defaults and validation, no processes): a redeploy changes
// only what changed, --prune, rm removes the stack's objects and nothing
// else, refusals write nothing, depends_on waits on a first deployment.
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { ServiceSpec, Task } from '../../proto/mod';
import { connectControl, type ConnectedApi } from '../client';
import { PLAINTEXT_FOR_TESTS } from '../../proto/client';
import { startControlHarness, type ControlHarness } from '../../manager/controlapi/testing/harness';
import { NAMESPACE_LABEL } from './convert';
import { canonicalSpec, conditionMet, deployStack, removeStack, type StackApi } from './deploy';
import { loadStack } from './load';

let dir: string;
let h: ControlHarness;
let conn: ConnectedApi;

function planOf(text: string, stack = 'app') {
  const f = path.join(dir, `${stack}-${Math.random().toString(36).slice(2)}.yml`);
  fs.writeFileSync(f, text);
  return loadStack(stack, { files: [f], env: {}, cwd: dir });
}

const STACK = (webImage: string, extra = '') => `services:
  web:
    image: reg.local/web:${webImage}
    ports: ["8080:80"]
    networks: [front, back]
    deploy: {replicas: 2}
  api:
    image: reg.local/api:1
    networks: [back]
    healthcheck: {test: "true", interval: 1s}
  db:
    image: reg.local/db:1
    networks: [back]
${extra}networks:
  front: {}
  back: {}
`;

async function names(api: StackApi): Promise<string[]> {
  return (await api.listServices({ name: '', labels: {} })).services.map((e) => e.service!.spec!.name).sort();
}

describe('stack deploy (Control API on a MemoryStore)', function () {
  this.timeout(20_000);
  beforeEach(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'convoy-stack-deploy-'));
    h = await startControlHarness();
    conn = connectControl(h.addr, PLAINTEXT_FOR_TESTS);
  });
  afterEach(async () => {
    conn.close();
    await h.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('creates networks and services with scoped names and the namespace label; a redeploy with nothing changed writes nothing', async () => {
    const api = conn.api;
    const out: string[] = [];
    const r = await deployStack(api, planOf(STACK('1')), { out: (s) => out.push(s) });
    assert.deepEqual(r.created.sort(), ['app_api', 'app_db', 'app_web']);
    assert.deepEqual(r.networksCreated.sort(), ['app_back', 'app_front']);
    const nets = (await api.listNetworks({})).networks.filter((n) => n.spec?.labels?.[NAMESPACE_LABEL] === 'app');
    assert.equal(nets.length, 2);
    const web = (await api.getService({ service: 'app_web' })).service!;
    assert.equal(web.spec!.labels[NAMESPACE_LABEL], 'app');
    assert.equal(web.spec!.container!.labels[NAMESPACE_LABEL], 'app');
    assert.deepEqual(web.spec!.networkAliases, [{ network: 'app_front', aliases: ['web'] }, { network: 'app_back', aliases: ['web'] }]);
    const before = new Map((await api.listServices({ name: '', labels: {} })).services.map((e) => [e.service!.id, e.service!.meta!.version]));

    const again = await deployStack(api, planOf(STACK('1')), { out: () => undefined });
    assert.deepEqual(again.updated, []);
    assert.deepEqual(again.created, []);
    assert.deepEqual(again.unchanged.sort(), ['app_api', 'app_db', 'app_web']);
    const after = new Map((await api.listServices({ name: '', labels: {} })).services.map((e) => [e.service!.id, e.service!.meta!.version]));
    assert.deepEqual(after, before, 'no service was written');
  });

  it('a redeploy with one changed service updates only that one; --prune removes services no longer in the file', async () => {
    const api = conn.api;
    await deployStack(api, planOf(STACK('1', '  old:\n    image: reg.local/old:1\n')), { out: () => undefined });
    const specVersions = async () => new Map((await api.listServices({ name: '', labels: {} })).services.map((e) => [e.service!.spec!.name, e.service!.specVersion]));
    const v0 = await specVersions();
    const r = await deployStack(api, planOf(STACK('2')), { out: () => undefined });
    assert.deepEqual(r.updated, ['app_web']);
    assert.deepEqual(r.removed, [], 'nothing removed without --prune');
    const v1 = await specVersions();
    assert.ok(v1.get('app_web')! > v0.get('app_web')!);
    for (const n of ['app_api', 'app_db', 'app_old']) assert.equal(v1.get(n), v0.get(n), `${n} untouched`);
    const p = await deployStack(api, planOf(STACK('2')), { out: () => undefined, prune: true });
    assert.deepEqual(p.removed, ['app_old']);
    assert.deepEqual(p.updated, []);
    assert.deepEqual(await names(api), ['app_api', 'app_db', 'app_web']);
  });

  it('stack rm removes everything the stack created and nothing else', async () => {
    const api = conn.api;
    await api.createNetwork({ spec: { name: 'mine', subnet: '', labels: {}, internal: false } });
    await api.createService({ spec: { name: 'other', container: { image: 'reg.local/o:1' }, replicas: 1 } as unknown as ServiceSpec });
    await deployStack(api, planOf(STACK('1')), { out: () => undefined });
    await deployStack(api, planOf('services:\n  web:\n    image: reg.local/b:1\n', 'app2'), { out: () => undefined });
    const r = await removeStack(api, 'app', () => undefined);
    assert.deepEqual(r.failed, []);
    assert.deepEqual(await names(api), ['app2_web', 'other']);
    const nets = (await api.listNetworks({})).networks.map((n) => n.spec!.name).sort();
    assert.ok(nets.includes('mine') && nets.includes('app2_default'));
    assert.ok(!nets.some((n) => n.startsWith('app_')), nets.join(','));
  });

  it('refusals come before the first write: a missing external network, a name clash, a missing external secret', async () => {
    const api = conn.api;
    await assert.rejects(deployStack(api, planOf('services:\n  web:\n    image: r/w:1\n    networks: [ext]\nnetworks:\n  ext: {external: true}\n'), { out: () => undefined }), /networks\.ext: external network "ext" not found/);
    await api.createService({ spec: { name: 'app_db', container: { image: 'reg.local/o:1' }, replicas: 1 } as unknown as ServiceSpec });
    await assert.rejects(deployStack(api, planOf(STACK('1')), { out: () => undefined }), /services\.db: service "app_db" exists and is not part of stack app/);
    assert.deepEqual(await names(api), ['app_db'], 'nothing created');
    assert.equal((await api.listNetworks({})).networks.filter((n) => n.spec?.name?.startsWith('app_')).length, 0);

    // An ingress port held by a service outside the stack.
    await api.createService({ spec: { name: 'holder', container: { image: 'reg.local/o:1' }, replicas: 1, endpoint: { mode: 'VIP', ports: [{ targetPort: 80, publishedPort: 8080, protocol: 'tcp' }] } } as unknown as ServiceSpec });
    await assert.rejects(deployStack(api, planOf('services:\n  web:\n    image: r/w:1\n    ports: ["8080:80"]\n'), { out: () => undefined }), /services\.web\.ports: port 8080\/tcp is already published by service "holder"/);
    await api.removeService({ service: 'holder' });
    // A manager with the secrets API (issue 11) that lacks the external secret.
    fs.writeFileSync(path.join(dir, 'pw'), 'x');
    const withSecrets: StackApi = { ...api, listSecrets: async () => ({ secrets: [] }), createSecret: async () => ({}), removeSecret: async () => ({}), listConfigs: async () => ({ configs: [] }), createConfig: async () => ({}), removeConfig: async () => ({}) };
    await assert.rejects(deployStack(withSecrets, planOf('services:\n  web:\n    image: r/w:1\n    secrets: [tls]\nsecrets:\n  tls: {external: true}\n'), { out: () => undefined }), /secrets\.tls: external secret "tls" not found/);
    assert.deepEqual(await names(api), ['app_db'], 'nothing created');
    // With the real secrets API: a file secret is created as STACK_key, labelled, referenced by the service, and its value never comes back.
    await api.removeService({ service: 'app_db' });
    await deployStack(api, planOf('services:\n  web:\n    image: r/w:1\n    secrets: [pw]\nsecrets:\n  pw: {file: ./pw}\n'), { out: () => undefined });
    const secrets = (await api.listSecrets({})).secrets;
    assert.deepEqual(secrets.map((x) => [x.secret?.spec?.name, x.secret?.spec?.labels?.['com.docker.stack.namespace']]), [['app_pw', 'app']]);
    assert.ok(!JSON.stringify(secrets).includes('"x"'));
    const web = (await api.getService({ service: 'app_web' })).service!;
    assert.deepEqual(web.spec!.container!.secrets.map((r) => [r.name, r.target]), [['app_pw', '/run/secrets/pw']]);
  });

  it('depends_on: a first deployment waits for each condition before creating the dependant; a redeploy does not wait', async () => {
    const api = conn.api;
    const plan = planOf('services:\n  web:\n    image: r/w:1\n    depends_on:\n      db: {condition: service_healthy}\n  db:\n    image: r/d:1\n    healthcheck: {test: "true"}\n');
    let polls = 0;
    const order: string[] = [];
    const spy: StackApi = {
      ...api,
      createService: async (req) => {
        order.push(req.spec?.name ?? '');
        return api.createService(req);
      },
      listTasks: async () => {
        polls++;
        order.push(`poll${polls}`);
        const health = polls < 3 ? 'starting' : 'healthy';
        return { tasks: [{ desiredState: 'RUNNING', status: { state: 'RUNNING', health, exitCode: 0 } } as unknown as Task], nextPageToken: '' };
      },
    };
    await deployStack(spy, plan, { out: () => undefined, sleep: async () => undefined });
    assert.deepEqual(order, ['app_db', 'poll1', 'poll2', 'poll3', 'app_web']);
    order.length = 0;
    await deployStack(spy, planOf('services:\n  web:\n    image: r/w:2\n    depends_on:\n      db: {condition: service_healthy}\n  db:\n    image: r/d:1\n    healthcheck: {test: "true"}\n'), { out: () => undefined, sleep: async () => undefined });
    assert.deepEqual(order, [], 'the redeploy polled nothing');
  });

  it('--resolve-image: always pins tags to digests, changed keeps an unchanged pin, never leaves tags; a failed lookup never rolls a service', async () => {
    const api = conn.api;
    const D = (n: number) => `sha256:${String(n).repeat(64).slice(0, 64)}`;
    let digest = D(1);
    const lookups: string[] = [];
    const resolveImage = async (image: string) => {
      lookups.push(image);
      return digest ? `${image}@${digest}` : undefined;
    };
    const file = 'services:\n  web:\n    image: reg.local/web:1\n  db:\n    image: reg.local/db:1\n';
    await deployStack(api, planOf(file), { out: () => undefined, resolveMode: 'always', resolveImage });
    const image = async (n: string) => (await api.getService({ service: n })).service!.spec!.container!.image;
    assert.equal(await image('app_web'), `reg.local/web:1@${D(1)}`);
    // The tag moved: always follows it (an update), changed does not look it up.
    digest = D(2);
    lookups.length = 0;
    const c = await deployStack(api, planOf(file), { out: () => undefined, resolveMode: 'changed', resolveImage });
    assert.deepEqual(lookups, []);
    assert.deepEqual(c.updated, []);
    const a = await deployStack(api, planOf(file), { out: () => undefined, resolveMode: 'always', resolveImage });
    assert.deepEqual(a.updated.sort(), ['app_db', 'app_web']);
    assert.equal(await image('app_db'), `reg.local/db:1@${D(2)}`);
    // The registry is down: nothing changes, with Docker's warning only for images with no pin to keep.
    digest = '';
    const warnings: string[] = [];
    const down = await deployStack(api, planOf(file + '  new:\n    image: reg.local/new:1\n'), { out: () => undefined, resolveMode: 'always', resolveImage, warn: (w) => warnings.push(w) });
    assert.deepEqual(down.updated, []);
    assert.deepEqual(down.created, ['app_new']);
    assert.equal(await image('app_new'), 'reg.local/new:1');
    assert.equal(warnings.length, 1);
    assert.match(warnings[0], /reg\.local\/new:1 could not be accessed on a registry/);
    // never: the tag as written (the pin is dropped: an update, as with Docker).
    const n = await deployStack(api, planOf(file), { out: () => undefined, resolveMode: 'never', resolveImage });
    assert.deepEqual(n.updated.sort(), ['app_db', 'app_web']);
    assert.equal(await image('app_web'), 'reg.local/web:1');
  });

  it('conditionMet: started, healthy (needs a health check), completed successfully', () => {
    const spec = { mode: 'REPLICATED', replicas: 2, restart: { condition: 'RESTART_NONE' } } as unknown as ServiceSpec;
    const t = (state: string, health = '', exitCode = 0, desired = 'RUNNING') => ({ desiredState: desired, status: { state, health, exitCode } }) as unknown as Task;
    assert.equal(conditionMet(spec, [t('RUNNING'), t('STARTING')], 'service_started'), false);
    assert.equal(conditionMet(spec, [t('RUNNING'), t('RUNNING')], 'service_started'), true);
    assert.equal(conditionMet(spec, [t('RUNNING', 'healthy'), t('RUNNING', 'starting')], 'service_healthy'), false);
    assert.equal(conditionMet(spec, [t('RUNNING', 'healthy'), t('RUNNING', 'healthy')], 'service_healthy'), true);
    assert.match(String(conditionMet(spec, [t('RUNNING', 'none'), t('RUNNING', 'none')], 'service_healthy')), /no health check/);
    assert.equal(conditionMet(spec, [t('COMPLETE', '', 0, 'SHUTDOWN'), t('COMPLETE', '', 0, 'SHUTDOWN')], 'service_completed_successfully'), true);
    assert.match(String(conditionMet(spec, [t('FAILED', '', 3, 'SHUTDOWN')], 'service_completed_successfully')), /exit code 3/);
  });

  it('canonicalSpec ignores proto3 zero values and the defaults the manager fills', () => {
    const plan = planOf('services:\n  web:\n    image: r/w:1\n');
    const a = plan.services[0].spec;
    const b = JSON.parse(JSON.stringify(a)) as ServiceSpec;
    b.restart = null;
    (b as unknown as Record<string, unknown>).autoscale = undefined;
    assert.equal(canonicalSpec(a), canonicalSpec(b));
    b.replicas = 3;
    assert.notEqual(canonicalSpec(a), canonicalSpec(b));
  });
});
