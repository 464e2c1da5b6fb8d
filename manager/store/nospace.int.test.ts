// A full etcd for real (a tiny --quota-backend-bytes filled until NOSPACE):
// the Control API refuses writes with RESOURCE_EXHAUSTED and says why, reads
// still answer, the alarm is in the metrics and an event, and etcd's
// documented recovery (compact, defragment, disarm: what the manager does for
// its embedded etcd) makes writes work again. And a watch from a compacted
// revision fails loudly (the StateCache then reloads) instead of hanging.
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { startEtcd, type EmbeddedEtcd } from '../embedded/etcd';
import { startManager, type ManagerHandle } from '../mod';
import { connectControl, type ConnectedApi } from '../../cli/client';
import { adminSecurity } from '../../e2e/support/security';
import { freePort } from '../../common/net';
import { nullLogger } from '../../common/logger';
import { eventually } from '../../common/eventually';
import type { ServiceSpec } from '../../proto/mod';
import { EtcdStore } from './etcd-store';
import { StoreFullError } from './errors';
import { StoreJanitor } from './maintenance';

/** Small enough to fill in a second, above what a fresh etcd's file already takes. */
const QUOTA_BYTES = 64 * 1024 * 1024;
const FILLER = 'x'.repeat(1024 * 1024);

const spec = (name: string): ServiceSpec => ({ name, replicas: 1, container: { image: 'registry.local/web:1' } }) as ServiceSpec;

describe('etcd NOSPACE (integration, real etcd)', function () {
  this.timeout(90_000);
  let dir = '';
  let etcd: EmbeddedEtcd | undefined;
  let manager: ManagerHandle | undefined;
  let conn: ConnectedApi | undefined;
  let store: EtcdStore | undefined;
  let metricsAddr = '';

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'convoy-nospace-'));
    etcd = await startEtcd({ dataDir: path.join(dir, 'etcd'), quotaBackendBytes: QUOTA_BYTES });
    metricsAddr = `127.0.0.1:${await freePort()}`;
    manager = await startManager({ dataDir: path.join(dir, 'manager'), listen: `127.0.0.1:${await freePort()}`, etcdEndpoints: [etcd.endpoint], etcdTls: etcd.clientTls, natsUrl: '', metricsListen: metricsAddr, logger: nullLogger });
    conn = connectControl(manager.grpcAddr, adminSecurity(manager));
    store = EtcdStore.connect([etcd.endpoint], undefined, undefined, { tls: etcd.clientTls });
  });
  after(async () => {
    conn?.close();
    await manager?.stop().catch(() => undefined);
    await store?.close();
    await etcd?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const metrics = async () => (await fetch(`http://${metricsAddr}/metrics`)).text();

  it('a watch from a compacted revision fails (the StateCache reloads) instead of hanging', async () => {
    const first = await store!.syncRevision('compact-1');
    await store!.syncRevision('compact-2');
    const now = await store!.syncRevision('compact-3');
    await store!.maintenance.compact(now);
    let lost: Error | undefined;
    const watched = store!.watch(first, () => undefined, (e) => (lost = e)).then(
      async (w) => {
        await eventually(() => lost, 'watch error', { timeoutMs: 10_000, pollMs: 50 });
        await w.cancel();
        return lost!;
      },
      (e: Error) => e,
    );
    const err = await watched;
    assert.match(err.message, /etcd canceled the watch from revision \d+ \(compacted past it/);
  });

  it('refuses writes with RESOURCE_EXHAUSTED, keeps reads, reports it, and recovers after compact + defragment + disarm', async () => {
    const api = conn!.api;
    await api.createService({ spec: spec('before') });
    // Fill etcd outside /convoy/ until it raises NOSPACE.
    // Its own client: the refusals open that client's circuit breaker, not the test's.
    const filler = EtcdStore.connect([etcd!.endpoint], undefined, undefined, { tls: etcd!.clientTls });
    let full: unknown;
    try {
      for (let i = 0; i < 400 && !full; i++) {
        try {
          await filler.client.put(`/filler/${i}`).value(FILLER);
        } catch (e) {
          full = e;
        }
      }
    } finally {
      await filler.close();
    }
    assert.ok(full, 'etcd never raised NOSPACE');
    assert.ok((await store!.maintenance.status()).alarms.includes('NOSPACE'));
    // The store's typed error, and the Control API's status and message.
    await assert.rejects(store!.put('services', { id: 'x', meta: null } as never, true), StoreFullError);
    await assert.rejects(api.createService({ spec: spec('after') }), (e: grpc.ServiceError) => {
      assert.equal(e.code, grpc.status.RESOURCE_EXHAUSTED);
      assert.match(e.details, /the cluster store is full \(etcd NOSPACE\).*docs\/etcd\.md/);
      return true;
    });
    // Reads still answer.
    assert.ok((await api.listServices({})).services.some((s) => s.service?.spec?.name === 'before'));
    // The manager's maintenance loop sees the alarm: metric, and the event it counts.
    await eventually(async () => /convoy_etcd_alarm\{alarm="NOSPACE"[^}]*\} 1/.test(await metrics()), 'NOSPACE metric', { timeoutMs: 30_000, pollMs: 500 });
    assert.match(await metrics(), /convoy_events_total\{type="cluster"[^}]*\} 1/);

    // Recovery: the filler goes (deletes are allowed under NOSPACE), then what the manager does for an embedded etcd.
    await store!.client.delete().prefix('/filler/');
    const reports: string[] = [];
    const janitor = new StoreJanitor(store!.maintenance, {
      reclaim: true,
      log: nullLogger,
      report: { status: () => undefined, full: (f) => void reports.push(f ? 'full' : 'recovered'), defragmented: () => void reports.push('defragmented') },
    });
    await janitor.check();
    await janitor.stop();
    assert.deepEqual(reports, ['full', 'defragmented', 'recovered']);
    const st = await store!.maintenance.status();
    assert.deepEqual(st.alarms, []);
    assert.ok(st.dbSizeBytes < QUOTA_BYTES, `defragmented to ${st.dbSizeBytes} bytes`);
    await api.createService({ spec: spec('after') });
    await eventually(async () => /convoy_etcd_alarm\{alarm="NOSPACE"[^}]*\} 0/.test(await metrics()), 'NOSPACE metric cleared', { timeoutMs: 30_000, pollMs: 500 });
  });
});
