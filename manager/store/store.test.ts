// The Store contract on the in-memory store, with a fake clock for leases.
import { strict as assert } from 'node:assert';
import { StoreUnavailableError } from './errors';
import { MemoryStore } from './memory-store';
import { storeContract, task } from './testing/contract';
import { taskSpecWithDefaults } from '../../proto/mod';
import { decodeObject, encodeObject, encodeSpecOnce, internedSpecCount, key } from './store';

storeContract('MemoryStore', async () => {
  let now = 1_000_000;
  const store = new MemoryStore({ now: () => now });
  return {
    store,
    async lapse(_leaseId, ttlS) {
      now += ttlS * 1000 + 1;
      store.expireLeases();
    },
    close: () => store.close(),
  };
});

describe('MemoryStore', () => {
  it('lapses a lease only after its TTL from the last keepalive', async () => {
    let now = 0;
    const s = new MemoryStore({ now: () => now });
    const l = await s.grantLease(3);
    await l.put('alive', 'n1', 'x');
    now = 2_500;
    await l.keepAlive();
    now = 5_000; // 2.5 s after the keepalive: still alive
    assert.ok(s.leaseAlive(l.id));
    now = 5_501;
    assert.ok(!s.leaseAlive(l.id));
    assert.deepEqual([...(await s.aliveNodeIds())], []);
  });

  it('the unavailable switch fails every call with StoreUnavailableError', async () => {
    const s = new MemoryStore();
    s.unavailable = true;
    await assert.rejects(s.put('tasks', task('t'), true), StoreUnavailableError);
    await assert.rejects(s.batch([]), StoreUnavailableError);
  });
});

describe('encodeObject with a spec shared by many objects (encodeSpecOnce)', () => {
  const task = (id: string, spec: object) => ({ id, meta: { version: 3, createdAt: 100, updatedAt: 100 }, serviceId: 's1', slot: 1, spec, status: { state: 'PENDING' } });

  it('writes the same object as the plain encoding, the spec encoded once', () => {
    const spec = { container: { image: 'busybox', command: ['httpd', '-f'], env: ['A="quoted"\n'] }, networks: ['default'], ports: [] };
    const plain = JSON.parse(encodeObject(task('t1', { ...spec }), 500));
    encodeSpecOnce(spec);
    const a = encodeObject(task('t1', spec), 500);
    assert.deepEqual(JSON.parse(a), plain);
    assert.equal(JSON.parse(a).meta.updatedAt, 500);
    // Each object keeps its own fields around the shared spec.
    const b = JSON.parse(encodeObject(task('t2', spec), 600));
    assert.equal(b.id, 't2');
    assert.deepEqual(b.spec, spec);
    // Encoded once: what it was when shared (the contract is that nobody changes it after).
    spec.networks.push('other');
    assert.deepEqual(JSON.parse(encodeObject(task('t4', spec))).spec.networks, ['default']);
  });

  it('encodes a spec that was not shared as it is now', () => {
    const spec = { container: { image: 'a' } };
    const t = task('t3', spec);
    spec.container.image = 'b';
    assert.equal(JSON.parse(encodeObject(t)).spec.container.image, 'b');
  });
});

describe('decodeObject of stored tasks: one frozen spec object per distinct spec', () => {
  const kv = (id: string, value: string, modRevision = 7) => ({ key: key('tasks', id), value, modRevision });
  const spec = () => ({ container: { image: 'busybox', command: ['httpd', '-f', '-p', '80'], env: ['A="a,\\"spec\\":{"'] }, networks: ['default'], ports: [] });
  const task = (id: string, s: object, extra: object = {}) => ({
    id,
    meta: { version: 3, createdAt: 100, updatedAt: 100 },
    serviceId: 's1',
    slot: 1,
    spec: s,
    status: { state: 'RUNNING', message: 'started ,"spec":{ here' },
    ...extra,
  });

  it('decodes what encodeObject wrote to the same task, the spec shared between tasks and frozen', () => {
    const a = decodeObject<ReturnType<typeof task>>(kv('a', encodeObject(task('a', spec()), 500)));
    const b = decodeObject<ReturnType<typeof task>>(kv('b', encodeObject(task('b', spec()), 600), 9));
    assert.deepEqual(a, { ...task('a', spec()), meta: { version: 7, createdAt: 100, updatedAt: 500 } });
    assert.equal(b.id, 'b');
    assert.equal(b.meta.version, 9);
    assert.equal(b.status.message, 'started ,"spec":{ here');
    assert.equal(a.spec, b.spec, 'one object for the two tasks');
    assert.ok(Object.isFrozen(a.spec) && Object.isFrozen((a.spec as ReturnType<typeof spec>).container.command));
    assert.throws(() => (a.spec as ReturnType<typeof spec>).networks.push('x'), TypeError);
    // A status write of a decoded task writes the same spec back, and a changed spec is a new object.
    const again = decodeObject<ReturnType<typeof task>>(kv('a', encodeObject({ ...a, status: { state: 'FAILED', message: '' } } as typeof a, 700)));
    assert.equal(again.spec, a.spec);
    assert.equal(again.status.state, 'FAILED');
    const other = decodeObject<ReturnType<typeof task>>(kv('c', encodeObject(task('c', { ...spec(), networks: ['n2'] }))));
    assert.notEqual(other.spec, a.spec);
    assert.deepEqual((other.spec as ReturnType<typeof spec>).networks, ['n2']);
  });

  it('parses whole, and does not intern, what is not of that shape', () => {
    const before = internedSpecCount();
    // The spec before other keys (an older writer), a nested "spec" key first, no spec, a non-object spec.
    const older = JSON.stringify({ id: 'o', meta: { version: 1 }, spec: { x: 1 }, slot: 2 });
    const nested = JSON.stringify({ id: 'n', networks: [{ a: 1, spec: { y: 1 } }], spec: { z: 2 } });
    const none = JSON.stringify({ id: 'x', slot: 1 });
    const nullSpec = JSON.stringify({ id: 'y', slot: 1, spec: null });
    assert.deepEqual(decodeObject(kv('o', older)), { id: 'o', meta: { createdAt: 0, updatedAt: 0, version: 7 }, spec: { x: 1 }, slot: 2 });
    const n = decodeObject(kv('n', nested)) as unknown as { spec: object; networks: unknown };
    assert.deepEqual(n.spec, { z: 2 });
    assert.deepEqual(n.networks, [{ a: 1, spec: { y: 1 } }]);
    assert.ok(!Object.isFrozen(n.spec));
    assert.deepEqual(decodeObject(kv('x', none)), { id: 'x', slot: 1, meta: { createdAt: 0, updatedAt: 0, version: 7 } });
    assert.equal((decodeObject(kv('y', nullSpec)) as unknown as { spec: null }).spec, null);
    assert.equal(internedSpecCount(), before);
    // Not JSON stays an error.
    assert.throws(() => decodeObject(kv('bad', '{"id":"b","spec":{"a":1}')), SyntaxError);
    assert.throws(() => decodeObject(kv('bad', '{"id":"b","spec":{"a":1}]')), SyntaxError);
  });

  it('leaves the specs of other kinds as parsed (services are edited in place by none, but owned by each reader)', () => {
    const svc = { id: 's', meta: { version: 1, createdAt: 1, updatedAt: 1 }, spec: { name: 'web', replicas: 2 } };
    const d = decodeObject<typeof svc>({ key: key('services', 's'), value: encodeObject(svc, 1), modRevision: 2 });
    assert.deepEqual(d.spec, svc.spec);
    assert.ok(!Object.isFrozen(d.spec));
  });
});

describe('stored tasks: a spec without its default-valued fields', () => {
  const kv = (id: string, value: string, modRevision = 7) => ({ key: key('tasks', id), value, modRevision });
  // A spec as the Control API hands it on: every field of the message present, most of them defaults.
  const full = () =>
    taskSpecWithDefaults({
      container: { image: 'busybox', command: ['httpd', '-f'], env: ['A='], mounts: [{ type: 'TMPFS', target: '/tmp', readOnly: false }], labels: { tier: 'web' } },
      restart: { condition: 'RESTART_ON_FAILURE', delayMs: 5000 },
      networks: ['default'],
    });
  const task = (id: string, spec: object) => ({ id, meta: { version: 3, createdAt: 100, updatedAt: 100 }, serviceId: 's1', slot: 1, spec, status: { state: 'RUNNING', message: '' } });

  it('writes the spec without its defaults and reads back the same spec, all fields there', () => {
    const spec = full();
    const whole = encodeObject(task('a', spec), 500);
    const sparse = encodeObject(task('a', spec), 500, 'tasks');
    assert.ok(!sparse.includes('"spec":') && sparse.includes('"sparseSpec":'), sparse);
    assert.ok(!sparse.includes('"args":[]') && !sparse.includes('"hostname":""') && !sparse.includes('"privileged":false'), sparse);
    assert.ok(sparse.length < whole.length * 0.75, `${sparse.length} bytes vs ${whole.length} whole`);
    const d = decodeObject<ReturnType<typeof task>>(kv('a', sparse));
    assert.deepEqual(d.spec, spec);
    assert.deepEqual(d, { ...task('a', spec), meta: { version: 7, createdAt: 100, updatedAt: 500 } });
    // A list's elements keep their own non-defaults; a map keeps its entries.
    const c = (d.spec as ReturnType<typeof full>).container!;
    assert.equal(c.mounts[0].target, '/tmp');
    assert.equal(c.mounts[0].readOnly, false);
    assert.deepEqual(c.labels, { tier: 'web' });
    // Shared and frozen as a whole spec is; a status write of it writes the same bytes.
    const b = decodeObject<ReturnType<typeof task>>(kv('b', encodeObject(task('b', full()), 600, 'tasks')));
    assert.equal(b.spec, d.spec);
    assert.ok(Object.isFrozen(d.spec));
    assert.equal(encodeObject({ ...d, meta: { version: 3, createdAt: 100, updatedAt: 100 } }, 500, 'tasks'), sparse);
  });

  it('stores whole a spec that would not come back the same, and a spec of another kind', () => {
    // A map entry whose value is a default, and a field that is not TaskSpec's: leaving defaults out would lose them.
    const mapped = { ...full(), container: { ...full().container!, labels: { empty: '' } } };
    const extra = { ...full(), notInTaskSpec: 1 };
    for (const [name, spec] of [['a default map value', mapped], ['a foreign field', extra]] as const) {
      const v = encodeObject(task('m', spec), 500, 'tasks');
      assert.ok(v.includes('"spec":') && !v.includes('"sparseSpec"'), name);
      assert.deepEqual(decodeObject<ReturnType<typeof task>>(kv('m', v)).spec, spec, name);
    }
    const svc = { id: 's', meta: null, spec: full() };
    assert.ok(!encodeObject(svc, 1, 'services').includes('sparseSpec'));
  });

  it('puts the defaults back when the task is parsed whole (the sparse spec not last)', () => {
    const spec = full();
    const sparseJson = encodeObject(task('x', spec), 500, 'tasks').match(/"sparseSpec":(\{.*\})\}$/)![1];
    const value = `{"id":"x","sparseSpec":${sparseJson},"slot":4}`;
    const d = decodeObject<{ id: string; spec: unknown; slot: number; meta: null }>(kv('x', value));
    assert.deepEqual(d.spec, spec);
    assert.equal(d.slot, 4);
    assert.ok(!('sparseSpec' in d));
  });
});
