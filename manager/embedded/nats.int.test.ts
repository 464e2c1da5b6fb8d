// Attacks on Convoy's NATS (real nats-server, certificates from a throwaway
// CA): who cannot connect at all, and what a connected identity cannot
// publish or read (proto/nats-auth.ts).
import { strict as assert } from 'node:assert';
import { spawn, type ChildProcess } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as tls from 'node:tls';
import * as os from 'node:os';
import * as path from 'node:path';
import { connect, JSONCodec, type NatsConnection, type Msg } from 'nats';
import { createTestCa, type TestCa } from '../../common/testing/test-ca';
import { eventually } from '../../common/eventually';
import { natsTlsOptions } from '../../common/nats-tls';
import type { Identity, TlsBundle } from '../../common/identity';
import { EVENTS_MAX_BYTES, EVENTS_MAX_MSG_BYTES, EVENTS_STREAM, eventSubject, logsSubject, statsSubject } from '../../proto/events';
import { ensureEventsStream } from '../observe/mod';
import { canConnect } from '../../common/net';
import { natsServersFor, startNats, type EmbeddedNats } from './nats';

const CLUSTER = 'c1';
const id = (i: string, role: Identity['role']): Identity => ({ id: i, role, cluster: CLUSTER });
const codec = JSONCodec<unknown>();

describe('NATS: TLS with client certificates and per-identity permissions (integration, real nats-server)', function () {
  this.timeout(90_000);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'convoy-nats-auth-'));
  let ca: TestCa;
  let nats: EmbeddedNats | undefined;
  const b: Record<string, TlsBundle> = {};
  const open: NatsConnection[] = [];
  const known = [id('m1', 'manager'), id('n1', 'worker'), id('n2', 'worker'), id('alice', 'operator'), id('vic', 'viewer')];

  const dial = async (tls: Partial<TlsBundle> | undefined): Promise<NatsConnection> => {
    const url = nats!.url;
    const nc = await connect({
      servers: url,
      name: 'attack',
      timeout: 3_000,
      reconnect: false,
      ...(tls ? { tls: tls.cert ? natsTlsOptions(url, tls as TlsBundle) : { ca: tls.ca } } : {}),
    });
    open.push(nc);
    return nc;
  };
  /** Collects what `nc` receives on `subject`; reports a subscription the server refused. */
  const listen = (nc: NatsConnection, subject: string) => {
    const got: { subject: string; data: unknown }[] = [];
    const state = { refused: '' };
    nc.subscribe(subject, {
      callback: (err, m: Msg) => {
        if (err) state.refused = err.message;
        else got.push({ subject: m.subject, data: codec.decode(m.data) });
      },
    });
    return { got, state };
  };
  /** The async permission errors the server sent this connection. */
  const violations = (nc: NatsConnection) => {
    const seen: string[] = [];
    void (async () => {
      for await (const s of nc.status()) if (s.type === 'error') seen.push(String(s.data));
    })().catch(() => undefined);
    return seen;
  };

  before(async () => {
    ca = await createTestCa(CLUSTER);
    b.m1 = await ca.bundle({ id: 'm1', role: 'manager', ips: ['127.0.0.1'] });
    for (const k of known.slice(1)) b[k.id] = await ca.bundle({ id: k.id, role: k.role });
    b.n3 = await ca.bundle({ id: 'n3', role: 'worker' });
    nats = await startNats({ dataDir: dir, tls: b.m1, identities: known });
  });
  afterEach(async () => {
    for (const nc of open.splice(0)) await nc.close().catch(() => undefined);
  });
  after(async () => {
    await nats?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('serves TLS only and keeps its key and configuration 0600', async () => {
    assert.match(nats!.url, /^tls:\/\/127\.0\.0\.1:\d+$/);
    for (const f of ['nats.conf', 'tls/key.pem', 'tls/cert.pem', 'tls/ca.pem']) assert.equal(fs.statSync(path.join(dir, f)).mode & 0o777, 0o600, f);
    await assert.rejects(connect({ servers: nats!.url.replace('tls:', 'nats:'), timeout: 3_000, reconnect: false, tls: null }), 'a plaintext client');
  });

  it('refuses a client with no certificate, another CA’s, an expired one, or one not among its identities', async () => {
    const other = await createTestCa(CLUSTER);
    const forged = await other.bundle({ id: 'n1', role: 'worker' }); // the same subject as a real node
    const expired = await ca.bundle({ id: 'n1', role: 'worker', notBefore: new Date(Date.now() - 7200_000), notAfter: new Date(Date.now() - 3600_000) });
    await assert.rejects(dial({ ca: b.m1.ca }), 'no client certificate');
    await assert.rejects(dial({ ca: b.m1.ca, cert: forged.cert, key: forged.key }), 'another CA');
    await assert.rejects(dial({ ca: b.m1.ca, cert: expired.cert, key: expired.key }), 'expired');
    await assert.rejects(dial(b.n3), /Authorization Violation/i, 'a valid certificate that maps to no user');
    // And the real ones connect.
    for (const k of known) await dial(b[k.id]);
  });

  it('a worker publishes its own stats and events only; forged ones for another node never arrive', async () => {
    const m1 = await dial(b.m1);
    const stats = listen(m1, 'convoy.stats.*');
    await m1.flush();
    const alice = await dial(b.alice); // operators read live events
    const events = listen(alice, 'convoy.events.>');
    await alice.flush();
    const n1 = await dial(b.n1);
    const errs = violations(n1);
    n1.publish(statsSubject('n2'), codec.encode({ forged: true }));
    n1.publish(eventSubject({ type: 'task', action: 'state' }, 'n2'), codec.encode({ forged: true }));
    n1.publish('convoy.events.node.down.n1', codec.encode({ forged: true })); // its own origin, but not a task event
    n1.publish('convoy.events.service.removed.m1', codec.encode({ forged: true }));
    n1.publish(statsSubject('n1'), codec.encode({ mine: true }));
    n1.publish(eventSubject({ type: 'task', action: 'state' }, 'n1'), codec.encode({ mine: true }));
    await n1.flush();
    await eventually(() => stats.got.length >= 1 && events.got.length >= 1, 'the legitimate stats and event');
    await eventually(() => errs.length >= 4, 'a permission violation per forged publish');
    // Same connection, in order: had a forged message passed, it would have arrived first.
    assert.deepEqual(stats.got, [{ subject: 'convoy.stats.n1', data: { mine: true } }]);
    assert.deepEqual(events.got, [{ subject: 'convoy.events.task.state.n1', data: { mine: true } }]);
    assert.deepEqual(errs, Array(4).fill('PERMISSIONS_VIOLATION'));
  });

  it('a worker cannot read another node’s log requests, anyone’s stats, or log answers', async () => {
    const n1 = await dial(b.n1);
    const others = listen(n1, logsSubject('n2'));
    const allStats = listen(n1, 'convoy.stats.*');
    const answers = listen(n1, '_INBOX.convoy.logs.>');
    const own = listen(n1, logsSubject('n1'));
    await n1.flush().catch(() => undefined);
    await eventually(() => others.state.refused && allStats.state.refused && answers.state.refused, 'the three subscriptions refused');
    assert.match(others.state.refused, /Permissions Violation for Subscription/);
    const alice = await dial(b.alice);
    alice.publish(logsSubject('n1'), codec.encode({ ask: 1 }));
    await eventually(() => own.got.length === 1, 'its own log request');
  });

  it('a viewer and an operator read the events stream and ask for logs, but write no events or stats', async () => {
    const m1 = await dial(b.m1);
    await ensureEventsStream(m1);
    m1.publish(eventSubject({ type: 'service', action: 'created' }, 'm1'), codec.encode({ type: 'service', action: 'created', source: 'manager/m1' }));
    await m1.flush();
    const n2 = await dial(b.n2);
    const asks = listen(n2, logsSubject('n2'));
    await n2.flush();

    const vic = await dial(b.vic);
    const errs = violations(vic);
    vic.publish(eventSubject({ type: 'service', action: 'removed' }, 'm1'), codec.encode({ forged: true }));
    vic.publish(statsSubject('n2'), codec.encode({ forged: true }));
    await vic.flush().catch(() => undefined);
    await eventually(() => errs.length >= 2, 'the viewer’s forged event and stats refused');
    vic.publish(logsSubject('n2'), codec.encode({ ask: 'viewer' }));
    await eventually(() => asks.got.length === 1, 'the viewer’s log request');
    // The viewer reads the events stream (an ordered consumer, as `convoy events --since` does).
    const readEvents = async (nc: NatsConnection) => {
      const c = await nc.jetstream().consumers.get(EVENTS_STREAM);
      const batch = await c.fetch({ max_messages: 10, expires: 2_000 });
      const subjects: string[] = [];
      for await (const m of batch) subjects.push(m.subject);
      return subjects;
    };
    assert.deepEqual(await readEvents(vic), ['convoy.events.service.created.m1']);

    const alice = await dial(b.alice);
    assert.deepEqual(await readEvents(alice), ['convoy.events.service.created.m1']);
    alice.publish(logsSubject('n2'), codec.encode({ ask: 'operator' }));
    await eventually(() => asks.got.length === 2, 'the operator’s log request');
    assert.deepEqual(asks.got.map((g) => g.data), [{ ask: 'viewer' }, { ask: 'operator' }]);
    // An operator cannot write events or stats either.
    const aerrs = violations(alice);
    alice.publish(statsSubject('n2'), codec.encode({ forged: true }));
    alice.publish(eventSubject({ type: 'service', action: 'removed' }, 'm1'), codec.encode({ forged: true }));
    await eventually(() => aerrs.length >= 2, 'the operator’s forged publishes refused');
  });

  it('gives an events stream made without byte limits its limits', async () => {
    // A server of its own: the shared one's stream already has limits (and managers may not delete streams).
    const fresh = await startNats({ dataDir: path.join(dir, 'fresh'), tls: b.m1, identities: known });
    try {
      const m1 = await connect({ servers: fresh.url, tls: natsTlsOptions(fresh.url, b.m1), timeout: 3_000, reconnect: false });
      open.push(m1);
      const jsm = await m1.jetstreamManager();
      await jsm.streams.add({ name: EVENTS_STREAM, subjects: ['convoy.events.>'] });
      assert.equal((await jsm.streams.info(EVENTS_STREAM)).config.max_bytes, -1, 'unlimited, as streams were made before');
      await ensureEventsStream(m1);
      const cfg = (await jsm.streams.info(EVENTS_STREAM)).config;
      assert.equal(cfg.max_bytes, EVENTS_MAX_BYTES);
      assert.equal(cfg.max_msg_size, EVENTS_MAX_MSG_BYTES);
    } finally {
      for (const nc of open.splice(0)) await nc.close().catch(() => undefined);
      await fresh.stop();
    }
  });

  it('setIdentities reloads: a new node can connect, a removed one no longer can', async () => {
    await assert.rejects(dial(b.n3));
    await nats!.setIdentities([...known.filter((k) => k.id !== 'n2'), id('n3', 'worker')]);
    await dial(b.n3);
    await assert.rejects(dial(b.n2), /Authorization Violation/i);
    await nats!.setIdentities(known);
  });

  /** The serial of the certificate a NATS server presents (its INFO line comes first in plaintext, then the TLS upgrade). */
  const presentedSerial = (url: string, ca: string) =>
    new Promise<string>((resolve, reject) => {
      const { hostname, port } = new URL(url);
      const plain = net.connect(Number(port), hostname);
      plain.once('error', reject);
      plain.once('data', () => {
        const s = tls.connect({ socket: plain, ca, checkServerIdentity: () => undefined }, () => {
          resolve(new crypto.X509Certificate(s.getPeerCertificate().raw).serialNumber);
          s.destroy();
        });
        s.once('error', reject);
      });
    });

  it('setTls: new connections get the renewed server certificate, without a restart', async () => {
    const fresh = await startNats({ dataDir: path.join(dir, 'renew'), tls: b.m1, identities: known });
    try {
      const first = new crypto.X509Certificate(b.m1.cert).serialNumber;
      assert.equal(await presentedSerial(fresh.url, ca.caPem), first);
      const renewed = await ca.bundle({ id: 'm1', role: 'manager', ips: ['127.0.0.1'] });
      await fresh.setTls(renewed);
      assert.equal(await presentedSerial(fresh.url, ca.caPem), new crypto.X509Certificate(renewed.cert).serialNumber);
      assert.deepEqual(natsServersFor(path.join(dir, 'renew', 'nats.conf')), [fresh.pid], 'the same server');
      const nc = await connect({ servers: fresh.url, tls: natsTlsOptions(fresh.url, b.n1), timeout: 3_000, reconnect: false });
      open.push(nc);
      await nc.flush();
    } finally {
      await fresh.stop();
    }
  });

  it('after an outage, a server started again from its file by someone else is reloaded by setIdentities: a node added later connects', async () => {
    const d = path.join(dir, 'outage');
    const fresh = await startNats({ dataDir: d, tls: b.m1, identities: known });
    let again: ChildProcess | undefined;
    try {
      const { hostname, port } = new URL(fresh.url);
      process.kill(fresh.pid, 'SIGKILL');
      await eventually(async () => !(await canConnect(`${hostname}:${port}`)), 'the server down');
      // Started again from the same file (as the lab's startLabNats or an operator would), logging where the manager looks.
      const log = fs.openSync(path.join(d, 'nats.log'), 'a');
      again = spawn('nats-server', ['-c', path.join(d, 'nats.conf')], { stdio: ['ignore', log, log] });
      fs.closeSync(log);
      await eventually(() => canConnect(`${hostname}:${port}`), 'the server up again');
      const dialFresh = (bundle: TlsBundle) => connect({ servers: fresh.url, tls: natsTlsOptions(fresh.url, bundle), timeout: 3_000, reconnect: false }).then((nc) => (open.push(nc), nc));
      await dialFresh(b.n1);
      await assert.rejects(dialFresh(b.n3), /Authorization Violation/i);
      await fresh.setIdentities([...known, id('n3', 'worker')]);
      await dialFresh(b.n3);
    } finally {
      again?.kill('SIGKILL');
      await fresh.stop().catch(() => undefined);
    }
  });
});
