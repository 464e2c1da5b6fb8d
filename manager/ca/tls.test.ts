// The manager's TLS plumbing on a loopback server with a throwaway CA:
// client certificates checked at the handshake, identities at every call
// (revoked, other cluster), and a certificate swapped in while it serves.
import { strict as assert } from 'node:assert';
import * as crypto from 'node:crypto';
import * as tls from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import { createTestCa, type TestCa } from '../../common/testing/test-ca';
import type { TlsBundle } from '../../common/identity';
import { connectControl, mtls, type ClientSecurity } from '../../proto/client';
import { grpcPackages, type ControlHandlers } from '../../proto/mod';
import { identityGate, mtlsContext, refusal, SwappableServerCredentials } from './tls';

describe('manager TLS: handshake, identity gate, certificate swap', function () {
  this.timeout(20_000);
  let ca: TestCa;
  let server: grpc.Server;
  let creds: SwappableServerCredentials;
  let addr = '';
  const revoked = new Set<string>();
  const seen: string[] = [];

  const serverBundle = () => ca.bundle({ id: 'm1', role: 'manager', dns: ['convoy-manager'], ips: ['127.0.0.1'] });
  before(async () => {
    ca = await createTestCa('c1');
    creds = new SwappableServerCredentials(mtlsContext(await serverBundle()), true, [identityGate({ cluster: () => 'c1', isRevoked: (w) => revoked.has(w.id) })]);
    server = new grpc.Server();
    const handlers = { GetClusterInfo: (_call: unknown, cb: grpc.sendUnaryData<unknown>) => (seen.push('GetClusterInfo'), cb(null, {})) } as unknown as ControlHandlers;
    server.addService(grpcPackages().control.convoy.Control.service, handlers);
    const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', creds, (e, p) => (e ? reject(e) : resolve(p))));
    addr = `127.0.0.1:${port}`;
  });
  after(() => server.forceShutdown());

  const call = async (security: ClientSecurity) => {
    const c = connectControl(addr, { security, deadlineMs: 3000 });
    try {
      await c.getClusterInfo({});
      return { code: grpc.status.OK, details: '' };
    } catch (e) {
      return { code: (e as grpc.ServiceError).code, details: (e as grpc.ServiceError).details };
    } finally {
      c.close();
    }
  };

  it('admits a valid certificate; refuses none and another CA’s at the handshake, before any handler', async () => {
    assert.equal((await call(mtls(await ca.bundle({ id: 'alice', role: 'admin' })))).code, grpc.status.OK);
    seen.length = 0;
    assert.equal((await call({ mode: 'join', ca: ca.caPem })).code, grpc.status.UNAVAILABLE);
    const other = await (await createTestCa('c1')).bundle({ id: 'alice', role: 'admin' });
    assert.equal((await call({ mode: 'mtls', ca: ca.caPem, cert: other.cert, key: other.key })).code, grpc.status.UNAVAILABLE);
    assert.equal((await call(mtls(await ca.bundle({ id: 'old', role: 'admin', notAfter: new Date(Date.now() - 1000) })))).code, grpc.status.UNAVAILABLE);
    assert.deepEqual(seen, [], 'no handler ran');
  });

  it('refuses a revoked identity and another cluster’s at every call with UNAUTHENTICATED', async () => {
    revoked.add('mallory');
    seen.length = 0;
    const r = await call(mtls(await ca.bundle({ id: 'mallory', role: 'worker' })));
    assert.deepEqual(r, { code: grpc.status.UNAUTHENTICATED, details: 'certificate of worker mallory revoked' });
    const foreign = await call(mtls(await ca.bundle({ id: 'bob', role: 'admin', cluster: 'c2' })));
    assert.equal(foreign.code, grpc.status.UNAUTHENTICATED);
    assert.match(foreign.details, /another cluster/);
    assert.deepEqual(seen, []);
    assert.match(refusal(undefined, { cluster: () => 'c1', isRevoked: () => false }) ?? '', /no Convoy identity/);
    assert.match(refusal({ id: 'x', role: 'admin', cluster: 'c1', notAfter: 1 }, { cluster: () => 'c1', isRevoked: () => false }) ?? '', /expired/);
  });

  it('a client refuses a server whose certificate does not name a manager', async () => {
    const worker: TlsBundle = await ca.bundle({ id: 'w1', role: 'worker', dns: ['convoy-manager'], ips: ['127.0.0.1'] });
    creds.swap(mtlsContext(worker));
    try {
      assert.equal((await call(mtls(await ca.bundle({ id: 'alice', role: 'admin' })))).code, grpc.status.UNAVAILABLE);
    } finally {
      creds.swap(mtlsContext(await serverBundle()));
    }
  });

  it('serves a swapped certificate to new connections without a restart', async () => {
    const next = await serverBundle();
    creds.swap(mtlsContext(next));
    const got = await new Promise<string>((resolve, reject) => {
      const s = tls.connect({ host: '127.0.0.1', port: Number(addr.split(':')[1]), servername: 'convoy-manager', ca: ca.caPem, ALPNProtocols: ['h2'] }, () => {
        resolve(s.getPeerX509Certificate()?.serialNumber ?? '');
        s.destroy();
      });
      s.on('error', reject);
    });
    assert.equal(got, new crypto.X509Certificate(next.cert).serialNumber);
    assert.equal((await call(mtls(await ca.bundle({ id: 'alice', role: 'admin' })))).code, grpc.status.OK);
  });
});
