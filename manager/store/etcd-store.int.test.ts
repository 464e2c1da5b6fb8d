// The Store contract on a real etcd (per-object conflicts in one transaction
// chunk, leases lapsing on etcd's clock).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { startEtcd, type EmbeddedEtcd } from '../embedded/etcd';
import { EtcdStore } from './etcd-store';
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
    const store = EtcdStore.connect([etcd!.endpoint], 64);
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
});
