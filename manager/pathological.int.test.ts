// A load test of pathological input (issue 12): while maximal specs with
// maximal, worst-shape constraints are created (and their tasks placed and
// streamed), 1,000 Dispatcher streams are opened at once by 250 sessions, and
// requests past the limits are thrown at the manager, the leader keeps its
// lease (never a poll without it, never another leader) and the Control API
// keeps answering within a bound. A real etcd and a manager in a child
// process (e2e/support/cluster.ts): run under the kernel lock.
import { strict as assert } from 'node:assert';
import type * as grpc from '@grpc/grpc-js';
import * as path from 'node:path';
import { connectControl, dispatcherClient, mtls, type ControlConnection } from '../proto/client';
import type { Cluster } from '../proto/mod';
import type { TlsBundle } from '../common/identity';
import { createKeyAndCsr } from '../common/csr';
import { ClusterCa } from './ca/ca';
import { loadKek } from './crypto/kek';
import { newId } from './ids';
import { EtcdStore } from './store/etcd-store';
import type { DispatcherClient, ServiceSpec } from '../proto/mod';
import { eventually } from '../common/eventually';
import { TestCluster } from '../e2e/support/cluster';
import * as L from './spec/limits';
import { validateServiceSpec } from './spec/validate';

const SESSIONS = 250;
/** Session + 2 × Assignments + Network per session. */
const STREAMS_PER_SESSION = 4;
const SERVICES = 8;
const REPLICAS = 25;
/**
 * The bound every Control call during the load must answer within: not a
 * speed figure (bench/ measures those) but "the API keeps answering": well
 * under the client's call deadline and the leader's lease, generous enough
 * for 250 nodes' TLS handshakes landing at once on a loaded 2-core machine
 * (fresh-clone CI runs saw 3.45, 4.70 and 5.08 s, with no lead lost).
 */
const ANSWER_BOUND_MS = 10_000;
const HEARTBEAT_MS = 2_000;

/** A spec as large as the limits allow, its constraints of the shapes that were quadratic (trailing blanks) and maximal label sizes. */
function maximalSpec(name: string): ServiceSpec {
  const constraints: string[] = [];
  // Each ≤ 8 KiB; they hold on every node (no node has these labels, and != holds then).
  for (let i = 0; i < 6; i++) constraints.push(`node.labels.${'k'.repeat(L.LABEL_KEY_MAX_BYTES - 2)}${i} != ${'v'.repeat(L.LABEL_VALUE_MAX_BYTES)}`);
  for (let i = 0; i < 6; i++) constraints.push(`node.labels.z${i} != a${' '.repeat(L.CONSTRAINT_MAX_BYTES - 40)}b`);
  const spec = {
    name,
    replicas: REPLICAS,
    container: { image: 'registry.local/web:1', env: Array.from({ length: 40 }, (_, i) => `K${i}=${'e'.repeat(600)}`) },
    labels: Object.fromEntries(Array.from({ length: 8 }, (_, i) => [`l${i}`, 'x'.repeat(1000)])),
    placement: { constraints, preferences: [], maxReplicasPerNode: 0, platforms: [] },
  } as unknown as ServiceSpec;
  const v = validateServiceSpec(spec, { nodes: [], services: [] });
  assert.ok(v.ok, `the maximal spec is valid: ${JSON.stringify(v.ok ? '' : v.errors.slice(0, 2))}`);
  return spec;
}

describe('pathological input under load (integration, real etcd)', function () {
  this.timeout(120_000);
  let c: TestCluster;
  const clients: DispatcherClient[] = [];
  const calls: grpc.ClientReadableStream<unknown>[] = [];
  const timers: NodeJS.Timeout[] = [];
  let api: ControlConnection;

  /** One worker certificate per session: a node is its certificate (docs/security.md), so 250 sessions are 250 nodes. */
  let bundles: TlsBundle[] = [];

  before(async () => {
    c = new TestCluster(HEARTBEAT_MS);
    await c.start(1);
    const store = EtcdStore.connect(c.etcd.endpoints, undefined, undefined, { tls: c.etcd.tls });
    try {
      const cluster = await store.get<Cluster>('cluster', 'default');
      const ca = await ClusterCa.loadOrCreate({ store, kek: loadKek(path.join(c.dir, 'kek')), cluster: cluster?.clusterId || 'default', revoked: new Set(), defaultTtl: () => 3600_000 });
      bundles = await Promise.all(
        Array.from({ length: SESSIONS }, async () => {
          const { keyPem, csrPem } = await createKeyAndCsr();
          const issued = await ca.issue(csrPem, { id: newId(), role: 'worker' });
          return { ca: issued.ca, cert: issued.cert, key: keyPem };
        }),
      );
    } finally {
      await store.close();
    }
  });
  after(async () => {
    for (const t of timers) clearInterval(t);
    for (const k of calls) k.cancel();
    for (const d of clients) d.close();
    api?.close();
    await c?.stop();
  });

  it('keeps the lead and answers the API while 1,000 streams open at once and maximal specs are placed', async () => {
    const leaderOf = async () => (await c.api.getClusterInfo({})).managers.find((m) => m.leader)?.id;
    await eventually(async () => (await leaderOf()) === 'm0', 'm0 leads');

    // Every Control call of the test goes through a client of its own whose deadline is past
    // the bound, so a slow answer is measured against ANSWER_BOUND_MS (fresh-clone CI runs saw
    // a poll take 5.08 s and a CreateService more than 5 s, past the cluster client's 5 s
    // deadline, with the lead held) and a hung one still fails.
    api = connectControl(c.managers[0].info.addr, { security: c.security, deadlineMs: 2 * ANSWER_BOUND_MS });
    // The watcher: a poll every 200 ms of GetClusterInfo and ListServices; the lead must hold in every answer.
    const polls: { ms: number; leader?: string; err?: string }[] = [];
    let polling = true;
    const poll = (async () => {
      while (polling) {
        const t0 = Date.now();
        try {
          const [info] = await Promise.all([api.getClusterInfo({}), api.listServices({ name: '', labels: {}, pageSize: 0, pageToken: '' })]);
          polls.push({ ms: Date.now() - t0, leader: info.managers.find((m) => m.leader)?.id });
        } catch (e) {
          polls.push({ ms: Date.now() - t0, err: String((e as Error).message) });
        }
        await new Promise((r) => setTimeout(r, 200));
      }
    })();

    // 250 sessions opened at once, then 3 more streams each, all at once: 1,000 streams.
    const addr = c.managers[0].info.addr;
    // Each session on a connection of its own node's certificate.
    for (const b of bundles) clients.push(dispatcherClient(addr, { security: mtls(b), channelOptions: { 'grpc.max_receive_message_length': 64 * 1024 * 1024 } }));
    const t0 = Date.now();
    const sessions = await Promise.all(
      Array.from(
        { length: SESSIONS },
        (_, i) =>
          new Promise<string>((resolve, reject) => {
            const call = clients[i % clients.length].Session({
              joinToken: c.workerToken,
              nodeId: '',
              addr: '127.0.0.1',
              description: { hostname: `p-${i}`, platform: { os: 'linux', arch: 'amd64' }, resources: { nanoCpus: 4e9, memoryBytes: 8 * 1024 ** 3, pids: 0 }, engineLabels: {}, listeningTcp: [], listeningUdp: [] },
              labels: {},
            });
            calls.push(call);
            call.on('data', (m: { sessionId: string }) => m.sessionId && resolve(m.sessionId));
            call.on('error', reject);
          }),
      ),
    );
    let streamed = 0;
    let streamErrors = 0;
    const streamErrorSamples: string[] = [];
    sessions.forEach((sessionId, i) => {
      const d = clients[i % clients.length];
      // Twice a period: the session's lease is 3 periods, and this process's timers (250 TLS clients
      // beside the manager on 2 cores) slip under outside load; a lapse of the test's own heartbeats is
      // not what this test is about (a fresh-clone CI run on a loaded machine lost 89 sessions so).
      timers.push(setInterval(() => d.Heartbeat({ sessionId }, () => undefined), HEARTBEAT_MS / 2));
      for (const open of [() => d.Assignments({ sessionId }), () => d.Assignments({ sessionId }), () => d.Network({ sessionId })]) {
        const call = open();
        calls.push(call);
        call.on('data', () => streamed++);
        call.on('error', (e: Error & { code?: number }) => {
          streamErrors++;
          if (streamErrorSamples.length < 3) streamErrorSamples.push(`${e.code}: ${e.message}`);
        });
      }
    });
    assert.equal(calls.length, SESSIONS * STREAMS_PER_SESSION);
    // Every stream sends its first message (a COMPLETE set, a NetworkState).
    await eventually(() => streamed >= SESSIONS * 3, `the ${SESSIONS * 3} streams after Session answer`, 30_000);
    const opened = Date.now() - t0;

    // Maximal specs, all at once, and hostile requests in between.
    const specs = Array.from({ length: SERVICES }, (_, i) => maximalSpec(`patho-${i}`));
    const created = Promise.all(specs.map((spec) => api.createService({ spec })));
    const hostile = await Promise.allSettled([
      api.createService({ spec: { ...specs[0], name: 'too-big', labels: { k: 'v'.repeat(5 * 1024 * 1024) } } }),
      api.createService({ spec: { ...specs[0], name: 'long-constraint', placement: { ...specs[0].placement!, constraints: [`node.id==a${' '.repeat(120_000)}b`] } } }),
      api.listTasks({ service: '', node: '', states: [], desiredStates: [], currentOnly: false, pageSize: 0, pageToken: 'not-a-token' }),
    ]);
    assert.ok(hostile.every((h) => h.status === 'rejected'), 'each hostile request refused');
    await created;
    await eventually(
      async () => (await api.listTasks({ service: '', node: '', states: [], desiredStates: ['RUNNING'], currentOnly: false, pageSize: 0, pageToken: '' })).tasks.filter((t) => t.nodeId).length === SERVICES * REPLICAS,
      `${SERVICES * REPLICAS} maximal tasks placed`,
      45_000,
    );
    // The 1,000 streams are still open: let the watcher get its polls in before it stops. On a fast
    // machine the placement can end before five polls (a CI run saw 4), which says nothing of the API.
    await eventually(() => polls.length >= 5, 'five polls while the 1,000 streams are open', 30_000);
    polling = false;
    await poll;

    const slowest = Math.max(...polls.map((p) => p.ms));
    const failed = polls.filter((p) => p.err);
    const leaderless = polls.filter((p) => !p.err && p.leader !== 'm0');
    console.log(`      ${calls.length} streams open in ${opened} ms; ${polls.length} polls, slowest ${slowest} ms, ${failed.length} failed, ${leaderless.length} without m0 leading; stream errors ${streamErrors}`);
    assert.ok(polls.length >= 5, 'the API was polled during the load');
    assert.deepEqual(failed, [], 'every poll answered');
    assert.deepEqual(leaderless, [], 'the leader kept its lease throughout');
    assert.ok(slowest <= ANSWER_BOUND_MS, `every answer within ${ANSWER_BOUND_MS} ms (slowest ${slowest} ms)`);
    assert.equal(streamErrors, 0, `no stream was refused or broken (first: ${streamErrorSamples.join('; ')})`);
    assert.equal(await leaderOf(), 'm0');
  });
});
