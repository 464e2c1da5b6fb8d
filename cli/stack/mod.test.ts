// The stack verbs through the whole command tree (cli/main.ts run()), with an
// object literal for the manager: a bad file is one line and exit status 1
// with no call made; config prints YAML; ls groups services by stack.
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { controlApiOf } from '../../proto/client';
import type { Service } from '../../proto/mod';
import type { CliIO, ControlApi, ControlMethod } from '../client';
import { run } from '../main';

function fakeIO(api: Partial<ControlApi>, env: NodeJS.ProcessEnv = {}) {
  let out = '';
  let err = '';
  let code = 0;
  const calls: ControlMethod[] = [];
  const full = controlApiOf(async (m, req) => {
    calls.push(m);
    const fn = api[m];
    if (!fn) throw new Error(`unexpected call ${m}`);
    return (fn as (r: unknown) => Promise<never>)(req);
  });
  const io: CliIO = { out: (s) => void (out += s), err: (s) => void (err += s), now: () => 0, env, connect: () => ({ api: full, close: () => undefined }), setExitCode: (c) => void (code = c) };
  return { io, out: () => out, err: () => err, code: () => code, calls };
}

describe('convoy stack (program, fake manager)', () => {
  let dir: string;
  beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'convoy-stack-cli-'))));
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('refuses a bad file with one line naming file, line, path and reason, exit 1, and calls nothing', async () => {
    const f = path.join(dir, 'bad.yml');
    fs.writeFileSync(f, 'services:\n  web:\n    image: x\n    deploy:\n      replicas: many\n');
    const r = fakeIO({});
    const code = await run(['stack', 'deploy', '-c', f, 'app'], r.io);
    assert.equal(code, 1);
    assert.deepEqual(r.calls, []);
    assert.equal(r.err().trim().split('\n').length, 1);
    assert.match(r.err(), /^convoy: .*bad\.yml:5: services\.web\.deploy\.replicas: must be an integer \(got a string\)\n$/);
  });

  it('deploy waits until the services it wrote converged (plain lines when piped); -d does not', async () => {
    const f = path.join(dir, 'app.yml');
    fs.writeFileSync(f, 'services:\n  web:\n    image: registry.local/web:1\n    deploy:\n      replicas: 1\n      update_config:\n        monitor: 1s\n');
    let created: Service | undefined;
    let clock = 0;
    const api: Partial<ControlApi> = {
      listNetworks: async () => ({ networks: [], nextPageToken: '' }),
      listServices: async () => ({ services: [], nextPageToken: '' }),
      createNetwork: async (req) => ({ network: { id: 'n1', meta: null, spec: req.spec as never, vni: 1, subnet: '' } }),
      createService: async (req) => {
        created = { id: 'svc1', meta: { version: 1, createdAt: 1, updatedAt: 1 }, spec: req.spec, specVersion: 1, updateStatus: null } as unknown as Service;
        return { service: created, counts: null };
      },
      getService: async () => ({ service: created!, counts: null }),
      listTasks: async () => ({
        tasks: [{ id: 't1', meta: { createdAt: 2 }, serviceId: 'svc1', slot: 1, nodeId: 'n', specVersion: 1, desiredState: 'RUNNING', status: { state: 'RUNNING', timestamp: 2 } } as never],
        nextPageToken: '',
      }),
    };
    const r = fakeIO(api);
    // A clock that moves 1 s a look: the 1 s verify period passes on the second poll.
    r.io.now = () => (clock += 1000);
    assert.equal(await run(['stack', 'deploy', '--resolve-image', 'never', '-c', f, 'app'], r.io), 0, r.err());
    assert.match(r.out(), /Creating service app_web\napp_web: overall progress: 1\/1 tasks running\napp_web: 1\/1: running\napp_web: verify: Waiting 1 second[^\n]*\napp_web: verify: converged\n$/);
    const d = fakeIO(api);
    assert.equal(await run(['stack', 'deploy', '-d', '--resolve-image', 'never', '-c', f, 'app'], d.io), 0, d.err());
    assert.ok(!d.calls.includes('listTasks'), 'no wait with -d');
  });

  it('needs -c', async () => {
    const r = fakeIO({});
    assert.equal(await run(['stack', 'deploy', 'app'], r.io), 1);
    assert.match(r.err(), /--compose-file: at least one compose file is required/);
  });

  it('config prints the merged file; warnings go to stderr', async () => {
    const f = path.join(dir, 'a.yml');
    fs.writeFileSync(f, 'services:\n  web:\n    image: r/w:${T:-5}\n    hostname: h${NOPE}\n');
    const r = fakeIO({});
    assert.equal(await run(['stack', 'config', '-c', f], r.io), 0);
    assert.match(r.out(), /image: r\/w:5/);
    assert.match(r.err(), /warning: .*a\.yml:4: services\.web\.hostname: variable NOPE is not set/);
  });

  it('node promote/demote set the role with the version read, one line per failure', async () => {
    const updates: unknown[] = [];
    const r = fakeIO({
      getNode: async (req) => {
        if (req.node === 'ghost') throw Object.assign(new Error('5 NOT_FOUND: node "ghost" not found'), { code: 5, details: 'node "ghost" not found', metadata: {} });
        return { node: { id: `id-${req.node}`, meta: { version: 7 }, spec: { role: 'WORKER', availability: 'ACTIVE', labels: { a: 'b' } } } as never };
      },
      updateNode: async (req) => {
        updates.push(req);
        return { node: null };
      },
    });
    assert.equal(await run(['node', 'promote', 'h1', 'ghost'], r.io), 1);
    assert.deepEqual(updates, [{ node: 'id-h1', version: 7, spec: { role: 'MANAGER', availability: 'ACTIVE', labels: { a: 'b' } } }]);
    assert.match(r.out(), /Node h1 promoted to a manager/);
    assert.match(r.err(), /^convoy: node "ghost" not found\n$/);
    const d = fakeIO({ getNode: async () => ({ node: { id: 'x', meta: { version: 1 }, spec: { role: 'WORKER', availability: 'ACTIVE', labels: {} } } as never }) });
    assert.equal(await run(['node', 'demote', 'x'], d.io), 0);
    assert.match(d.out(), /already a worker/);
  });

  it('ls counts the services of each stack by the namespace label', async () => {
    const svc = (name: string, stack?: string) => ({ service: { id: name, spec: { name, labels: stack ? { 'com.docker.stack.namespace': stack } : {} } } as unknown as Service, counts: null });
    const r = fakeIO({ listServices: async () => ({ services: [svc('a_x', 'a'), svc('a_y', 'a'), svc('b_x', 'b'), svc('loose')], nextPageToken: '' }) });
    assert.equal(await run(['stack', 'ls'], r.io), 0);
    assert.match(r.out(), /^NAME\s+SERVICES\na\s+2\nb\s+1\n$/);
  });
});
