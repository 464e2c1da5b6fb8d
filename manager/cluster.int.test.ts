// The control plane against a real etcd: managers and hollow agents run as
// child processes (e2e/support/cluster.ts), so kills are real `kill -9`s.
import { strict as assert } from 'node:assert';
import type * as grpc from '@grpc/grpc-js';
import type { ServiceSpec, Task } from '../proto/mod';
import { dispatcherClient, mtls } from '../proto/client';
import { joinCluster } from '../proto/join';
import { makeJoinToken, parseJoinToken } from '../common/join-token';
import { eventually } from '../common/eventually';
import { TestCluster } from '../e2e/support/cluster';

type Spec = Partial<ServiceSpec> & { name: string };

function spec(s: Spec): Spec {
  return { replicas: 1, container: { image: 'registry.local/web:1' } as ServiceSpec['container'], ...s };
}

describe('control plane (integration, real etcd)', function () {
  this.timeout(90_000);
  let c: TestCluster;

  const tasks = async (service: string) => (await c.api.listTasks({ service })).tasks;
  const running = async (service: string) => (await tasks(service)).filter((t) => t.desiredState === 'RUNNING' && t.status?.state === 'RUNNING');
  const nodes = async () => (await c.api.listNodes({})).nodes;
  const create = (s: Spec) => c.api.createService({ spec: spec(s) });
  const bySlot = (ts: Task[]) => {
    const m = new Map<number, number>();
    for (const t of ts) m.set(t.slot, (m.get(t.slot) ?? 0) + 1);
    return m;
  };

  before(async () => {
    c = new TestCluster(300);
    await c.start(2);
    for (const h of ['a1', 'a2', 'a3']) await c.addAgent({ hostname: h });
    await eventually(async () => (await nodes()).filter((n) => n.status?.state === 'NODE_READY').length === 3, '3 nodes ready');
  });
  after(async () => {
    await c?.stop();
  });

  it('creates a service whose tasks spread across agents and run', async () => {
    await create({ name: 'web', replicas: 6 });
    const r = await eventually(async () => {
      const rs = await running('web');
      return rs.length === 6 && rs;
    }, '6 running');
    const perNode = new Map<string, number>();
    for (const t of r) perNode.set(t.nodeId, (perNode.get(t.nodeId) ?? 0) + 1);
    assert.deepEqual([...perNode.values()].sort(), [2, 2, 2], 'two tasks on each of the three nodes');
    assert.deepEqual([...new Set(r.map((t) => t.slot))].sort((a, b) => a - b), [1, 2, 3, 4, 5, 6]);
  });

  it('scales up and down', async () => {
    await c.api.scaleService({ service: 'web', replicas: 9 });
    await eventually(async () => (await running('web')).length === 9, '9 running');
    await c.api.scaleService({ service: 'web', replicas: 2 });
    await eventually(async () => {
      const ts = await tasks('web');
      const live = ts.filter((t) => t.desiredState === 'RUNNING');
      return live.length === 2 && ts.filter((t) => t.status?.state === 'RUNNING').length === 2;
    }, 'scaled down to 2, the others shut down');
    const live = (await tasks('web')).filter((t) => t.desiredState === 'RUNNING');
    assert.deepEqual(live.map((t) => t.slot).sort(), [1, 2], 'the lowest slots are kept');
  });

  it('rejects malformed specs naming the field, and writes nothing', async () => {
    const before = (await c.api.listServices({})).services.length;
    const bad: [Spec, RegExp][] = [
      [{ name: 'neg', replicas: -1 }, /spec\.replicas/],
      [{ name: 'cons', placement: { constraints: ['node.colour==red'], preferences: [], maxReplicasPerNode: 0, platforms: [], strategy: 'SPREAD' as const } }, /spec\.placement\.constraints\[0\].*unknown constraint key/],
      [{ name: 'port', endpoint: { mode: 'VIP', ports: [{ name: '', protocol: 'tcp', targetPort: 70000, publishedPort: 8080, publishMode: 'INGRESS' }] } }, /spec\.endpoint\.ports\[0\]\.targetPort/],
      [{ name: 'huge', resources: { reservations: { nanoCpus: 0, memoryBytes: 1e15, pids: 0 }, limits: null } }, /spec\.resources\.reservations\.memoryBytes.*no node has/],
      [{ name: 'web' }, /spec\.name.*already in use/],
      [{ name: 'noimage', container: { image: '' } as ServiceSpec['container'] }, /spec\.container\.image: must not be empty/],
      [{ name: 'labels', labels: { ['k'.repeat(200)]: 'v' } }, /spec\.labels/],
      [{ name: 'Bad_Name' }, /spec\.name/],
    ];
    for (const [s, re] of bad) {
      const res = await create(s).then(
        () => undefined,
        (e: grpc.ServiceError) => e,
      );
      assert.ok(res, `spec "${s.name}" was accepted`);
      assert.match(res.details, re, `${s.name}: ${res.details}`);
    }
    const after = (await c.api.listServices({})).services.length;
    assert.equal(after, before, 'no service written');
  });

  it('refuses an agent with a wrong join token', async () => {
    // Right CA pinned, wrong secret: refused at the join, one line; the intruder never becomes a node.
    const wrong = makeJoinToken(parseJoinToken(c.workerToken).caDigest);
    await assert.rejects(c.addAgent({ hostname: 'intruder', token: wrong }), /JoinRefusedError: join refused: invalid join token \(wrong, or rotated since\)/);
    await assert.rejects(c.addAgent({ hostname: 'intruder', token: 'SWMTKN-1-wrong' }), /join refused: join token: not a Convoy join token/);
    assert.ok(!(await nodes()).some((n) => n.description?.hostname === 'intruder'));
  });

  it('keeps a pending task with a reason, and places it when a fitting node joins', async () => {
    await create({ name: 'east', replicas: 1, placement: { constraints: ['node.labels.zone==east'], preferences: [], maxReplicasPerNode: 0, platforms: [], strategy: 'SPREAD' as const } });
    const t = await eventually(async () => {
      const ts = await tasks('east');
      return ts.length === 1 && /no suitable node: constraint mismatch on 3 nodes/.test(ts[0].status?.message ?? '') && ts[0];
    }, 'pending with the reason');
    assert.equal(t.status?.state, 'PENDING');
    const agent = await c.addAgent({ hostname: 'a4', labels: { zone: 'east' } });
    const r = await eventually(async () => (await running('east'))[0], 'placed on the new node');
    assert.equal(r.nodeId, agent.info.nodeId);
  });

  it('drains a node: its tasks move to the others', async () => {
    await c.api.scaleService({ service: 'web', replicas: 4 });
    await eventually(async () => (await running('web')).length === 4, '4 running');
    const n = (await nodes()).find((x) => x.description?.hostname === 'a1')!;
    await c.api.updateNode({ node: n.id, version: 0, spec: { ...n.spec, availability: 'DRAIN' } });
    await eventually(async () => {
      const rs = await running('web');
      return rs.length === 4 && rs.every((t) => t.nodeId !== n.id);
    }, 'all 4 running off the drained node');
    await c.api.updateNode({ node: n.id, version: 0, spec: { ...n.spec, availability: 'ACTIVE' } });
  });

  it('runs a global service on every node, including one that joins later', async () => {
    await create({ name: 'mon', mode: 'GLOBAL', replicas: 0 });
    const count = (await nodes()).filter((n) => n.status?.state === 'NODE_READY').length;
    await eventually(async () => (await running('mon')).length === count, `one per node (${count})`);
    const late = await c.addAgent({ hostname: 'a5' });
    await eventually(async () => (await running('mon')).some((t) => t.nodeId === late.info.nodeId), 'a task on the late node');
    assert.equal(new Set((await running('mon')).map((t) => t.nodeId)).size, (await running('mon')).length, 'never two on one node');
  });

  it('replaces the replicas of an agent killed with kill -9 on the other nodes', async () => {
    const rs = await running('web');
    const victimNode = rs[0].nodeId;
    const victim = c.agents.find((a) => a.info.nodeId === victimNode)!;
    victim.kill9();
    await eventually(async () => (await nodes()).find((n) => n.id === victimNode)?.status?.state === 'NODE_DOWN', 'node marked down');
    await eventually(async () => {
      const now = await running('web');
      return now.length === 4 && now.every((t) => t.nodeId !== victimNode);
    }, 'replicas running elsewhere');
    const live = (await tasks('web')).filter((t) => t.desiredState === 'RUNNING');
    assert.ok([...bySlot(live).values()].every((n) => n === 1), 'one live task per slot');
  });

  it('survives kill -9 of the leader: another leads, no slot doubled or lost', async () => {
    const info = await c.api.getClusterInfo({});
    const leaderId = info.managers.find((m) => m.leader)?.id;
    assert.ok(leaderId, 'a leader is known');
    const leader = c.managers.find((m) => m.info.id === leaderId)!;
    leader.kill9();
    c.managers = c.managers.filter((m) => m !== leader);
    await eventually(async () => {
      const i = await c.api.getClusterInfo({});
      return i.managers.some((m) => m.leader && m.id !== leaderId);
    }, 'a new leader');
    // The new leader reconciles: a scale-up is carried out.
    await c.api.scaleService({ service: 'web', replicas: 5 });
    await eventually(async () => (await running('web')).length === 5, '5 running under the new leader');
    const live = (await tasks('web')).filter((t) => t.desiredState === 'RUNNING');
    assert.equal(live.length, 5);
    assert.ok([...bySlot(live).values()].every((n) => n === 1), 'one live task per slot');
    // Addresses handed out by both leaders: every live task has one, none twice.
    const addrs = live.map((t) => t.networks[0]?.addresses[0] ?? '');
    assert.ok(addrs.every((a) => /^10\.42\./.test(a)), `addresses: ${addrs.join(' ')}`);
    assert.equal(new Set(addrs).size, addrs.length, `no address twice: ${addrs.join(' ')}`);
  });

  it('pauses a rolling update whose new tasks fail', async () => {
    const svc = (await c.api.getService({ service: 'web' })).service!;
    const next = { ...svc.spec!, container: { ...svc.spec!.container!, image: 'registry.local/web:broken', labels: { 'convoy.hollow.exit': '1' } }, update: { ...svc.spec!.update!, parallelism: 1, failureAction: 'FAILURE_PAUSE' as const } };
    await c.api.updateService({ service: 'web', version: svc.meta?.version, spec: next });
    const paused = await eventually(async () => {
      const s = (await c.api.getService({ service: 'web' })).service!;
      return s.updateStatus?.state === 'UPDATE_PAUSED' && s;
    }, 'update paused');
    assert.match(paused.updateStatus?.message ?? '', /failed/);
    const old = (await running('web')).filter((t) => t.specVersion < paused.specVersion);
    assert.ok(old.length >= 3, `most old tasks keep running (${old.length})`);
  });

  it('rolls back an update whose failure action is rollback', async () => {
    await create({ name: 'api', replicas: 3 });
    await eventually(async () => (await running('api')).length === 3, '3 running');
    const svc = (await c.api.getService({ service: 'api' })).service!;
    const next = { ...svc.spec!, container: { ...svc.spec!.container!, image: 'registry.local/api:broken', labels: { 'convoy.hollow.exit': '1' } }, update: { ...svc.spec!.update!, parallelism: 1, failureAction: 'FAILURE_ROLLBACK' as const, monitorMs: 300 }, rollback: { ...svc.spec!.update!, parallelism: 0, monitorMs: 300 } };
    await c.api.updateService({ service: 'api', version: svc.meta?.version, spec: next });
    const done = await eventually(async () => {
      const s = (await c.api.getService({ service: 'api' })).service!;
      return s.updateStatus?.state === 'ROLLBACK_COMPLETED' && s;
    }, 'rollback completed');
    assert.equal(done.spec?.container?.image, 'registry.local/web:1');
    const rs = await running('api');
    assert.equal(rs.length, 3);
    assert.ok(rs.every((t) => t.spec?.container?.image === 'registry.local/web:1'), 'all tasks back on the old image');
  });

  it('gives tasks addresses on their networks and services VIPs; refuses a published port already taken', async () => {
    const port = { name: '', protocol: 'tcp', targetPort: 80, publishedPort: 30080, publishMode: 'INGRESS' as const };
    await create({ name: 'www', replicas: 2, endpoint: { mode: 'VIP', ports: [port] } });
    const rs = await eventually(async () => {
      const r = await running('www');
      return r.length === 2 && r;
    }, '2 running');
    const ns = await nodes();
    for (const t of rs) {
      const subnet = ns.find((n) => n.id === t.nodeId)?.subnet ?? '';
      assert.match(subnet, /^10\.42\.\d+\.0\/24$/, 'every node has a /24 of the cluster CIDR');
      assert.equal(t.networks.length, 1);
      assert.equal(t.networks[0].networkName, 'default');
      assert.ok(t.networks[0].addresses[0].startsWith(subnet.split('.').slice(0, 3).join('.') + '.'), `${t.networks[0].addresses[0]} is in ${subnet}`);
    }
    const svc = (await c.api.getService({ service: 'www' })).service!;
    assert.match(svc.endpoint?.virtualIps[0]?.addr ?? '', /^10\.43\./);
    assert.equal(svc.endpoint?.ports[0]?.publishedPort, 30080);
    await assert.rejects(create({ name: 'www2', endpoint: { mode: 'VIP', ports: [port] } }), (e: grpc.ServiceError) => /port 30080\/tcp is already published by service "www"/.test(e.details));
    assert.ok(!(await c.api.listServices({})).services.some((x) => x.service?.spec?.name === 'www2'), 'nothing written');
  });

  it('places at most one task per node for a host-mode port, and says why the rest waits', async () => {
    const ready = (await nodes()).filter((n) => n.status?.state === 'NODE_READY' && n.spec?.availability === 'ACTIVE').length;
    await create({ name: 'hostport', replicas: ready + 1, endpoint: { mode: 'VIP', ports: [{ name: '', protocol: 'tcp', targetPort: 80, publishedPort: 9000, publishMode: 'HOST' }] } });
    await eventually(async () => {
      const ts = (await tasks('hostport')).filter((t) => t.desiredState === 'RUNNING');
      const run = ts.filter((t) => t.status?.state === 'RUNNING');
      const pending = ts.filter((t) => t.status?.state === 'PENDING');
      return run.length === ready && pending.length === 1 && /port/.test(pending[0].status?.message ?? '') && new Set(run.map((t) => t.nodeId)).size === ready;
    }, `${ready} running on distinct nodes, one pending for the port`);
    const run = (await running('hostport'))[0];
    assert.equal(run.endpointPorts?.[0]?.publishedPort, 9000, 'the task says where it is reachable');
    await c.api.removeService({ service: 'hostport' });
  });

  it('creates networks, attaches services to them, and streams their endpoints to agents', async () => {
    await assert.rejects(c.api.createNetwork({ spec: { name: 'Bad Name' } }), (e: grpc.ServiceError) => /spec\.name/.test(e.details));
    const net = (await c.api.createNetwork({ spec: { name: 'back', labels: {} } })).network!;
    await assert.rejects(c.api.createNetwork({ spec: { name: 'back' } }), (e: grpc.ServiceError) => /already exists/.test(e.details));
    await assert.rejects(create({ name: 'nonet', networks: ['nowhere'] }), (e: grpc.ServiceError) => /spec\.networks/.test(e.details));
    await create({ name: 'db', replicas: 2, networks: ['back'] });
    const rs = await eventually(async () => {
      const r = await running('db');
      return r.length === 2 && r;
    }, 'db running');
    assert.ok(rs.every((t) => t.networks.length === 1 && t.networks[0].networkId === net.id && t.networks[0].vni >= 4096));
    await assert.rejects(c.api.removeNetwork({ network: 'back' }), (e: grpc.ServiceError) => /in use by service\(s\) db/.test(e.details));

    // What an agent is told: a session, then the Network stream's first NetworkState.
    const probeId = await joinCluster({ joinAddr: c.joinAddr, token: c.workerToken });
    const d = dispatcherClient(c.managers[0].info.addr, { security: mtls(probeId.bundle) });
    try {
      const session = d.Session({ joinToken: c.workerToken, nodeId: '', addr: '127.0.0.9', labels: {}, description: { hostname: 'netprobe', platform: null, resources: null, engineLabels: {} } });
      const first = await new Promise<{ sessionId: string; node: { id: string } }>((resolve, reject) => {
        session.once('data', resolve);
        session.once('error', reject);
      });
      // The probe is not a real agent: keep work off it.
      const probe = (await nodes()).find((n) => n.id === first.node.id)!;
      await c.api.updateNode({ node: probe.id, version: 0, spec: { ...probe.spec, availability: 'DRAIN' } });
      const stream = d.Network({ sessionId: first.sessionId });
      const st = await new Promise<import('../proto/mod').NetworkState>((resolve, reject) => {
        stream.once('data', resolve);
        stream.once('error', reject);
      });
      stream.cancel();
      session.cancel();
      const db = st.services.find((x) => x.serviceName === 'db');
      assert.ok(db, 'db is in the network state');
      assert.deepEqual(db.networks, [net.id]);
      assert.equal(db.tasks.length, 2);
      assert.ok(db.tasks.every((t) => t.ready && /^10\.42\./.test(t.addresses[0])), 'running tasks are ready endpoints with their addresses');
      assert.match(db.virtualIps[0]?.addr ?? '', /^10\.43\./);
      assert.ok(st.networks.some((n) => n.id === net.id));
      assert.ok(st.nodes.filter((n) => n.up).every((n) => /^10\.42\.\d+\.0\/24$/.test(n.subnet) || n.addr === '127.0.0.9'));
      assert.equal(st.clusterCidr, '10.42.0.0/16');
    } finally {
      d.close();
    }
    await c.api.removeService({ service: 'db' });
    await c.api.removeNetwork({ network: 'back' });
    assert.ok(!(await c.api.listNetworks({})).networks.some((n) => n.spec?.name === 'back'));
  });

  it('carries a rolling update through a leader change', async () => {
    await c.addManager();
    const svc = (await c.api.getService({ service: 'www' })).service!;
    await c.api.scaleService({ service: 'www', replicas: 4 });
    await eventually(async () => (await running('www')).length === 4, '4 running');
    const fresh = (await c.api.getService({ service: 'www' })).service!;
    const next = { ...fresh.spec!, container: { ...fresh.spec!.container!, image: 'registry.local/web:2' }, update: { ...fresh.spec!.update!, parallelism: 1, delayMs: 700, monitorMs: 300 } };
    await c.api.updateService({ service: 'www', version: fresh.meta?.version, spec: next });
    const target = svc.specVersion + 1;
    await eventually(async () => (await running('www')).some((t) => t.specVersion === target), 'the update has begun');
    const info = await c.api.getClusterInfo({});
    const leader = c.managers.find((m) => m.info.id === info.managers.find((x) => x.leader)?.id)!;
    leader.kill9();
    c.managers = c.managers.filter((m) => m !== leader);
    const done = await eventually(async () => {
      const s = (await c.api.getService({ service: 'www' })).service!;
      return s.updateStatus?.state === 'UPDATE_COMPLETED' && s;
    }, 'update completed under the new leader', 30_000).catch(async (e: Error) => {
      const s = (await c.api.getService({ service: 'www' })).service!;
      const ts = (await tasks('www')).map((t) => `${t.slot}/${t.specVersion}/${t.desiredState}/${t.status?.state}/${t.nodeId.slice(0, 6)}: ${t.status?.message}`);
      throw new Error(`${e.message}: ${JSON.stringify(s.updateStatus)} v${s.specVersion}\n${ts.join('\n')}`);
    });
    assert.equal(done.specVersion, target);
    const live = (await tasks('www')).filter((t) => t.desiredState === 'RUNNING');
    assert.equal(live.length, 4);
    assert.ok(live.every((t) => t.specVersion === target && t.status?.state === 'RUNNING'), 'every slot runs the new spec');
    assert.ok([...bySlot(live).values()].every((n) => n === 1), 'one live task per slot');
  });
  it('an agent whose session expired (stopped past its lease) registers again and keeps its node id', async () => {
    const ready = new Set((await nodes()).filter((n) => n.status?.state === 'NODE_READY').map((n) => n.id));
    const agent = c.agents.find((a) => ready.has(a.info.nodeId))!;
    const nodeId = agent.info.nodeId;
    const nodeCount = (await nodes()).length;
    // SIGSTOP: no heartbeat, no stream activity; the session lease lapses and the node goes down.
    process.kill(agent.pid, 'SIGSTOP');
    try {
      await eventually(async () => (await nodes()).find((n) => n.id === nodeId)?.status?.state === 'NODE_DOWN', 'node down while its agent is stopped');
    } finally {
      process.kill(agent.pid, 'SIGCONT');
    }
    // Its next heartbeat names the lapsed session: NOT_FOUND, and the agent registers again (not UNAVAILABLE and a failover loop).
    const back = await eventually(async () => {
      const n = (await nodes()).find((x) => x.id === nodeId);
      return n?.status?.state === 'NODE_READY' && n;
    }, 'the same node ready again');
    assert.equal(back.id, nodeId);
    assert.equal((await nodes()).length, nodeCount, 'no new node');
    assert.equal(back.sessionId, '', 'ListNodes never shows a session id');
  });
});
