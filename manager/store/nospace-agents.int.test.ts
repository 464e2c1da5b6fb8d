// Agents while etcd is full (NOSPACE): a real etcd with a tiny quota, a
// manager and two hollow agents as child processes (e2e/support/cluster.ts).
// While the store refuses writes for several lease lifetimes, the nodes keep
// their sessions and liveness (lease keepalives are not writes), the leader
// keeps its lead, the tasks keep running, reads answer and writes are refused
// with RESOURCE_EXHAUSTED; once etcd is recovered, writes and scheduling work
// again. Run under the kernel lock.
import { strict as assert } from 'node:assert';
import type * as grpc from '@grpc/grpc-js';
import type { ServiceSpec, Task } from '../../proto/mod';
import { eventually } from '../../common/eventually';
import { TestCluster } from '../../e2e/support/cluster';
import { nullLogger } from '../../common/logger';
import { EtcdStore } from './etcd-store';
import { StoreJanitor } from './maintenance';

const QUOTA_BYTES = 64 * 1024 * 1024;
const FILLER = 'x'.repeat(1024 * 1024);
const HEARTBEAT_MS = 500;
/** How long the store stays full: several lease lifetimes (3 heartbeats, at least 2 s). */
const FULL_FOR_MS = 8_000;

describe('agents under etcd NOSPACE (integration, real etcd)', function () {
  this.timeout(120_000);
  let c: TestCluster;
  let store: EtcdStore;

  before(async () => {
    c = new TestCluster(HEARTBEAT_MS, QUOTA_BYTES);
    await c.start(1);
    await c.addAgent({ hostname: 'n1' });
    await c.addAgent({ hostname: 'n2' });
    store = EtcdStore.connect(c.etcd.endpoints, undefined, undefined, { tls: c.etcd.tls });
  });
  after(async () => {
    await store?.client.delete().prefix('/filler/').catch(() => undefined);
    await store?.close();
    await c?.stop();
  });

  const running = async (): Promise<Task[]> => (await c.api.listTasks({ service: 'web' })).tasks.filter((t) => t.desiredState === 'RUNNING' && t.status?.state === 'RUNNING');

  it('keeps sessions, liveness, the lead and running tasks while writes are refused; recovers after', async () => {
    await eventually(async () => (await c.api.listNodes({})).nodes.filter((n) => n.status?.state === 'NODE_READY').length === 2, '2 nodes ready');
    await c.api.createService({ spec: { name: 'web', replicas: 4, container: { image: 'registry.local/web:1' } } as ServiceSpec });
    const before = await eventually(async () => {
      const r = await running();
      return r.length === 4 && r;
    }, '4 running');
    const nodesBefore = new Map((await c.api.listNodes({})).nodes.map((n) => [n.id, n.meta?.version]));
    const alive = await store.aliveNodeIds();
    assert.equal(alive.size, 2);

    // Fill etcd until NOSPACE (its own client: the refusals are its own).
    const filler = EtcdStore.connect(c.etcd.endpoints, undefined, undefined, { tls: c.etcd.tls });
    let full: unknown;
    try {
      for (let i = 0; i < 400 && !full; i++) await filler.client.put(`/filler/${i}`).value(FILLER).catch((e: unknown) => (full = e));
    } finally {
      await filler.close();
    }
    assert.ok(full, 'etcd never raised NOSPACE');
    assert.ok((await store.maintenance.status()).alarms.includes('NOSPACE'));

    // Held full for several lease lifetimes, watched every 500 ms.
    const until = Date.now() + FULL_FOR_MS;
    let polls = 0;
    while (Date.now() < until) {
      assert.deepEqual(await store.aliveNodeIds(), alive, 'both nodes stay alive (their leases are kept)');
      assert.equal((await c.api.getClusterInfo({})).managers.find((m) => m.leader)?.id, 'm0', 'the leader keeps its lead');
      const r = await running();
      assert.deepEqual(r.map((t) => t.id).sort(), before.map((t) => t.id).sort(), 'the same tasks keep running');
      polls++;
      await new Promise((res) => setTimeout(res, 500));
    }
    assert.ok(polls >= 8);
    await assert.rejects(c.api.scaleService({ service: 'web', replicas: 6 }), (e: grpc.ServiceError) => {
      assert.match(e.details, /the cluster store is full \(etcd NOSPACE\)/);
      return true;
    });
    const nodesDuring = new Map((await c.api.listNodes({})).nodes.map((n) => [n.id, n.meta?.version]));
    assert.deepEqual(nodesDuring, nodesBefore, 'no node re-registered (a registration is a write)');

    // Recovery, as the manager does for an embedded etcd: drop the filler, compact, defragment, disarm.
    await store.client.delete().prefix('/filler/');
    const janitor = new StoreJanitor(store.maintenance, { reclaim: true, log: nullLogger, report: { status: () => undefined, full: () => undefined, defragmented: () => undefined } });
    await janitor.check();
    await janitor.stop();
    assert.deepEqual((await store.maintenance.status()).alarms, []);
    await c.api.scaleService({ service: 'web', replicas: 6 });
    await eventually(async () => (await running()).length === 6, '6 running after recovery', { timeoutMs: 30_000 });
    assert.deepEqual(await store.aliveNodeIds(), alive);
  });
});
