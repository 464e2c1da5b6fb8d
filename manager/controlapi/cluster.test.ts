// The join tokens live in the data dir of the manager that made them: a
// manager without them asks its peers (through proto/client.ts, marking the
// call as forwarded so that a peer without them does not ask further).
import { strict as assert } from 'node:assert';
import * as grpc from '@grpc/grpc-js';
import { eventually } from '../../common/eventually';
import { connectControl, PLAINTEXT_FOR_TESTS, type ControlConnection } from '../../proto/client';
import { startControlHarness, type ControlHarness } from './testing/harness';

async function refused(p: Promise<unknown>, code: grpc.status, re: RegExp): Promise<void> {
  const e = await p.then(
    () => assert.fail('expected a refusal'),
    (err: grpc.ServiceError) => err,
  );
  assert.equal(e.code, code, `${grpc.status[e.code]} instead of ${grpc.status[code]}: ${e.details}`);
  assert.match(e.details, re);
}

describe('Control API: join tokens held by another manager', function () {
  this.timeout(20_000);
  let a: ControlHarness | undefined;
  let b: ControlHarness | undefined;
  const clients: ControlConnection[] = [];
  const connect = (addr: string, o: Partial<Parameters<typeof connectControl>[1]> = {}) => {
    const c = connectControl(addr, { security: PLAINTEXT_FOR_TESTS, ...o });
    clients.push(c);
    return c;
  };

  beforeEach(async () => {
    a = await startControlHarness({ managerId: 'm1' });
    b = await startControlHarness({ store: a.store, managerId: 'm2' });
  });
  afterEach(async () => {
    for (const c of clients.splice(0)) c.close();
    await b?.stop();
    await a?.stop();
  });

  it('a manager without the tokens gets them from a peer that holds them', async () => {
    const [m1, m2] = [connect(a!.addr), connect(b!.addr)];
    await refused(m2.getJoinTokens({}), grpc.status.FAILED_PRECONDITION, /no reachable manager holds the join tokens/);
    const made = await m1.rotateJoinToken({ worker: false, manager: false });
    const registered = await a!.store.registerManager('m1', a!.addr);
    try {
      await eventually(() => b!.cache.managers.has('m1'), "m2's cache sees m1");
      const got = await m2.getJoinTokens({});
      assert.deepEqual({ worker: got.worker, manager: got.manager }, { worker: made.worker, manager: made.manager });
    } finally {
      await registered.close();
    }
  });

  it('a forwarded ask is answered from the own tokens only, never forwarded again', async () => {
    const registered = await a!.store.registerManager('m1', a!.addr);
    try {
      await connect(a!.addr).rotateJoinToken({ worker: false, manager: false });
      await eventually(() => b!.cache.managers.has('m1'), "m2's cache sees m1");
      const forwarded = connect(b!.addr, { metadata: { 'convoy-forwarded': '1' } });
      await refused(forwarded.getJoinTokens({}), grpc.status.NOT_FOUND, /no join tokens here/);
    } finally {
      await registered.close();
    }
  });
});
