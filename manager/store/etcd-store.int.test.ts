// The Store contract on a real etcd (per-object conflicts in one transaction
// chunk, leases lapsing on etcd's clock).
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { startEtcd, type EmbeddedEtcd } from '../embedded/etcd';
import { EtcdStore } from './etcd-store';
import { LeaseNotFoundError } from './errors';
import { storeContract } from './testing/contract';

describe('EtcdStore (integration, real etcd)', function () {
  this.timeout(60_000);
  let etcd: EmbeddedEtcd | undefined;
  let dir = '';
  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'convoy-store-'));
    etcd = await startEtcd({ dataDir: path.join(dir, 'etcd') });
  });
  after(async () => {
    await etcd?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  storeContract('EtcdStore', async () => {
    // One etcd for all the tests: each starts on an empty /convoy/ and no election.
    // A small txn limit, so one batch spans several chunks and the conflict is inside one of them.
    const store = EtcdStore.connect([etcd!.endpoint], 64, undefined, { tls: etcd!.clientTls });
    await store.client.delete().prefix('/convoy/');
    await store.client.delete().prefix('convoy-leader');
    return {
      store,
      async lapse(leaseId) {
        // etcd's own clock: wait until the lease is gone (TTL 2 s, no keepalives).
        const end = Date.now() + 15_000;
        for (;;) {
          // Gone from etcd's list of leases = revoked by its lessor, keys deleted.
          const res = await store.client.leaseClient.leaseLeases();
          if (!res.leases.some((l) => String(l.ID) === leaseId)) return;
          if (Date.now() > end) throw new Error(`lease ${leaseId} did not lapse`);
          await new Promise((r) => setTimeout(r, 200));
        }
      },
      close: () => store.close(),
    };
  });

  it('keeps many leases alive with concurrent keepalives; a revoked one among them fails alone', async () => {
    const store = EtcdStore.connect([etcd!.endpoint], undefined, undefined, { tls: etcd!.clientTls });
    try {
      const leases = await Promise.all(Array.from({ length: 50 }, () => store.grantLease(2)));
      const gone = await store.grantLease(2);
      await gone.revoke();
      // Concurrent keepalives of the same and of different leases.
      const calls = [...leases, ...leases].map((l) => l.keepAlive());
      const lost = gone.keepAlive();
      await Promise.all(calls);
      await assert.rejects(lost, LeaseNotFoundError);
      // Past several TTLs of keepalives, every lease is still there.
      for (let round = 0; round < 4; round++) {
        await new Promise((r) => setTimeout(r, 700));
        await Promise.all(leases.map((l) => l.keepAlive()));
      }
      const live = new Set((await store.client.leaseClient.leaseLeases()).leases.map((l) => String(l.ID)));
      for (const l of leases) assert.ok(live.has(l.id), `lease ${l.id} kept alive`);
      await Promise.all(leases.map((l) => l.revoke()));
    } finally {
      await store.close();
    }
  });
});
