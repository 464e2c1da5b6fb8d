import { strict as assert } from 'node:assert';
import { loadDefinition } from './mod';

type Methods = Record<string, { path: string; requestStream: boolean; responseStream: boolean; requestSerialize(x: object): Buffer; requestDeserialize(b: Buffer): object; responseSerialize(x: object): Buffer; responseDeserialize(b: Buffer): object }>;

function services(d: object): Record<string, Methods> {
  return Object.fromEntries(Object.entries(d).filter(([, v]) => !('format' in (v as object)))) as Record<string, Methods>;
}

// The programs load the build's codecs (proto/generated/<name>-codec.ts)
// through proto/definition.ts instead of @grpc/proto-loader parsing the
// .proto text or protobufjs building its reflection from the JSON
// descriptors: all must give the same services, the same bytes on the wire
// and the same decoded objects.
describe('proto codecs and JSON descriptors', () => {
  for (const file of ['control.proto', 'dispatcher.proto', 'agent.proto', 'ca.proto'] as const)
  for (const from of ['codecs', 'json'] as const) {
    it(`${file} from ${from}: same services, methods, streaming flags and conversions as proto-loader on the text`, () => {
      const fast = services(loadDefinition(file, { from }));
      const slow = services(loadDefinition(file, { from: 'text' }));
      assert.deepEqual(Object.keys(fast).sort(), Object.keys(slow).sort());
      assert.ok(Object.keys(fast).length >= 1);
      for (const [svc, methods] of Object.entries(slow)) {
        assert.deepEqual(Object.keys(fast[svc]).sort(), Object.keys(methods).sort(), svc);
        for (const [name, m] of Object.entries(methods)) {
          const f = fast[svc][name];
          assert.deepEqual([f.path, f.requestStream, f.responseStream], [m.path, m.requestStream, m.responseStream], name);
          // Defaults, arrays, objects, enums as strings: an empty message decodes the same.
          assert.deepEqual(f.requestDeserialize(Buffer.alloc(0)), m.requestDeserialize(Buffer.alloc(0)), `${name} request defaults`);
          assert.deepEqual(f.responseDeserialize(Buffer.alloc(0)), m.responseDeserialize(Buffer.alloc(0)), `${name} response defaults`);
        }
      }
    });
  }

  for (const from of ['codecs', 'json'] as const)
  it(`a full service spec goes over the wire byte for byte the same and decodes the same (${from})`, () => {
    const fast = services(loadDefinition('control.proto', { from }))['convoy.Control'].CreateService;
    const slow = services(loadDefinition('control.proto', { from: 'text' }))['convoy.Control'].CreateService;
    const req = {
      spec: {
        name: 'web',
        labels: { tier: 'front', 'a.b': 'c' },
        container: { image: 'reg:5000/busybox:1', command: ['httpd', '-f'], env: ['A=1'] },
        mode: 'GLOBAL',
        replicas: 2 ** 40,
        networks: ['n1', 'n2'],
        resources: { limits: { memoryBytes: 64 << 20, nanoCpus: 5e8 } },
      },
    };
    const bytes = slow.requestSerialize(req);
    assert.deepEqual(fast.requestSerialize(req), bytes);
    const decoded = fast.requestDeserialize(bytes) as { spec: { replicas: number; mode: string; labels: Record<string, string> } };
    assert.deepEqual(decoded, slow.requestDeserialize(bytes));
    assert.equal(decoded.spec.replicas, 2 ** 40);
    assert.equal(decoded.spec.mode, 'GLOBAL');
    assert.deepEqual(decoded.spec.labels, req.spec.labels);
    assert.throws(() => fast.requestSerialize([] as unknown as object), /expected object/);
  });

  for (const from of ['codecs', 'json'] as const)
  it(`a listed service with its endpoint, enums and counts, and an exec message's oneof, round-trip the same (${from})`, () => {
    const fast = services(loadDefinition('control.proto', { from }))['convoy.Control'].ListServices;
    const slow = services(loadDefinition('control.proto', { from: 'text' }))['convoy.Control'].ListServices;
    const res = {
      services: [
        {
          service: { id: 's1', spec: { name: 'web', mode: 'REPLICATED', replicas: 3, endpoint: { ports: [{ protocol: 'tcp', targetPort: 80, publishedPort: 30080, publishMode: 'HOST' }] } }, endpoint: { virtualIps: [{ networkId: 'n1', addr: '10.0.0.2/24' }] } },
          counts: { running: 2, desired: 3 },
        },
        { service: { id: 's2', spec: { name: 'db', mode: 'GLOBAL' } } },
      ],
      nextPageToken: 'p2',
    };
    const bytes = slow.responseSerialize(res);
    assert.deepEqual(fast.responseSerialize(res), bytes);
    assert.deepEqual(fast.responseDeserialize(bytes), slow.responseDeserialize(bytes));
    const listed = fast.responseDeserialize(bytes) as { services: { service: { spec: { endpoint: { ports: { publishMode: string }[] } } } }[] };
    assert.equal(listed.services[0].service.spec.endpoint.ports[0].publishMode, 'HOST');

    const agentFast = services(loadDefinition('agent.proto', { from }));
    const agentSlow = services(loadDefinition('agent.proto', { from: 'text' }));
    for (const [svc, methods] of Object.entries(agentSlow))
      for (const [name, m] of Object.entries(methods))
        for (const msg of [{ stdin: Buffer.from('ls\n') }, { resize: { cols: 80, rows: 24 } }, {}]) {
          const b = m.requestSerialize(msg);
          assert.deepEqual(agentFast[svc][name].requestSerialize(msg), b, `${name} ${JSON.stringify(msg)}`);
          assert.deepEqual(agentFast[svc][name].requestDeserialize(b), m.requestDeserialize(b), `${name} ${JSON.stringify(msg)}`);
        }
  });
});
