// A manager asking a peer on a user's behalf (GetJoinTokens from the manager
// that holds them) carries that user's identity in convoy-forwarded-for, so
// the peer authorizes the user and not the forwarding manager; a user who
// may not make the call is refused before anything is forwarded.
import { strict as assert } from 'node:assert';
import * as crypto from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { eventually } from '../../common/eventually';
import { createTestCa } from '../../common/testing/test-ca';
import { grpcPackages, type ControlClient } from '../../proto/mod';
import { FORWARDED_FOR } from './authorize';
import { startSecureControl, type SecureControl } from './testing/secure-control';

describe('forwarding a call for its user', function () {
  this.timeout(20_000);
  let h: SecureControl | undefined;
  let peer: grpc.Server | undefined;

  after(async () => {
    peer?.forceShutdown();
    await h?.stop();
  });

  it('sends the caller as convoy-forwarded-for to the peer, and forwards nothing for a refused caller', async () => {
    const ca = await createTestCa('c1');
    h = await startSecureControl({ server: await ca.bundle({ id: 'm1', role: 'manager', ips: ['127.0.0.1'], dns: ['localhost'] }) });
    // The peer holding the tokens (it records what each ask carried).
    const asked: string[][] = [];
    peer = new grpc.Server();
    peer.addService(grpcPackages().control.convoy.Control.service, {
      GetJoinTokens: (call: grpc.ServerUnaryCall<unknown, unknown>, cb: grpc.sendUnaryData<unknown>) => {
        asked.push(call.metadata.get(FORWARDED_FOR).map(String));
        cb(null, { worker: 'SWMTKN-1-w', manager: 'SWMTKN-1-m' });
      },
    } as grpc.UntypedServiceImplementation);
    const port = await new Promise<number>((resolve, reject) => peer!.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
    const reg = await h.store.registerManager('m9', `127.0.0.1:${port}`);
    try {
      await eventually(() => h!.cache.managers.has('m9'), 'the peer registered');
      const alice = await ca.bundle({ id: 'alice', role: 'admin' });
      const olga = await ca.bundle({ id: 'olga', role: 'operator' });
      const ask = (c: ControlClient) => new Promise<{ worker: string }>((resolve, reject) => c.GetJoinTokens({}, (e, r) => (e ? reject(e) : resolve(r as { worker: string }))));

      await assert.rejects(ask(h.client(olga)), (e: grpc.ServiceError) => e.code === grpc.status.PERMISSION_DENIED);
      assert.deepEqual(asked, [], 'nothing forwarded for a caller who may not ask');

      const got = await ask(h.client(alice));
      assert.equal(got.worker, 'SWMTKN-1-w');
      assert.equal(asked.length, 1);
      assert.deepEqual(JSON.parse(asked[0][0]), { id: 'alice', role: 'admin', cluster: 'c1', serial: new crypto.X509Certificate(alice.cert).serialNumber.toUpperCase() });
      const rec = h.audit.filter((r) => r.action === 'GetJoinTokens').pop();
      assert.equal(rec?.who.id, 'alice');
      assert.deepEqual(rec?.result, { ok: true });
    } finally {
      await reg.close();
    }
  });
});
