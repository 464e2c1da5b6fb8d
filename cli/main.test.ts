import { strict as assert } from 'node:assert';
import * as grpc from '@grpc/grpc-js';
import type { Service, ServiceSpec, Task } from '../proto/mod';
import { buildServiceSpec } from './flags';
import { buildProgram, run } from './main';
import type { ControlRequest } from './client';
import { fake, NOW } from './testing/fake';

function grpcError(code: grpc.status, details: string): Error {
  return Object.assign(new Error(`${code} ${grpc.status[code]}: ${details}`), { code, details, metadata: new grpc.Metadata() });
}

function service(name: string, spec: Partial<ServiceSpec> = {}, id = `${name}0123456789abcdef`): Service {
  return {
    id,
    meta: { version: 42, createdAt: NOW - 60_000, updatedAt: NOW - 5000 },
    spec: { ...buildServiceSpec('registry.local/web:1', [], { name }), ...spec },
    previousSpec: null,
    specVersion: 1,
    updateStatus: null,
    endpoint: null,
    jobStatus: null,
  };
}

function task(id: string, slot: number, state: Task['desiredState'], observed: Task['desiredState'], at: number, extra: Partial<Task> = {}): Task {
  return {
    id,
    meta: { version: 1, createdAt: at, updatedAt: at },
    serviceId: 'svc1',
    serviceName: 'web',
    slot,
    nodeId: 'node1aaaaaaaaaaaaaaa',
    spec: { container: { ...buildServiceSpec('registry.local/web:1', [], {}).container!, image: 'registry.local/web:1' }, resources: null, restart: null, placement: null, networks: [], ports: [] },
    specVersion: 1,
    status: { state: observed, timestamp: at, message: '', err: '', exitCode: 0, pid: 0, health: '' },
    desiredState: state,
    networks: [],
    endpointPorts: [],
    attempt: 0,
    jobIteration: 0,
    ...extra,
  };
}

describe('convoy command tree', () => {
  it('builds only the top-level command the command line names, and all of them otherwise', () => {
    const { io } = fake({});
    const all = buildProgram(io).commands.map((c) => c.name());
    assert.ok(all.length > 10 && all.includes('service') && all.includes('agent'));
    assert.deepEqual(buildProgram(io, ['service', 'ls']).commands.map((c) => c.name()), ['service']);
    assert.deepEqual(buildProgram(io, ['config', 'ls']).commands.map((c) => c.name()), ['config']);
    for (const args of [['--help'], ['-H', 'h:1', 'service', 'ls'], ['servic'], []]) assert.deepEqual(buildProgram(io, args).commands.map((c) => c.name()), all, args.join(' '));
  });
});

describe('convoy (program, fake manager)', () => {
  it('prints --version and --help with exit status 0', async () => {
    const f = fake({});
    assert.equal(await run(['--version'], f.io), 0);
    assert.match(f.out(), /^\d+\.\d+\.\d+\n$/);
    const h = fake({});
    assert.equal(await run(['service', 'create', '--help'], h.io), 0);
    assert.match(h.out(), /--publish <port>/);
    assert.match(h.out(), /--update-failure-action <action>/);
  });

  it('refuses an unknown flag in one line, exit status 1', async () => {
    const f = fake({});
    assert.equal(await run(['service', 'ls', '--bogus'], f.io), 1);
    assert.equal(f.err().trim().split('\n')[0], "convoy: unknown option '--bogus'");
  });

  it('service create sends the spec built from the flags and prints the id', async () => {
    const f = fake({ createService: async (req) => ({ service: service(req.spec?.name ?? ''), counts: null }) });
    const code = await run(['service', 'create', '-d', '--name', 'web', '--replicas', '3', '-p', '8080:80', 'registry.local/web:1', 'sh', '-c', 'echo hi', '--not-a-convoy-flag'], f.io);
    assert.equal(code, 0, f.err());
    const req = f.calls[0].req as ControlRequest<'createService'>;
    assert.equal(req.spec?.name, 'web');
    assert.equal(req.spec?.replicas, 3);
    assert.deepEqual(req.spec?.container?.args, ['sh', '-c', 'echo hi', '--not-a-convoy-flag'], 'flags after the image belong to the command');
    assert.equal(req.spec?.endpoint?.ports?.[0]?.publishedPort, 8080);
    assert.equal(f.out(), 'web0123456789abcdef\n');
  });

  it('service create: the container option flags reach the spec; --host is the extra host, -H before the verb the manager', async () => {
    const f = fake({ createService: async (req) => ({ service: service(req.spec?.name ?? ''), counts: null }) });
    const code = await run(['-H', 'mgr:7420', 'service', 'create', '-d', '--name', 'web', '--sysctl', 'net.core.somaxconn=1024', '--ulimit', 'nofile=10:20', '--init', '-t', '--host', 'db:10.0.0.1', '--dns', '10.0.0.53', '--tmpfs', '/run:size=1m', '--hostname', '{{.Service.Name}}-{{.Task.Slot}}', 'registry.local/web:1'], f.io);
    assert.equal(code, 0, f.err());
    const c = (f.calls[0].req as ControlRequest<'createService'>).spec?.container;
    assert.deepEqual(c?.sysctls, { 'net.core.somaxconn': '1024' });
    assert.deepEqual(c?.ulimits, [{ name: 'nofile', soft: 10, hard: 20 }]);
    assert.deepEqual([c?.init, c?.tty, c?.privileged], [true, true, false]);
    assert.deepEqual(c?.hosts, ['10.0.0.1 db']);
    assert.deepEqual(c?.dnsConfig?.nameservers, ['10.0.0.53']);
    assert.equal(c?.mounts?.[0]?.tmpfsSizeBytes, 1 << 20);
    assert.equal(c?.hostname, '{{.Service.Name}}-{{.Task.Slot}}');
    const bad = fake({});
    assert.equal(await run(['service', 'create', '--sysctl', 'kernel.hostname=x', 'registry.local/web:1'], bad.io), 1);
    assert.match(bad.err(), /^convoy: --sysctl: "kernel\.hostname" is not namespaced/);
    assert.equal(bad.calls.length, 0, 'nothing sent');
  });

  it('a refused spec is one line naming the field, exit status 1', async () => {
    const f = fake({
      createService: async () => {
        throw grpcError(grpc.status.INVALID_ARGUMENT, 'spec.replicas: must be >= 0');
      },
    });
    assert.equal(await run(['service', 'create', '--name', 'web', '--replicas', '-1', 'img'], f.io), 1);
    assert.equal(f.err(), 'convoy: spec.replicas: must be >= 0\n');
    assert.equal(f.out(), '');
  });

  it('a bad flag value is refused before calling the manager', async () => {
    const f = fake({});
    assert.equal(await run(['service', 'create', '--reserve-memory', '64X', 'img'], f.io), 1);
    assert.equal(f.err(), 'convoy: --reserve-memory: "64X" is not a size (e.g. 512k, 64M, 1G)\n');
    assert.equal(f.calls.length, 0);
  });

  it('service ls prints the table', async () => {
    const web = service('web', { endpoint: { mode: 'VIP', ports: [{ name: '', protocol: 'tcp', targetPort: 80, publishedPort: 8080, publishMode: 'INGRESS' }] } });
    web.spec!.autoscale = { enabled: true, minReplicas: 2, maxReplicas: 20, targetCpuPercent: 70, targetMemoryPercent: 0, scaleDownStabilizationMs: 0 };
    const api = service('api', { mode: 'GLOBAL', replicas: 0 }, 'api9876543210fedcba');
    const f = fake({
      listServices: async () => ({
        services: [
          { service: web, counts: { running: 2, desired: 3, completed: 0, failed: 0 } },
          { service: api, counts: { running: 4, desired: 4, completed: 0, failed: 0 } },
        ],
      }),
    });
    assert.equal(await run(['service', 'ls'], f.io), 0, f.err());
    assert.equal(
      f.out(),
      [
        'ID             NAME   MODE         REPLICAS   IMAGE                  PORTS            AUTOSCALE',
        'api987654321   api    global       4/4        registry.local/web:1                    -',
        'web012345678   web    replicated   2/3        registry.local/web:1   *:8080->80/tcp   2-20 cpu 70%',
        '',
      ].join('\n'),
    );
    const q = fake({ listServices: async () => ({ services: [{ service: web, counts: null }] }) });
    await run(['service', 'ls', '-q'], q.io);
    assert.equal(q.out(), 'web012345678\n');
    const j = fake({ listServices: async () => ({ services: [{ service: web, counts: { running: 2, desired: 3, completed: 0, failed: 0 } }] }) });
    await run(['service', 'ls', '--format', 'json'], j.io);
    const parsed = JSON.parse(j.out()) as { service: Service; counts: { running: number } }[];
    assert.equal(parsed[0].service.spec?.name, 'web');
    assert.equal(parsed[0].counts.running, 2);
  });

  it('service ps shows slots with their history, node hostnames and ages', async () => {
    const tasks = [
      task('old1aaaaaaaaaaaa', 1, 'SHUTDOWN', 'FAILED', NOW - 60_000, { status: { state: 'FAILED', timestamp: NOW - 50_000, message: '', err: 'exit status 1', exitCode: 1, pid: 0, health: '' } }),
      task('new1aaaaaaaaaaaa', 1, 'RUNNING', 'RUNNING', NOW - 5000),
      task('new2aaaaaaaaaaaa', 2, 'RUNNING', 'PENDING', NOW - 120_000, {
        nodeId: '',
        status: { state: 'PENDING', timestamp: NOW - 120_000, message: 'no suitable node: insufficient memory on 3 nodes', err: '', exitCode: 0, pid: 0, health: '' },
      }),
    ];
    const f = fake({
      getService: async () => ({ service: service('web', {}, 'svc1'), counts: null }),
      listTasks: async (req) => {
        assert.equal(req.service, 'svc1', 'the service is resolved to its id first');
        return { tasks };
      },
      listNodes: async () => ({
        nodes: [{ id: 'node1aaaaaaaaaaaaaaa', meta: null, spec: null, description: { hostname: 'h1', platform: null, resources: null, engineLabels: {}, listeningTcp: [], listeningUdp: [], addresses: [] }, status: null, subnet: '', sessionId: '', leaseId: 0, usage: null }],
        leader: '',
      }),
    });
    assert.equal(await run(['service', 'ps', 'web'], f.io), 0, f.err());
    assert.equal(
      f.out(),
      [
        'ID             NAME        IMAGE                  NODE   DESIRED STATE   CURRENT STATE           ERROR                                              PORTS',
        'new1aaaaaaaa   web.1       registry.local/web:1   h1     Running         Running 5 seconds ago',
        'old1aaaaaaaa    \\_ web.1   registry.local/web:1   h1     Shutdown        Failed 50 seconds ago   exit status 1',
        'new2aaaaaaaa   web.2       registry.local/web:1          Running         Pending 2 minutes ago   no suitable node: insufficient memory on 3 nodes',
        '',
      ].join('\n'),
    );
  });

  it('service ps shows where a host-mode port of each task is reachable (its node address)', async () => {
    const ports = [
      { name: '', protocol: 'tcp', targetPort: 80, publishedPort: 30001, publishMode: 'HOST' as const },
      { name: '', protocol: 'tcp', targetPort: 443, publishedPort: 8443, publishMode: 'INGRESS' as const },
    ];
    const f = fake({
      getService: async () => ({ service: service('web', {}, 'svc1'), counts: null }),
      listTasks: async () => ({ tasks: [task('new1aaaaaaaaaaaa', 1, 'RUNNING', 'RUNNING', NOW - 5000, { endpointPorts: ports })] }),
      listNodes: async () => ({
        nodes: [
          {
            id: 'node1aaaaaaaaaaaaaaa',
            meta: null,
            spec: null,
            description: { hostname: 'h1', platform: null, resources: null, engineLabels: {}, listeningTcp: [], listeningUdp: [], addresses: [] },
            status: { state: 'NODE_READY', message: '', addr: '10.41.0.12', updatedAt: 0 },
            subnet: '',
            sessionId: '',
            leaseId: 0,
            usage: null,
          },
        ],
        leader: '',
      }),
    });
    assert.equal(await run(['service', 'ps', 'web'], f.io), 0, f.err());
    assert.match(f.out(), /web\.1 .* 10\.41\.0\.12:30001->80\/tcp \(host\), \*:8443->443\/tcp\n/);
  });

  it('service ps of an unknown service is one line', async () => {
    const f = fake({
      getService: async () => {
        throw grpcError(grpc.status.NOT_FOUND, 'service "nope" not found');
      },
    });
    assert.equal(await run(['service', 'ps', 'nope'], f.io), 1);
    assert.equal(f.err(), 'convoy: service "nope" not found\n');
  });

  it('service update applies the flags to the current spec and sends its version', async () => {
    const cur = service('web', {}, 'svc1');
    const f = fake({
      getService: async () => ({ service: cur, counts: null }),
      updateService: async (req) => ({ service: { ...cur, spec: req.spec as ServiceSpec }, counts: null }),
    });
    assert.equal(await run(['service', 'update', '-d', '--image', 'registry.local/web:2', '--env-add', 'X=1', '--force', 'web'], f.io), 0, f.err());
    const req = f.calls.find((c) => c.method === 'updateService')?.req as ControlRequest<'updateService'>;
    assert.equal(req.service, 'svc1');
    assert.equal(req.version, 42);
    assert.equal(req.force, true);
    assert.equal(req.spec?.container?.image, 'registry.local/web:2');
    assert.deepEqual(req.spec?.container?.env, ['X=1']);
    assert.equal(f.out(), 'web\n');
  });

  it('a lost compare-and-swap says to retry', async () => {
    const f = fake({
      getService: async () => ({ service: service('web'), counts: null }),
      updateService: async () => {
        throw grpcError(grpc.status.ABORTED, 'service "web" changed since version 42; retry');
      },
    });
    assert.equal(await run(['service', 'update', '--replicas', '2', 'web'], f.io), 1);
    assert.equal(f.err(), 'convoy: service "web" changed since version 42; retry\n');
  });

  it('service scale goes through every pair and reports each failure', async () => {
    const f = fake({
      scaleService: async (req) => {
        if (req.service === 'nope') throw grpcError(grpc.status.NOT_FOUND, 'service "nope" not found');
        return { service: service(req.service ?? ''), counts: null };
      },
    });
    assert.equal(await run(['service', 'scale', '-d', 'web=5', 'nope=1', 'api=3'], f.io), 1);
    assert.equal(f.out(), 'web scaled to 5\napi scaled to 3\n');
    assert.equal(f.err(), 'convoy: service "nope" not found\n');
  });

  it('uses --host, then CONVOY_HOST, then the default', async () => {
    const ok = { listServices: async () => ({ services: [] }) };
    const a = fake(ok, { CONVOY_HOST: 'env-host:7000' });
    await run(['service', 'ls'], a.io);
    assert.deepEqual(a.hosts, ['env-host:7000']);
    const b = fake(ok, { CONVOY_HOST: 'env-host:7000' });
    await run(['-H', 'flag-host:7001', 'service', 'ls'], b.io);
    await run(['service', 'ls', '--host', 'leaf-host'], b.io);
    assert.deepEqual(b.hosts, ['flag-host:7001', 'leaf-host:7420']);
    const c = fake(ok);
    await run(['service', 'ls'], c.io);
    assert.deepEqual(c.hosts, ['127.0.0.1:7420']);
  });

  it('an unreachable manager is one line with a hint', async () => {
    const f = fake({
      listNodes: async () => {
        throw Object.assign(grpcError(grpc.status.UNAVAILABLE, 'No connection established. Last error: connect ECONNREFUSED 127.0.0.1:7420'), { host: '127.0.0.1:7420' });
      },
    });
    assert.equal(await run(['node', 'ls'], f.io), 1);
    assert.equal(f.err(), 'convoy: cannot reach a manager at 127.0.0.1:7420 (connection refused); is `convoy manager` running? Set --host or CONVOY_HOST\n');
  });

  it('node update drains a node with its current version', async () => {
    const node = {
      id: 'n1',
      meta: { version: 7, createdAt: 0, updatedAt: 0 },
      spec: { role: 'WORKER' as const, availability: 'ACTIVE' as const, labels: { a: '1' } },
      description: null,
      status: null,
      subnet: '',
      sessionId: '',
      leaseId: 0,
      usage: null,
    };
    const f = fake({ getNode: async () => ({ node }), updateNode: async () => ({ node }) });
    assert.equal(await run(['node', 'update', '--availability', 'drain', '--label-add', 'zone=east', '--label-rm', 'a', 'h1'], f.io), 0, f.err());
    const req = f.calls.find((c) => c.method === 'updateNode')?.req as ControlRequest<'updateNode'>;
    assert.deepEqual(req, { node: 'n1', version: 7, spec: { role: 'WORKER', availability: 'DRAIN', labels: { zone: 'east' } } });
  });

  it('cluster join-token prints the agent command; -q only the token; --rotate rotates', async () => {
    const f = fake({
      getJoinTokens: async () => ({ worker: 'SWMTKN-1-w', manager: 'SWMTKN-1-m' }),
      getClusterInfo: async () => ({ cluster: null, managers: [{ id: 'm1', addr: '10.0.0.1:7420', leader: true }], nodes: 0, services: 0, tasks: 0, natsUrl: '', caCert: '', caFingerprint: '', caNotAfter: 0, kekId: '', sealedKeys: 0, sealedKeysCurrent: 0, sealedKeysUnopenable: 0, kekIds: [], kekRetired: [] }),
    });
    assert.equal(await run(['cluster', 'join-token', 'worker'], f.io), 0, f.err());
    assert.match(f.out(), /convoy agent --manager 10\.0\.0\.1:7420 --token SWMTKN-1-w\n/);
    const q = fake({ getJoinTokens: async () => ({ worker: 'SWMTKN-1-w', manager: 'SWMTKN-1-m' }) });
    await run(['cluster', 'join-token', '-q', 'manager'], q.io);
    assert.equal(q.out(), 'SWMTKN-1-m\n');
    const r = fake({ rotateJoinToken: async (req) => ({ worker: req.worker ? 'SWMTKN-1-new' : '', manager: '' }) });
    await run(['cluster', 'join-token', '--rotate', '-q', 'worker'], r.io);
    assert.equal(r.out(), 'SWMTKN-1-new\n');
    const bad = fake({});
    assert.equal(await run(['cluster', 'join-token', 'admin'], bad.io), 1);
    assert.equal(bad.err(), 'convoy: role must be worker or manager, not "admin"\n');
  });

  it('cluster update --bind-allow replaces the allow list; --no-bind-allow empties it; nothing given is refused', async () => {
    const info = (bindAllow: string[]) => ({ cluster: { id: 'default', meta: null, workerTokenHash: '', managerTokenHash: '', clusterCidr: '', vipCidr: '', ingressPortMin: 0, ingressPortMax: 0, createdAt: 0, bindAllow, allowPrivileged: false, clusterId: '', certExpiryMs: 0 }, managers: [], nodes: 0, services: 0, tasks: 0, natsUrl: '', caCert: '', caFingerprint: '', caNotAfter: 0, kekId: '', sealedKeys: 0, sealedKeysCurrent: 0, sealedKeysUnopenable: 0, kekIds: [], kekRetired: [] });
    const f = fake({ updateCluster: async (req) => info(req.bindAllow ?? []) });
    assert.equal(await run(['cluster', 'update', '--bind-allow', '/srv', '/data'], f.io), 0, f.err());
    assert.deepEqual(f.calls.find((c) => c.method === 'updateCluster')?.req, { bindAllow: ['/srv', '/data'], setBindAllow: true });
    assert.match(f.out(), /Bind mounts from: +\/srv, \/data/);
    const n = fake({ updateCluster: async (req) => info(req.bindAllow ?? []) });
    assert.equal(await run(['cluster', 'update', '--no-bind-allow'], n.io), 0, n.err());
    assert.deepEqual(n.calls[0]?.req, { bindAllow: [], setBindAllow: true });
    assert.match(n.out(), /Bind mounts from: +nowhere/);
    const none = fake({});
    assert.equal(await run(['cluster', 'update'], none.io), 1);
    assert.match(none.err(), /nothing to update: give --bind-allow/);
  });

  it('cluster update --allow-privileged / --no-allow-privileged set the policy alone (docs/container-options.md)', async () => {
    const info = (allowPrivileged: boolean) => ({ cluster: { id: 'default', meta: null, workerTokenHash: '', managerTokenHash: '', clusterCidr: '', vipCidr: '', ingressPortMin: 0, ingressPortMax: 0, createdAt: 0, bindAllow: [], allowPrivileged, clusterId: '', certExpiryMs: 0 }, managers: [], nodes: 0, services: 0, tasks: 0, natsUrl: '', caCert: '', caFingerprint: '', caNotAfter: 0, kekId: '', sealedKeys: 0, sealedKeysCurrent: 0, sealedKeysUnopenable: 0, kekIds: [], kekRetired: [] });
    const on = fake({ updateCluster: async (req) => info(!!req.allowPrivileged) });
    assert.equal(await run(['cluster', 'update', '--allow-privileged'], on.io), 0, on.err());
    assert.deepEqual(on.calls.find((c) => c.method === 'updateCluster')?.req, { allowPrivileged: true, setAllowPrivileged: true });
    assert.match(on.out(), /Privileged, devices: +allowed \(admins only\)/);
    const off = fake({ updateCluster: async (req) => info(!!req.allowPrivileged) });
    assert.equal(await run(['cluster', 'update', '--no-allow-privileged'], off.io), 0, off.err());
    assert.deepEqual(off.calls[0]?.req, { allowPrivileged: false, setAllowPrivileged: true });
    assert.match(off.out(), /Privileged, devices: +refused/);
  });
});
