// Network specs, node specs and descriptions are refused out of bounds; task
// statuses from agents are cut, never lost.
import { strict as assert } from 'node:assert';
import * as L from './limits';
import { boundTaskStatus, cutText, validateNetworkSpec, validateNodeDescription, validateNodeSpec } from './objects';
import { jsonSizeAtMost } from './shape';

const fields = (r: { ok: boolean; errors?: { field: string }[] }) => (r.ok ? [] : (r.errors ?? []).map((e) => e.field));
const manyLabels = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`, 'v']));

describe('validateNetworkSpec', () => {
  it('takes a DNS-label name and bounded labels', () => {
    const r = validateNetworkSpec({ name: 'front', labels: { team: 'a' }, internal: true });
    assert.ok(r.ok);
    assert.deepEqual(r.spec, { name: 'front', subnet: '', labels: { team: 'a' }, internal: true });
  });

  it('refuses bad names, too many or too big labels, wrong types', () => {
    assert.deepEqual(fields(validateNetworkSpec({ name: '' })), ['spec.name']);
    assert.deepEqual(fields(validateNetworkSpec({ name: 'Front_1' })), ['spec.name']);
    assert.deepEqual(fields(validateNetworkSpec({ name: 'n'.repeat(L.NETWORK_NAME_MAX_CHARS + 1) })), ['spec.name']);
    assert.deepEqual(fields(validateNetworkSpec({ name: 'n', labels: manyLabels(L.LABELS_MAX + 1) })), ['spec.labels']);
    assert.deepEqual(fields(validateNetworkSpec({ name: 'n', labels: { k: 'v'.repeat(L.LABEL_VALUE_MAX_BYTES + 1) } })), ['spec.labels["k"]']);
    assert.deepEqual(fields(validateNetworkSpec({ name: 'n', subnet: '1'.repeat(L.SUBNET_MAX_BYTES + 1) })), ['spec.subnet']);
    assert.deepEqual(fields(validateNetworkSpec({ name: 'n', internal: 'yes' })), ['spec.internal']);
    assert.deepEqual(fields(validateNetworkSpec(null)), ['spec']);
    assert.deepEqual(fields(validateNetworkSpec({ name: 'n', labels: { k: 'v'.repeat(200_000) } })), ['spec'], 'the whole spec is bounded first');
  });
});

describe('validateNodeSpec', () => {
  it('takes a role, an availability and labels; refuses what is out of bounds', () => {
    const r = validateNodeSpec({ role: 'MANAGER', availability: 'DRAIN', labels: { zone: 'east' } });
    assert.ok(r.ok);
    assert.deepEqual(r.spec, { role: 'MANAGER', availability: 'DRAIN', labels: { zone: 'east' } });
    assert.ok(validateNodeSpec({ labels: { zone: 'east' } }).ok, 'the labels a joining agent proposes');
    assert.deepEqual(fields(validateNodeSpec({ availability: 'ASLEEP' })), ['spec.availability']);
    assert.deepEqual(fields(validateNodeSpec({ labels: manyLabels(L.LABELS_MAX + 1) })), ['spec.labels']);
    assert.deepEqual(fields(validateNodeSpec({ labels: { ['k'.repeat(L.LABEL_KEY_MAX_BYTES + 1)]: 'v' } })), [`spec.labels["${'k'.repeat(32)}"]`]);
    assert.deepEqual(fields(validateNodeSpec({ labels: JSON.parse('{"__proto__":"x"}') as object })), ['spec.labels["__proto__"]']);
  });
});

describe('validateNodeDescription', () => {
  const desc = { hostname: 'host-a.example.org', platform: { os: 'linux', arch: 'amd64' }, resources: { nanoCpus: 4e9, memoryBytes: 8 * 1024 ** 3, pids: 0 }, engineLabels: { disk: 'ssd' }, listeningTcp: [22], listeningUdp: [], addresses: ['192.168.7.2'] };

  it('takes what an agent reports and refuses what is out of bounds', () => {
    const r = validateNodeDescription(desc);
    assert.ok(r.ok);
    assert.deepEqual(r.spec, desc);
    assert.deepEqual(fields(validateNodeDescription({ ...desc, hostname: 'h'.repeat(L.HOSTNAME_MAX_BYTES + 1) })), ['description.hostname']);
    assert.deepEqual(fields(validateNodeDescription({ ...desc, hostname: 'evil\u001b[2Jhost' })), ['description.hostname']);
    assert.deepEqual(fields(validateNodeDescription({ ...desc, platform: { os: 'l'.repeat(65), arch: 'amd64' } })), ['description.platform.os']);
    assert.deepEqual(fields(validateNodeDescription({ ...desc, resources: { nanoCpus: -1, memoryBytes: NaN, pids: 0 } })), ['description.resources.nanoCpus', 'description.resources.memoryBytes']);
    assert.deepEqual(fields(validateNodeDescription({ ...desc, engineLabels: manyLabels(L.LABELS_MAX + 1) })), ['description.engineLabels']);
    assert.deepEqual(fields(validateNodeDescription({ ...desc, engineLabels: [] })), ['description.engineLabels']);
    assert.deepEqual(fields(validateNodeDescription({ ...desc, listeningTcp: [22, 70000] })), ['description.listeningTcp[1]']);
    assert.deepEqual(fields(validateNodeDescription({ ...desc, addresses: ['10.0.0.1', '10.0.0.1; rm -rf /'] })), ['description.addresses[1]']);
    assert.deepEqual(fields(validateNodeDescription({ ...desc, listeningUdp: Array.from({ length: L.LISTENING_PORTS_MAX + 1 }, (_, i) => i + 1) })), ['description.listeningUdp']);
  });
});

describe('boundTaskStatus', () => {
  const st = { state: 'FAILED', timestamp: 1700000000000, message: 'started', err: '', exitCode: 1, pid: 42, health: 'unhealthy' };

  it('passes a normal status through unchanged', () => {
    const r = boundTaskStatus(st);
    assert.ok(r.ok);
    assert.deepEqual(r.status, st);
    assert.deepEqual(r.cut, []);
  });

  it('cuts long messages on a character boundary, saying how long they were, and keeps the state', () => {
    const r = boundTaskStatus({ ...st, message: '🚀'.repeat(10_000), err: `boom\u001b[31m${'e'.repeat(100_000)}` });
    assert.ok(r.ok);
    assert.equal(r.status.state, 'FAILED');
    assert.ok(Buffer.byteLength(r.status.message) <= L.STATUS_MESSAGE_MAX_BYTES);
    assert.ok(Buffer.byteLength(r.status.err) <= L.STATUS_MESSAGE_MAX_BYTES);
    assert.match(r.status.message, /^(🚀)+… \[cut: 40000 bytes\]$/u);
    assert.ok(!r.status.err.includes('\u001b') && r.status.err.startsWith('boom\ufffd[31m'));
    assert.deepEqual(r.cut, ['status.message', 'status.err']);
  });

  it('drops an unknown health and zeroes numbers out of range; refuses what has no task state', () => {
    const r = boundTaskStatus({ ...st, health: 'x'.repeat(100), exitCode: 2 ** 40, pid: 1.5 });
    assert.ok(r.ok);
    assert.deepEqual([r.status.health, r.status.exitCode, r.status.pid], ['', 0, 0]);
    assert.deepEqual(r.cut.sort(), ['status.exitCode', 'status.health', 'status.pid']);
    assert.deepEqual(fields(boundTaskStatus({ ...st, state: 'DANCING' })), ['status.state']);
    assert.deepEqual(fields(boundTaskStatus(null)), ['status']);
    assert.deepEqual(fields(boundTaskStatus([st])), ['status']);
  });

  it('cutText leaves short text alone and never splits a surrogate pair', () => {
    assert.equal(cutText('short', 100), 'short');
    for (let max = 30; max < 40; max++) {
      const s = cutText('a🚀'.repeat(50), max);
      assert.ok(Buffer.byteLength(s) <= max, `${max}`);
      assert.ok(!/[\ud800-\udbff](?![\udc00-\udfff])/.test(s), `no lone high surrogate at ${max}`);
    }
  });
});

describe('jsonSizeAtMost', () => {
  it('is the UTF-8 size of JSON.stringify for JSON-like values', () => {
    const values: unknown[] = [
      null,
      0,
      -1.5,
      1e21,
      NaN,
      true,
      'plain',
      'é日🚀\ud800"\\\n\u0001\u007f',
      [],
      [1, 'a', null, undefined, [[]]],
      {},
      { a: 1, b: undefined, c: [{ d: 'e' }], 'k"ey': 'v' },
      JSON.parse('{"__proto__": {"x": 1}, "y": [true, false]}'),
    ];
    for (const v of values) assert.equal(jsonSizeAtMost(v, 1e6), Buffer.byteLength(JSON.stringify(v)), JSON.stringify(v));
  });

  it('stops past its limit on huge, deep and cyclic input', () => {
    assert.ok(jsonSizeAtMost('x'.repeat(10_000_000), 1000) > 1000);
    const cyclic: Record<string, unknown> = { a: 1 };
    cyclic.b = cyclic;
    assert.ok(jsonSizeAtMost(cyclic, 1000) > 1000);
    const wide = new Array(2 ** 30);
    assert.ok(jsonSizeAtMost(wide, 1000) > 1000);
  });
});
