// DNS answers per asking container: names scoped to shared networks, tasks.<service>, DNSRR, relaying.
import { strict as assert } from 'node:assert';
import { DnsServer, DnsTable, buildQuery, parseResponse, RCODE_NXDOMAIN, RCODE_NOERROR } from './dns';

const table = new DnsTable(
  [
    { name: 'web', mode: 'VIP', networks: ['a'], vips: [{ networkId: 'a', addr: '10.43.0.2' }], readyAddrs: ['10.42.1.2', '10.42.2.2'] },
    { name: 'db', mode: 'DNSRR', networks: ['b'], vips: [], readyAddrs: ['10.42.3.2'] },
  ],
  new Map([
    ['10.42.9.1', new Set(['a'])],
    ['10.42.9.2', new Set(['b'])],
  ]),
);

describe('DNS table', () => {
  it('answers a service with its VIP and tasks.<service> with the ready tasks, for a container on its network', () => {
    assert.deepEqual(table.resolve('web', '10.42.9.1'), { kind: 'records', addrs: ['10.43.0.2'] });
    assert.deepEqual(table.resolve('WEB.', '10.42.9.1'), { kind: 'records', addrs: ['10.43.0.2'] });
    assert.deepEqual(table.resolve('tasks.web', '10.42.9.1'), { kind: 'records', addrs: ['10.42.1.2', '10.42.2.2'] });
  });

  it('answers a DNSRR service with its task addresses', () => {
    assert.deepEqual(table.resolve('db', '10.42.9.2'), { kind: 'records', addrs: ['10.42.3.2'] });
  });

  it('hides services of other networks, and relays dotted names it does not know', () => {
    assert.deepEqual(table.resolve('db', '10.42.9.1'), { kind: 'nxdomain' });
    assert.deepEqual(table.resolve('tasks.db', '10.42.9.1'), { kind: 'nxdomain' });
    assert.deepEqual(table.resolve('example.org', '10.42.9.1'), { kind: 'forward' });
  });

  it('encodes answers on the wire; with no upstream a relayed name fails with SERVFAIL, not silence', async () => {
    const srv = new DnsServer({ upstreams: [] });
    srv.setTable(table);
    const ok = parseResponse((await srv.answer(buildQuery(1, 'tasks.web'), '10.42.9.1'))!);
    assert.deepEqual(ok, { id: 1, rcode: RCODE_NOERROR, addrs: ['10.42.1.2', '10.42.2.2'] });
    assert.equal(parseResponse((await srv.answer(buildQuery(2, 'db'), '10.42.9.1'))!).rcode, RCODE_NXDOMAIN);
    assert.equal(parseResponse((await srv.answer(buildQuery(3, 'example.org'), '10.42.9.1'))!).rcode, 2);
    assert.equal(await srv.answer(Buffer.from([1, 2, 3]), '10.42.9.1'), undefined);
  });
});
