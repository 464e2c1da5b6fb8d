// The CLI's Control client (control-h2.ts) against a real grpc-js server on
// loopback: what it sends, what it decodes, every way a call fails, and the
// same certificate checks as grpc-js's client.
import { strict as assert } from 'node:assert';
import * as http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { createTestCa, type TestCa } from '../common/testing/test-ca';
import type { TlsBundle } from '../common/identity';
import { MANAGER_SERVER_NAME, PLAINTEXT_FOR_TESTS, mtls, type ControlConnection } from './client';
import { connectControlH2, ControlCallError, GRPC_STATUS, parseTarget } from './control-h2';
import { grpcPackages } from './mod';

type Impl = Partial<Record<string, grpc.handleUnaryCall<unknown, unknown>>>;

interface Served {
  addr: string;
  port: number;
  server: grpc.Server;
  stop(): Promise<void>;
}

async function serve(impl: Impl, creds = grpc.ServerCredentials.createInsecure(), port = 0): Promise<Served> {
  const server = new grpc.Server();
  server.addService(grpcPackages().control.convoy.Control.service, impl as grpc.UntypedServiceImplementation);
  const bound = await new Promise<number>((res, rej) => server.bindAsync(`127.0.0.1:${port}`, creds, (e, p) => (e ? rej(e) : res(p))));
  return {
    addr: `127.0.0.1:${bound}`,
    port: bound,
    server,
    stop: () => new Promise<void>((res) => server.tryShutdown(() => res())),
  };
}

function failure(e: unknown): ControlCallError {
  assert.ok(e instanceof ControlCallError, `expected a ControlCallError, got ${String(e)}`);
  return e;
}

async function rejects(p: Promise<unknown>): Promise<ControlCallError> {
  try {
    await p;
  } catch (e) {
    return failure(e);
  }
  assert.fail('the call succeeded');
}

describe('proto/control-h2 (the CLI Control client, no grpc-js)', function () {
  this.timeout(20_000);
  const open: (ControlConnection | Served)[] = [];
  const track = <T extends ControlConnection | Served>(x: T): T => {
    open.push(x);
    return x;
  };
  afterEach(async () => {
    for (const x of open.splice(0).reverse()) await ('stop' in x ? x.stop() : x.close());
  });

  it('uses the gRPC status numbers', () => {
    for (const [k, v] of Object.entries(GRPC_STATUS)) assert.equal(v, grpc.status[k as keyof typeof grpc.status], k);
    assert.equal(Object.keys(GRPC_STATUS).length, Object.keys(grpc.status).filter((k) => Number.isNaN(Number(k))).length);
  });

  it('sends the request and its metadata, and decodes the answer', async () => {
    let seen: { req: unknown; md: grpc.Metadata; deadline: grpc.Deadline } | undefined;
    const s = track(
      await serve({
        ListServices: (call, cb) => {
          seen = { req: call.request, md: call.metadata, deadline: call.getDeadline() };
          cb(null, { services: [{ service: { id: 's1', spec: { name: 'web', replicas: 3 } } }], nextPageToken: '' });
        },
      }),
    );
    const c = track(connectControlH2(s.addr, { security: PLAINTEXT_FOR_TESTS, metadata: { 'x-convoy-test': 'yes' }, deadlineMs: 7000 }));
    const t0 = Date.now();
    const r = await c.invoke('listServices', { name: 'web', pageSize: 5 });
    assert.equal(r.services.length, 1);
    assert.equal(r.services[0].service?.id, 's1');
    assert.equal(r.services[0].service?.spec?.name, 'web');
    assert.equal(r.services[0].service?.spec?.replicas, 3);
    assert.deepEqual((seen?.req as { name: string; pageSize: number }).name, 'web');
    assert.equal((seen?.req as { pageSize: number }).pageSize, 5);
    assert.deepEqual(seen?.md.get('x-convoy-test'), ['yes']);
    // grpc-timeout reached the server: its deadline is the client's, not infinite.
    const dl = Number(seen?.deadline);
    assert.ok(dl > t0 + 5000 && dl < t0 + 8000, `server deadline ${dl - t0} ms from the call`);
    // A second call rides the same session.
    assert.equal((await c.listServices({})).services.length, 1);
  });

  it('gives the server status and message, percent-decoding included', async () => {
    const s = track(
      await serve({
        GetService: (_call, cb) => cb({ code: grpc.status.NOT_FOUND, details: 'service "wéb" not found: 100% gone' }),
        RemoveService: (_call, cb) => cb({ code: grpc.status.FAILED_PRECONDITION, details: 'in use by\nstack x' }),
      }),
    );
    const c = track(connectControlH2(s.addr, { security: PLAINTEXT_FOR_TESTS }));
    const e = await rejects(c.getService({ service: 'x' }));
    assert.equal(e.code, GRPC_STATUS.NOT_FOUND);
    assert.equal(e.details, 'service "wéb" not found: 100% gone');
    assert.equal(e.host, s.addr);
    assert.match(e.message, /^5 NOT_FOUND: /);
    const e2 = await rejects(c.removeService({ service: 'x' }));
    assert.equal(e2.code, GRPC_STATUS.FAILED_PRECONDITION);
    assert.equal(e2.details, 'in use by\nstack x');
  });

  it('a method the server does not have is UNIMPLEMENTED', async () => {
    const s = track(await serve({}));
    const c = track(connectControlH2(s.addr, { security: PLAINTEXT_FOR_TESTS }));
    assert.equal((await rejects(c.getVersion({}))).code, GRPC_STATUS.UNIMPLEMENTED);
  });

  it('ends a call at its deadline with DEADLINE_EXCEEDED', async () => {
    const s = track(
      await serve({
        GetVersion: () => {
          /* never answers */
        },
      }),
    );
    const c = track(connectControlH2(s.addr, { security: PLAINTEXT_FOR_TESTS, deadlineMs: 300 }));
    const t0 = Date.now();
    const e = await rejects(c.getVersion({}));
    assert.equal(e.code, GRPC_STATUS.DEADLINE_EXCEEDED);
    assert.ok(Date.now() - t0 < 5000);
  });

  it('a refused connection is UNAVAILABLE naming the cause, as grpc-js says it', async () => {
    const s = await serve({});
    const port = s.port;
    await s.stop();
    const c = track(connectControlH2(`127.0.0.1:${port}`, { security: PLAINTEXT_FOR_TESTS }));
    const e = await rejects(c.getVersion({}));
    assert.equal(e.code, GRPC_STATUS.UNAVAILABLE);
    assert.match(e.details, /^No connection established\. Last error: .*ECONNREFUSED/);
  });

  it('refuses an answer larger than its bound with RESOURCE_EXHAUSTED', async () => {
    const big = Array.from({ length: 200 }, (_, i) => ({ service: { id: `s${i}`, spec: { name: `service-${i}-${'x'.repeat(40)}` } } }));
    const s = track(await serve({ ListServices: (_call, cb) => cb(null, { services: big, nextPageToken: '' }) }));
    const c = track(connectControlH2(s.addr, { security: PLAINTEXT_FOR_TESTS, maxReceiveBytes: 4096 }));
    const e = await rejects(c.invoke('listServices', {}));
    assert.equal(e.code, GRPC_STATUS.RESOURCE_EXHAUSTED);
    // Within the bound the same answer is read.
    const c2 = track(connectControlH2(s.addr, { security: PLAINTEXT_FOR_TESTS }));
    assert.equal((await c2.invoke('listServices', {})).services.length, 200);
  });

  it('follows every page of a list call, as the grpc-js client does', async () => {
    const s = track(
      await serve({
        ListTasks: (call, cb) => {
          const token = (call.request as { pageToken?: string }).pageToken;
          cb(null, token === 'p2' ? { tasks: [{ id: 't2' }], nextPageToken: '' } : { tasks: [{ id: 't1' }], nextPageToken: 'p2' });
        },
      }),
    );
    const c = track(connectControlH2(s.addr, { security: PLAINTEXT_FOR_TESTS }));
    assert.deepEqual(
      (await c.listTasks({})).tasks.map((t) => t.id),
      ['t1', 't2'],
    );
  });

  it('opens a new session at the next call after the server went away', async () => {
    const answer: Impl = { GetVersion: (_call, cb) => cb(null, { version: '1.2.3' }) };
    const s = await serve(answer);
    const c = track(connectControlH2(s.addr, { security: PLAINTEXT_FOR_TESTS }));
    assert.equal((await c.getVersion({})).version, '1.2.3');
    await new Promise<void>((res) => s.server.tryShutdown(() => res()));
    s.server.forceShutdown();
    assert.equal((await rejects(c.getVersion({}))).code, GRPC_STATUS.UNAVAILABLE);
    const again = track(await serve(answer, undefined, s.port));
    assert.equal(again.port, s.port);
    assert.equal((await c.getVersion({})).version, '1.2.3');
  });

  it('a non-gRPC HTTP/2 answer maps its HTTP status (404 → UNIMPLEMENTED)', async () => {
    const h = http2.createServer((_req, res) => {
      res.statusCode = 404;
      res.end('no');
    });
    await new Promise<void>((res) => h.listen(0, '127.0.0.1', () => res()));
    const c = connectControlH2(`127.0.0.1:${(h.address() as AddressInfo).port}`, { security: PLAINTEXT_FOR_TESTS });
    try {
      const e = await rejects(c.getVersion({}));
      assert.equal(e.code, GRPC_STATUS.UNIMPLEMENTED);
      assert.match(e.details, /HTTP status code 404/);
    } finally {
      c.close();
      await new Promise<void>((res) => h.close(() => res()));
    }
  });

  it('after close() a call fails CANCELLED', async () => {
    const s = track(await serve({ GetVersion: (_call, cb) => cb(null, { version: 'v' }) }));
    const c = connectControlH2(s.addr, { security: PLAINTEXT_FOR_TESTS });
    assert.equal((await c.getVersion({})).version, 'v');
    c.close();
    assert.equal((await rejects(c.getVersion({}))).code, GRPC_STATUS.CANCELLED);
  });

  it('plaintext only on loopback, local only on a unix socket', async () => {
    const c = track(connectControlH2('10.0.0.1:7420', { security: PLAINTEXT_FOR_TESTS }));
    assert.match((await rejects(c.getVersion({}))).details, /plaintext is for test harnesses on loopback/);
    const l = track(connectControlH2('127.0.0.1:7420', { security: { mode: 'local' } }));
    assert.match((await rejects(l.getVersion({}))).details, /local credentials are for unix sockets/);
    assert.deepEqual(parseTarget('unix:///run/convoy.sock'), { path: '/run/convoy.sock' });
    assert.deepEqual(parseTarget('[::1]:7420'), { host: '::1', port: 7420 });
    assert.throws(() => parseTarget('host'), /not a manager address/);
  });

  describe('mutual TLS', () => {
    let ca: TestCa;
    let manager: TlsBundle;
    let admin: TlsBundle;
    before(async () => {
      ca = await createTestCa('h2-cluster');
      manager = await ca.bundle({ id: 'm1', role: 'manager', dns: [MANAGER_SERVER_NAME] });
      admin = await ca.bundle({ id: 'alice', role: 'admin' });
    });
    const tlsServer = (b: TlsBundle, impl: Impl, peers?: string[]) =>
      serve(
        {
          GetVersion: (call, cb) => {
            peers?.push(String(call.getAuthContext().sslPeerCertificate?.subject.CN));
            cb(null, { version: 'tls' });
          },
          ...impl,
        },
        grpc.ServerCredentials.createSsl(Buffer.from(b.ca), [{ cert_chain: Buffer.from(b.cert), private_key: Buffer.from(b.key) }], true),
      );

    it('presents its certificate and checks the manager against the cluster CA', async () => {
      const peers: string[] = [];
      const s = track(await tlsServer(manager, {}, peers));
      const c = track(connectControlH2(s.addr, { security: mtls(admin) }));
      assert.equal((await c.getVersion({})).version, 'tls');
      assert.deepEqual(peers, ['alice']);
    });

    it('refuses a server whose certificate names a worker, not a manager', async () => {
      const worker = await ca.bundle({ id: 'w1', role: 'worker', dns: [MANAGER_SERVER_NAME] });
      const s = track(await tlsServer(worker, {}));
      const c = track(connectControlH2(s.addr, { security: mtls(admin) }));
      const e = await rejects(c.getVersion({}));
      assert.equal(e.code, GRPC_STATUS.UNAVAILABLE);
      assert.match(e.details, /does not name a manager/);
    });

    it('refuses a manager certificate from another CA', async () => {
      const other = await (await createTestCa('h2-cluster')).bundle({ id: 'm9', role: 'manager', dns: [MANAGER_SERVER_NAME] });
      const s = track(await tlsServer({ ...other, ca: manager.ca }, {}));
      const c = track(connectControlH2(s.addr, { security: mtls(admin) }));
      const e = await rejects(c.getVersion({}));
      assert.equal(e.code, GRPC_STATUS.UNAVAILABLE);
      assert.match(e.details, /certificate/i);
    });

    it('is refused by the server with a client certificate from another CA', async () => {
      const stranger = await (await createTestCa('h2-cluster')).bundle({ id: 'eve', role: 'admin' });
      const s = track(await tlsServer(manager, {}));
      const c = track(connectControlH2(s.addr, { security: mtls({ ...stranger, ca: manager.ca }) }));
      const e = await rejects(c.getVersion({}));
      assert.equal(e.code, GRPC_STATUS.UNAVAILABLE, e.message);
      assert.match(e.details, /^No connection established/);
    });
  });
});
