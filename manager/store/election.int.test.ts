// The election off the main thread, on a real etcd: the lead survives a
// main thread blocked for several lease TTLs (the keepalive runs on the
// election worker), and the watchdog gives the lead up when the main thread
// stays blocked past its limit.
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { startEtcd, type EmbeddedEtcd } from '../embedded/etcd';
import { EtcdStore } from './etcd-store';
import type { Campaign, CampaignEvent } from './store';

const TTL_S = 2;

/** Holds the main thread: no timer, no I/O callback, no message from the worker runs meanwhile. */
function blockMainThread(ms: number): void {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    /* busy */
  }
}

async function until(what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A campaign and what it was told. */
function stand(store: EtcdStore, id: string): { c: Campaign; events: CampaignEvent[] } {
  const c = store.campaign(id, TTL_S);
  const events: CampaignEvent[] = [];
  c.on((e) => events.push(e));
  return { c, events };
}

describe('EtcdStore election on a worker thread (integration, real etcd)', function () {
  this.timeout(90_000);
  let etcd: EmbeddedEtcd | undefined;
  let dir = '';
  const stores: EtcdStore[] = [];
  const connect = (watchdogMs?: number) => {
    const s = EtcdStore.connect([etcd!.endpoint], undefined, undefined, { watchdogMs, tls: etcd!.clientTls });
    stores.push(s);
    return s;
  };
  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'convoy-election-'));
    etcd = await startEtcd({ dataDir: path.join(dir, 'etcd') });
  });
  afterEach(async () => {
    for (const s of stores.splice(0)) await s.close().catch(() => undefined);
  });
  after(async () => {
    await etcd?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('keeps the lead through a main-thread block of 3 TTLs; the other candidate does not win', async () => {
    const a = connect();
    const b = connect();
    const m1 = stand(a, 'm1');
    await until('m1 elected', () => m1.events.some((e) => e.type === 'elected'));
    const reg = await a.registerManager('m1', '127.0.0.1:1', TTL_S);
    const m2 = stand(b, 'm2');
    assert.equal(await a.leader(), 'm1');

    blockMainThread(3 * TTL_S * 1000);

    // etcd says who leads: still m1, and its registration is still there.
    assert.equal(await a.leader(), 'm1');
    assert.deepEqual([...(await a.managers())], [['m1', '127.0.0.1:1']]);
    // Whatever the workers said during the block has arrived by now (a round trip to etcd later).
    await a.leader();
    assert.deepEqual(m1.events.map((e) => e.type), ['elected'], 'm1 was not told it lost');
    assert.deepEqual(m2.events, [], 'm2 did not win');

    await m1.c.resign();
    await until('m2 elected after m1 resigned', () => m2.events.some((e) => e.type === 'elected'));
    assert.equal(await b.leader(), 'm2');
    await m2.c.resign();
    await reg.close();
    assert.deepEqual([...(await a.managers())], []);
  });

  it('the watchdog resigns the lead when the main thread stays blocked past its limit', async () => {
    const watchdogMs = 1000;
    const a = connect(watchdogMs);
    const b = connect();
    const m1 = stand(a, 'm1');
    await until('m1 elected', () => m1.events.some((e) => e.type === 'elected'));
    const m2 = stand(b, 'm2');

    blockMainThread(watchdogMs + 3000);

    await until('m1 told it lost', () => m1.events.some((e) => e.type === 'lost'));
    const lost = m1.events.find((e) => e.type === 'lost');
    assert.ok(lost?.type === 'lost' && /watchdog/.test(lost.err.message), `lost to the watchdog: ${lost?.type === 'lost' ? lost.err.message : ''}`);
    await until('m2 elected', () => m2.events.some((e) => e.type === 'elected'));
    assert.equal(await b.leader(), 'm2');
    await m2.c.resign();
  });
});
