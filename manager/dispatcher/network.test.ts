// The NetworkState fan-out (./network.ts): built once per change, sent only
// when its content changed, each version once per stream, encoded once for
// all streams; and the same over the real dispatcher's Network streams.
import { strict as assert } from 'node:assert';
import type * as grpc from '@grpc/grpc-js';
import { dispatcherClient, PLAINTEXT_FOR_TESTS } from '../../proto/client';
import { grpcPackages, type DispatcherClient, type NetworkState, type Task } from '../../proto/mod';
import { contractTask } from '../../proto/testing/dispatcher-contract';
import { eventually } from '../../common/eventually';
import { service } from '../orchestrator/testing/fixtures';
import { dispatcherService } from './dispatcher';
import { NetworkPublisher, sharedEncoding } from './network';
import { HARNESS_TOKEN, startDispatcherHarness, type DispatcherHarness } from './testing/harness';

/** A state whose content is `services` service names (nothing else varies). */
const stateOf = (names: string[], version: number): NetworkState =>
  ({ version, services: names.map((n) => ({ serviceId: n, serviceName: n })), nodes: [], networks: [], clusterCidr: '', vipCidr: '', bindAllow: [] }) as unknown as NetworkState;

class Sink {
  got: NetworkState[] = [];
  write(st: NetworkState): void {
    this.got.push(st);
  }
}

describe('NetworkPublisher', () => {
  let names: string[];
  let p: NetworkPublisher<Sink>;
  const serialize = grpcPackages().dispatcher.convoy.Dispatcher.service.Network.responseSerialize as (st: NetworkState) => Buffer;
  beforeEach(() => {
    names = ['a'];
    p = new NetworkPublisher<Sink>((v) => stateOf(names, v), serialize);
  });

  it('sends a new stream the current state at once, built once for all streams', () => {
    const s1 = new Sink();
    const s2 = new Sink();
    p.add(s1);
    p.add(s2);
    assert.equal(p.builds, 1, 'the second stream is sent the state built for the first');
    assert.equal(s1.got.length, 1);
    assert.equal(s1.got[0], s2.got[0], 'the same object (encoded once for both)');
    assert.equal(s1.got[0].version, 1);
    assert.deepEqual(s1.got[0].services.map((s) => s.serviceName), ['a']);
  });

  it('after a change that leaves the content as it was, sends nothing and keeps the version', () => {
    const s = new Sink();
    p.add(s);
    p.changed();
    p.flush();
    assert.equal(p.builds, 2, 'built again after the change');
    assert.equal(s.got.length, 1, 'nothing sent: same content');
    // A flush with no change in between does not even build.
    p.flush();
    assert.equal(p.builds, 2);
    // A stream opened now gets the same version the others have.
    const late = new Sink();
    p.add(late);
    assert.equal(late.got[0].version, 1);
    assert.equal(p.builds, 2);
  });

  it('after a change of content, every stream gets the new version exactly once', () => {
    const s1 = new Sink();
    const s2 = new Sink();
    p.add(s1);
    p.add(s2);
    names = ['a', 'b'];
    p.changed();
    p.flush();
    p.flush();
    for (const s of [s1, s2]) assert.deepEqual(s.got.map((st) => st.version), [1, 2]);
    assert.deepEqual(s1.got[1].services.map((s) => s.serviceName), ['a', 'b']);
    // A stream added while a change is pending is sent the new state; the flush that follows does not send it again.
    names = ['c'];
    p.changed();
    const s3 = new Sink();
    p.add(s3);
    p.flush();
    assert.deepEqual(s3.got.map((st) => st.version), [3]);
    assert.deepEqual(s1.got.map((st) => st.version), [1, 2, 3]);
  });

  it('a removed stream is sent nothing more', () => {
    const s = new Sink();
    p.add(s);
    assert.ok(p.delete(s));
    names = ['z'];
    p.changed();
    p.flush();
    assert.equal(s.got.length, 1);
    assert.equal(p.size, 0);
  });
});

describe('sharedEncoding', () => {
  it('encodes an object once however often it is written, and each object as itself', () => {
    const raw = grpcPackages().dispatcher.convoy.Dispatcher.service.Network.responseSerialize as (st: NetworkState) => Buffer;
    let calls = 0;
    const enc = sharedEncoding((st: NetworkState) => (calls++, raw(st)));
    const a = stateOf(['a'], 1);
    const b = stateOf(['b'], 2);
    const first = enc(a);
    assert.equal(enc(a), first);
    assert.equal(calls, 1);
    assert.deepEqual(enc(b), raw(b));
    assert.equal(calls, 2);
    assert.deepEqual(first, raw(a), 'the bytes proto gives');
  });

  it("is the served Network method's serializer; the other methods are proto's", () => {
    const proto = grpcPackages().dispatcher.convoy.Dispatcher.service;
    const served = dispatcherService();
    const st = stateOf(['x'], 7);
    assert.equal(served.Network.responseSerialize(st), served.Network.responseSerialize(st));
    assert.deepEqual(served.Network.responseSerialize(st), proto.Network.responseSerialize(st));
    assert.equal(served.Assignments.responseSerialize, proto.Assignments.responseSerialize);
    assert.deepEqual(Object.keys(served).sort(), Object.keys(proto).sort());
  });
});

describe('dispatcher Network streams (MemoryStore)', function () {
  this.timeout(20_000);
  let h: DispatcherHarness;
  let client: DispatcherClient;
  const open: { cancel(): void }[] = [];
  beforeEach(async () => {
    h = await startDispatcherHarness({ heartbeatMs: 1000 });
    client = dispatcherClient(h.addr, { security: PLAINTEXT_FOR_TESTS });
  });
  afterEach(async () => {
    for (const c of open.splice(0)) c.cancel();
    client?.close();
    await h?.stop();
  });

  const session = (hostname: string) =>
    new Promise<string>((resolve, reject) => {
      const call = client.Session({ joinToken: HARNESS_TOKEN, nodeId: '', addr: '10.0.0.1', description: { hostname, platform: null, resources: null, engineLabels: {} }, labels: {} });
      open.push(call);
      call.on('data', (m: { sessionId: string }) => m.sessionId && resolve(m.sessionId));
      call.on('error', reject);
    });
  const network = (sessionId: string): NetworkState[] => {
    const got: NetworkState[] = [];
    const call: grpc.ClientReadableStream<NetworkState> = client.Network({ sessionId });
    open.push(call);
    call.on('data', (st: NetworkState) => got.push(st));
    call.on('error', () => undefined);
    return got;
  };
  const attached = (id: string, addr: string): Task => ({
    ...contractTask(id, 'node-x', 'RUNNING'),
    networks: [{ networkId: 'net-default', networkName: 'default', addresses: [`${addr}/24`], vni: 0 }],
  });
  const endpoints = (st: NetworkState) => st.services.find((s) => s.serviceId === 'svc-1')?.tasks.map((t) => t.addresses[0]).sort() ?? [];

  it('every stream gets one message per change of what it is programmed from, none for changes that alter nothing', async () => {
    await h.store.put('services', { ...service('svc-1'), meta: null }, true);
    const sessions = await Promise.all(['n1', 'n2', 'n3'].map((n) => session(n)));
    await eventually(() => h.cache.alive.size === 3 && h.cache.nodes.size === 3, 'the three nodes registered and alive');
    const streams = sessions.map((id) => network(id));
    await eventually(() => streams.every((s) => s.length >= 1), 'each stream has its first state');

    // A task on a network: an endpoint every node must learn.
    await h.put(attached('t-1', '10.200.1.2'));
    await eventually(() => streams.every((s) => endpoints(s.at(-1)!).length === 1), 'each stream has the new endpoint');
    // A task on no network, then a status report on it: the cache changes, the state does not.
    await h.put(contractTask('t-2', 'node-x', 'ASSIGNED'));
    await h.put(contractTask('t-2', 'node-x', 'RUNNING'));
    // Once the dispatcher has looked at the state again after them (the flush is debounced):
    const built = h.dispatcher.networkBuilds();
    await eventually(() => h.dispatcher.networkBuilds() > built, 'the state built again after those changes');
    // Then a second endpoint: the next message each stream gets is the one with it.
    await h.put(attached('t-3', '10.200.1.3'));
    await eventually(() => streams.every((s) => endpoints(s.at(-1)!).length === 2), 'each stream has both endpoints');
    const last = streams[0].at(-1)!.version;
    for (const s of streams) {
      const versions = s.map((st) => st.version);
      assert.ok(versions.every((v, i) => i === 0 || v > versions[i - 1]), `versions only grow, none sent twice: ${versions}`);
      assert.equal(versions.at(-1), last, 'every stream is at the same version');
      const one = s.findIndex((st) => endpoints(st).length === 1);
      assert.deepEqual(
        s.slice(one).map((st) => endpoints(st).length),
        [1, 2],
        'after the first endpoint, the next message is the second: none for the changes that altered nothing',
      );
      assert.deepEqual(endpoints(s.at(-1)!), ['10.200.1.2', '10.200.1.3']);
    }
  });
});
