// The election off the main thread: a worker_thread with its own etcd
// client that holds this manager's campaign and its manager-registry lease.
// The leases' keepalives then run on the worker's event loop, so a main
// thread busy for seconds (a burst of 100,000 tasks: the cache applying
// watch events, GC of a large heap, the OS giving the process a fraction of
// a core) no longer costs the lead (2 s TTL), and its own client's circuit
// breaker does not open when the main client's requests time out.
//
// A watchdog keeps the lead from outliving the main thread: the main thread
// pings every PING_MS; when no ping came for `watchdogMs`, the worker
// resigns every campaign and reports it lost. A main thread stuck that long
// is not serving its agents either, and a stuck leader must not keep the
// lead forever. The registry lease stays: the process is alive and may
// answer again; its death (kill -9) ends the worker too, and the leases lapse
// within their TTL as before.
//
// Protocol (ElectionRequest in, ElectionReply out) in ./election.ts.
import { parentPort, workerData } from 'node:worker_threads';
import { Etcd3, type Campaign as EtcdCampaign, type Lease as EtcdLease } from 'etcd3';
import { ELECTION, key } from './store';
import { etcdClientOptions, storeError } from './etcd-store';
import type { ElectionReply, ElectionRequest, ElectionWorkerData } from './election';

/** How often the worker checks the main thread's last ping. */
const WATCHDOG_CHECK_MS = 100;

function main(): void {
  const port = parentPort;
  if (!port) throw new Error('election-worker: not started as a worker thread');
  const data = workerData as ElectionWorkerData;
  const client = new Etcd3(etcdClientOptions(data.endpoints, data.tls));
  const campaigns = new Map<number, EtcdCampaign>();
  const leases = new Map<number, EtcdLease>();
  let lastPing = Date.now();
  const send = (m: ElectionReply) => port.postMessage(m);
  const describe = (e: unknown) => {
    const err = storeError(e);
    return { name: err instanceof Error ? err.name : 'Error', message: err instanceof Error ? err.message : String(err) };
  };

  const watchdog = setInterval(() => {
    const silentMs = Date.now() - lastPing;
    if (silentMs < data.watchdogMs || !campaigns.size) return;
    for (const [cid, c] of campaigns) {
      campaigns.delete(cid);
      void c.resign().catch(() => undefined);
      send({ type: 'lost', cid, err: { name: 'WatchdogError', message: `main thread unresponsive for ${silentMs} ms (watchdog ${data.watchdogMs} ms): resigned the lead` } });
    }
  }, WATCHDOG_CHECK_MS);

  const handle = async (m: ElectionRequest): Promise<void> => {
    switch (m.type) {
      case 'ping':
        lastPing = Date.now();
        return;
      case 'campaign': {
        lastPing = Date.now();
        const c = client.election(ELECTION, m.ttlS).campaign(m.id);
        campaigns.set(m.cid, c);
        c.on('elected', () => {
          if (campaigns.get(m.cid) === c) send({ type: 'elected', cid: m.cid });
        });
        c.on('error', (err) => {
          if (campaigns.get(m.cid) !== c) return;
          campaigns.delete(m.cid);
          send({ type: 'lost', cid: m.cid, err: describe(err) });
        });
        return;
      }
      case 'resign': {
        const c = campaigns.get(m.cid);
        campaigns.delete(m.cid);
        try {
          await c?.resign();
          send({ type: 'done', req: m.req });
        } catch (e) {
          send({ type: 'done', req: m.req, err: describe(e) });
        }
        return;
      }
      case 'register': {
        // Kept alive by etcd3 in the background, on this thread, until unregistered.
        const lease = client.lease(m.ttlS);
        lease.on('lost', () => undefined);
        try {
          await lease.put(key('managers', m.id)).value(m.addr).exec();
          leases.set(m.req, lease);
          send({ type: 'done', req: m.req });
        } catch (e) {
          lease.release();
          send({ type: 'done', req: m.req, err: describe(e) });
        }
        return;
      }
      case 'unregister': {
        const lease = leases.get(m.lease);
        leases.delete(m.lease);
        await lease?.revoke().catch(() => undefined);
        send({ type: 'done', req: m.req });
        return;
      }
      case 'close': {
        clearInterval(watchdog);
        await Promise.all([...campaigns.values()].map((c) => c.resign().catch(() => undefined)));
        campaigns.clear();
        client.close();
        send({ type: 'done', req: m.req });
        port.close();
        return;
      }
    }
  };
  port.on('message', (m: ElectionRequest) => void handle(m));
}

main();
