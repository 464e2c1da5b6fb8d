// Churn benchmark: an hour of operator updates compressed into a few minutes,
// and what it does to etcd's database. A manager in this process on its own
// etcd, SERVICES services with no nodes (their tasks are created, replaced
// and removed by every update all the same: the churn the store sees), then
// UPDATES updates (env changes that roll every task, scales, rollbacks) paced
// over DURATION_S. etcd runs with Convoy's flags (manager/embedded/etcd.ts)
// and the maintenance the manager runs for an embedded etcd
// (manager/store/maintenance.ts), with their clocks compressed by the same
// factor as the hour: compaction window RETENTION, defragmentation at most
// every DEFRAG_EVERY_S.
//
// Prints the DB size as it goes and, last line, the sizes before and after:
// bounded means after stays near before (and far below what the history of
// every update would take) however many updates ran. Never fails on time.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { startEtcd, type EmbeddedEtcd } from '../manager/embedded/etcd';
import { startManager, type ManagerHandle } from '../manager/mod';
import { EtcdStore } from '../manager/store/etcd-store';
import { StoreJanitor } from '../manager/store/maintenance';
import { connectControl, type ConnectedApi } from '../cli/client';
import { adminSecurity } from '../e2e/support/security';
import { freePort } from '../common/net';
import { errMsg, nullLogger } from '../common/logger';
import type { ServiceSpec } from '../proto/mod';
import { onInterrupt, scratchDir, sweepScratch } from './support';

const UPDATES = Number(process.env.UPDATES ?? 3600);
const SERVICES = Number(process.env.SERVICES ?? 5);
/** The hour, compressed. */
const DURATION_S = Number(process.env.DURATION_S ?? 180);
/** An hour into DURATION_S is a factor of 20 at the default: the 5 m compaction window becomes 15 s. */
const RETENTION = process.env.RETENTION ?? '15s';
/** The 10 min minimum between defragmentations, compressed alike. */
const DEFRAG_EVERY_S = Number(process.env.DEFRAG_EVERY_S ?? 30);
/** The bench's DB is small: let a defragmentation run from a few MB, not the production 64 MB floor. */
const DEFRAG_MIN_BYTES = 2 * 1024 * 1024;
/** Updates in flight at once (an operator's scripts, a CI pipeline or two). */
const CONCURRENCY = 4;

/** Each run's directory (etcd data, manager data dir): <tmp>/convoy-churn-XXXXXX. */
const SCRATCH_PREFIX = 'convoy-churn-';

const mb = (b: number) => (b / 1024 / 1024).toFixed(2);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function spec(name: string, replicas: number, gen: number): ServiceSpec {
  return { name, replicas, container: { image: 'registry.local/churn:1', env: [`GEN=${gen}`] } } as ServiceSpec;
}

async function main(): Promise<void> {
  // What an interrupted or crashed earlier run left (its etcd still running, its directory).
  for (const d of await sweepScratch(SCRATCH_PREFIX)) console.log(`removed what an earlier run left: ${d}`);
  const dir = scratchDir(SCRATCH_PREFIX);
  let etcd: EmbeddedEtcd | undefined;
  let manager: ManagerHandle | undefined;
  let conn: ConnectedApi | undefined;
  let store: EtcdStore | undefined;
  let janitor: StoreJanitor | undefined;
  let stopped: Promise<void> | undefined;
  /** Stops what this run started (once), in the reverse order, and removes its directory. */
  const stopAll = () =>
    (stopped ??= (async () => {
      await janitor?.stop();
      conn?.close();
      await manager?.stop().catch(() => undefined);
      await store?.close();
      await etcd?.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    })());
  const offInterrupt = onInterrupt(stopAll);
  try {
    etcd = await startEtcd({ dataDir: path.join(dir, 'etcd'), autoCompactionRetention: RETENTION });
    manager = await startManager({ dataDir: path.join(dir, 'manager'), listen: `127.0.0.1:${await freePort()}`, etcdEndpoints: [etcd.endpoint], etcdTls: etcd.clientTls, natsUrl: '', logger: nullLogger });
    conn = connectControl(manager.grpcAddr, adminSecurity(manager));
    const api = conn.api;
    store = EtcdStore.connect([etcd.endpoint], undefined, undefined, { tls: etcd.clientTls });
    const m = store.maintenance;
    let defrags = 0;
    let peak = 0;
    janitor = new StoreJanitor(m, {
      reclaim: true,
      log: nullLogger,
      checkMs: 2000,
      defragMinBytes: DEFRAG_MIN_BYTES,
      defragMinIntervalMs: DEFRAG_EVERY_S * 1000,
      report: {
        status: (st) => void (peak = Math.max(peak, st.dbSizeBytes)),
        full: (f, msg) => console.log(`store ${f ? 'FULL' : 'recovered'}: ${msg}`),
        defragmented: (b, a, s) => {
          defrags++;
          console.log(`  defragmented ${mb(b)} → ${mb(a)} MB in ${s.toFixed(2)} s`);
        },
      },
    }).start();

    const names = Array.from({ length: SERVICES }, (_, i) => `churn-${i}`);
    for (const n of names) await api.createService({ spec: spec(n, 3, 0) });
    await sleep(2000);
    const before = await m.status();
    console.log(`churn: ${UPDATES} updates of ${SERVICES} services over ~${DURATION_S} s; etcd compaction window ${RETENTION}, defrag at most every ${DEFRAG_EVERY_S} s`);
    console.log(`before: db ${mb(before.dbSizeBytes)} MB (in use ${mb(before.dbSizeInUseBytes)} MB), revision ${before.revision}`);

    const t0 = performance.now();
    const gens = new Map(names.map((n) => [n, 0]));
    let next = 0;
    let done = 0;
    let failed = 0;
    let lastError = '';
    const one = async (i: number) => {
      const name = names[i % names.length];
      const kind = Math.floor(i / names.length) % 10;
      try {
        if (kind === 9) {
          await api.rollbackService({ service: name });
        } else if (kind % 3 === 2) {
          await api.scaleService({ service: name, replicas: 2 + (i % 3) });
        } else {
          const cur = (await api.getService({ service: name })).service;
          const gen = (gens.get(name) ?? 0) + 1;
          gens.set(name, gen);
          await api.updateService({ service: name, version: cur?.meta?.version ?? 0, spec: { ...spec(name, Number(cur?.spec?.replicas ?? 3), gen) } });
        }
      } catch (e) {
        failed++;
        lastError = errMsg(e);
      }
      done++;
    };
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        for (let i = next++; i < UPDATES; i = next++) {
          // Paced: update i is due at i/UPDATES of the compressed hour.
          const due = t0 + (i / UPDATES) * DURATION_S * 1000;
          const wait = due - performance.now();
          if (wait > 0) await sleep(wait);
          await one(i);
          if (done % 600 === 0) {
            const st = await m.status();
            console.log(`  ${done} updates, ${((performance.now() - t0) / 1000).toFixed(0)} s: db ${mb(st.dbSizeBytes)} MB, in use ${mb(st.dbSizeInUseBytes)} MB, revision ${st.revision}`);
          }
        }
      }),
    );
    const elapsed = (performance.now() - t0) / 1000;
    // Let the last compaction window pass and the janitor have its round, as an hour's end would.
    await sleep(20_000);
    await janitor.check();
    const after = await m.status();
    const revs = after.revision - before.revision;
    console.log(`after: db ${mb(after.dbSizeBytes)} MB (in use ${mb(after.dbSizeInUseBytes)} MB), revision ${after.revision}; peak ${mb(peak)} MB; ${defrags} defragmentations`);
    console.log(`${done} updates in ${elapsed.toFixed(0)} s (${failed} refused${failed ? `, last: ${lastError}` : ''}); ${revs} revisions written (${(revs / Math.max(1, done / 1000)).toFixed(0)} per 1,000 updates): history kept would be all of them; the DB holds the last ${RETENTION} of it`);
    console.log(
      `db_mb_before=${mb(before.dbSizeBytes)} db_mb_after=${mb(after.dbSizeBytes)} db_in_use_mb_before=${mb(before.dbSizeInUseBytes)} db_in_use_mb_after=${mb(after.dbSizeInUseBytes)} db_mb_peak=${mb(peak)} updates=${done} revisions=${revs}`,
    );
  } finally {
    await offInterrupt();
    await stopAll();
  }
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(`churn failed: ${errMsg(e)}`);
    process.exit(1);
  },
);
