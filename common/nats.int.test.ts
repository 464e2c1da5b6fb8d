// NatsLink against a real nats-server: it connects in the background, keeps
// publishing through a server restart, and while the server is away holds at
// most MAX_QUEUED messages (the oldest are dropped and counted).
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { startNats, type EmbeddedNats } from '../manager/embedded/nats';
import { freePort } from './net';
import { ensureEventsStream } from '../manager/observe/mod';
import { EVENTS_MAX_BYTES, EVENTS_MAX_MSG_BYTES, EVENTS_STREAM } from '../proto/events';
import { MAX_QUEUED, NatsLink } from './nats';
import { eventually } from './eventually';
import { createTestCa } from './testing/test-ca';
import type { TlsBundle } from './identity';

describe('NatsLink (real nats-server)', function () {
  this.timeout(60_000);
  let dir = '';
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'convoy-test-nats-'));
  });
  let nats: EmbeddedNats | undefined;
  let port = 0;
  let pub: NatsLink | undefined;
  let sub: NatsLink | undefined;

  let server: TlsBundle;
  let client: TlsBundle;
  const ids = [{ id: 'm1', role: 'manager' as const, cluster: 'c1' }];
  before(async () => {
    port = await freePort();
    const ca = await createTestCa('c1');
    server = await ca.bundle({ id: 'm1', role: 'manager', ips: ['127.0.0.1'] });
    client = server;
  });
  after(async () => {
    await pub?.close();
    await sub?.close();
    await nats?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('connects once the server comes up, buffers while it is away (bounded), and delivers after it returns', async () => {
    const url = `tls://127.0.0.1:${port}`;
    let streams = 0;
    pub = new NatsLink({ url, tls: client, name: 'test-pub', onConnect: async (nc) => (await ensureEventsStream(nc), void streams++) }).start();
    // No server yet: publishes wait in the bounded queue.
    pub.publish('convoy.events.test.early.m1', { n: 0 });
    nats = await startNats({ dataDir: dir, port, tls: server, identities: ids });
    sub = new NatsLink({ url, tls: client, name: 'test-sub' }).start();
    const got: number[] = [];
    sub.subscribe('convoy.stats.*', (d) => got.push((d as { n: number }).n));
    await eventually(() => !!pub?.connected && !!sub?.connected, 'both connected');
    await eventually(() => streams >= 1, 'the stream made on connect');
    const jsm = await pub.connection()!.jetstreamManager();
    const cfg = (await jsm.streams.info(EVENTS_STREAM)).config;
    assert.equal(cfg.subjects[0], 'convoy.events.>');
    assert.equal(cfg.max_bytes, EVENTS_MAX_BYTES, 'the stream has a byte limit');
    assert.equal(cfg.max_msg_size, EVENTS_MAX_MSG_BYTES);

    // The early message may have gone out before the subscriber was there; send a marker.
    pub.publish('convoy.stats.m1', { n: 1 });
    await eventually(() => got.includes(1), 'the live message');

    await nats.stop();
    await eventually(() => !pub?.connected, 'publisher sees the disconnect');
    for (let i = 0; i < MAX_QUEUED + 500; i++) pub.publish('convoy.events.test.outage.m1', { n: 1000 + i });
    assert.equal(pub.dropped, 500, 'the oldest beyond MAX_QUEUED are dropped');

    // Back on the same port and store: the link reconnects and sends what it kept;
    // the events stream (file storage) records it.
    nats = await startNats({ dataDir: dir, port, tls: server, identities: ids });
    const stored = async () => {
      const nc = pub?.connection();
      if (!nc || !pub?.connected) return undefined;
      return (await nc.jetstreamManager()).streams.info(EVENTS_STREAM).catch(() => undefined);
    };
    await eventually(async () => (await stored())?.state.messages === MAX_QUEUED, 'the kept messages stored', 30_000);
    const first = await (await pub.connection()!.jetstreamManager()).streams.getMessage(EVENTS_STREAM, { seq: (await stored())!.state.first_seq });
    assert.equal(first.json<{ n: number }>().n, 1500, 'the newest were kept, in order');
    await eventually(() => streams >= 2, 'stream ensured again after the reconnect');
  });
});
