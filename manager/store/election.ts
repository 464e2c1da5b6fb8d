// The main thread's side of the election worker (./election-worker.ts): the
// campaigns and the manager registration of an EtcdStore, run on a worker
// thread with its own etcd client, so their leases' keepalives do not wait
// on the main event loop. The main thread pings the worker every PING_MS;
// the worker resigns the lead when the pings stop for the watchdog's time.
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import type { TlsBundle } from '../../common/identity';
import { StoreUnavailableError } from './errors';
import type { Campaign, CampaignEvent } from './store';

/** How often the main thread tells the worker it is alive. */
export const PING_MS = 250;
/**
 * Main-thread silence after which the worker resigns the lead. Five
 * election TTLs: longer than any stall measured under load (bench:schedule
 * at load 10+: 5 s), short enough that a stuck leader hands over within
 * seconds. A main thread silent this long is not serving its agents either
 * (their session leases lapse after 3 heartbeat periods).
 */
export const DEFAULT_WATCHDOG_MS = 10_000;

export interface ElectionWorkerData {
  endpoints: string[];
  watchdogMs: number;
  /** The store's etcd TLS material (PEM strings), for the worker's own client. */
  tls?: TlsBundle;
}

export type ElectionRequest =
  | { type: 'ping' }
  | { type: 'campaign'; cid: number; id: string; ttlS: number }
  | { type: 'resign'; cid: number; req: number }
  | { type: 'register'; req: number; id: string; addr: string; ttlS: number }
  | { type: 'unregister'; req: number; lease: number }
  | { type: 'close'; req: number };

export type ElectionReply =
  | { type: 'elected'; cid: number }
  | { type: 'lost'; cid: number; err: { name: string; message: string } }
  | { type: 'done'; req: number; err?: { name: string; message: string } };

const toError = (e: { name: string; message: string }): Error => {
  if (e.name === 'StoreUnavailableError') return new StoreUnavailableError(e.message);
  const err = new Error(e.message);
  err.name = e.name;
  return err;
};

export class ElectionWorker {
  private readonly worker: Worker;
  private readonly pinger: NodeJS.Timeout;
  private readonly campaigns = new Map<number, (e: CampaignEvent) => void>();
  private readonly pending = new Map<number, { resolve: () => void; reject: (e: Error) => void }>();
  private next = 1;
  private exited = false;

  constructor(endpoints: string[], watchdogMs = DEFAULT_WATCHDOG_MS, tls?: TlsBundle) {
    const data: ElectionWorkerData = { endpoints, watchdogMs, tls };
    // The compiled worker sits next to this module (dist/manager/store/election-worker.js).
    this.worker = new Worker(path.join(__dirname, 'election-worker.js'), { workerData: data });
    // The worker never keeps the process alive: the manager's own handles do.
    this.worker.unref();
    this.worker.on('message', (m: ElectionReply) => this.onReply(m));
    this.worker.on('error', (e) => this.fail(e));
    this.worker.on('exit', () => this.fail(new StoreUnavailableError('election worker exited')));
    this.pinger = setInterval(() => this.post({ type: 'ping' }), PING_MS);
    this.pinger.unref();
  }

  campaign(id: string, ttlS: number): Campaign {
    const cid = this.next++;
    const fns: ((e: CampaignEvent) => void)[] = [];
    this.campaigns.set(cid, (e) => fns.forEach((f) => f(e)));
    this.post({ type: 'campaign', cid, id, ttlS });
    return {
      on: (fn) => void fns.push(fn),
      resign: async () => {
        this.campaigns.delete(cid);
        await this.request((req) => ({ type: 'resign', cid, req }));
      },
    };
  }

  async registerManager(id: string, addr: string, ttlS: number): Promise<{ close(): Promise<void> }> {
    const lease = await this.request((req) => ({ type: 'register', req, id, addr, ttlS }));
    return { close: () => this.request((req) => ({ type: 'unregister', req, lease })).then(() => undefined, () => undefined) };
  }

  /** Resigns what is left, closes the worker's client and ends the thread. */
  async close(): Promise<void> {
    clearInterval(this.pinger);
    if (!this.exited) await this.request((req) => ({ type: 'close', req })).catch(() => undefined);
    await this.worker.terminate();
  }

  private post(m: ElectionRequest): void {
    if (!this.exited) this.worker.postMessage(m);
  }

  private request(make: (req: number) => ElectionRequest): Promise<number> {
    if (this.exited) return Promise.reject(new StoreUnavailableError('election worker exited'));
    const req = this.next++;
    return new Promise<number>((resolve, reject) => {
      this.pending.set(req, { resolve: () => resolve(req), reject });
      this.post(make(req));
    });
  }

  private onReply(m: ElectionReply): void {
    if (m.type === 'done') {
      const p = this.pending.get(m.req);
      this.pending.delete(m.req);
      if (m.err) p?.reject(toError(m.err));
      else p?.resolve();
      return;
    }
    const fn = this.campaigns.get(m.cid);
    if (!fn) return;
    if (m.type === 'lost') this.campaigns.delete(m.cid);
    fn(m.type === 'elected' ? { type: 'elected' } : { type: 'lost', err: toError(m.err) });
  }

  /** The worker is gone: every campaign is lost, every request fails. */
  private fail(e: Error): void {
    if (this.exited) return;
    this.exited = true;
    clearInterval(this.pinger);
    for (const p of this.pending.values()) p.reject(e);
    this.pending.clear();
    const fns = [...this.campaigns.values()];
    this.campaigns.clear();
    for (const fn of fns) fn({ type: 'lost', err: e });
  }
}
