import { strict as assert } from 'node:assert';
import { agentOptions, defaultAdvertiseAddr } from './agent';
import { managerOptions } from './manager';

describe('cli daemons (flags → options)', () => {
  it('maps manager flags to startManager options', () => {
    const o = managerOptions({
      listen: '0.0.0.0:7420',
      dataDir: '/var/lib/convoy/manager',
      metricsListen: '0.0.0.0:7421',
      advertiseAddr: '10.0.0.5',
      etcd: 'http://10.0.0.2:2379, 10.0.0.3:2379',
      nats: 'none',
      clusterCidr: '10.42.0.0/16',
      vipCidr: '10.43.0.0/16',
      heartbeatPeriod: '500ms',
      id: 'm1',
    });
    assert.deepEqual(o, {
      id: 'm1',
      dataDir: '/var/lib/convoy/manager',
      listen: '0.0.0.0:7420',
      advertiseAddr: '10.0.0.5:7420',
      etcdEndpoints: ['http://10.0.0.2:2379', 'http://10.0.0.3:2379'],
      natsUrl: '',
      metricsListen: '0.0.0.0:7421',
      clusterCidr: '10.42.0.0/16',
      vipCidr: '10.43.0.0/16',
      heartbeatPeriodMs: 500,
    });
    const bare = managerOptions({ listen: '127.0.0.1:7420', dataDir: 'rel', metricsListen: 'none' });
    assert.equal(bare.etcdEndpoints, undefined, 'no --etcd: the embedded default');
    assert.equal(bare.natsUrl, undefined, 'no --nats: the embedded default');
    assert.equal(bare.metricsListen, undefined);
    assert.ok(bare.dataDir.startsWith('/'));
    assert.throws(() => managerOptions({ listen: '7420', dataDir: 'd', metricsListen: 'none' }), /--listen: "7420" is not host:port/);
    assert.throws(() => managerOptions({ listen: 'h:1', dataDir: 'd', metricsListen: 'none', vipCidr: '10.43/16' }), /--vip-cidr/);
  });

  it('maps agent flags to startAgent options', () => {
    const o = agentOptions(
      {
        manager: 'm1:7420,m2',
        token: 'SWMTKN-1-x',
        stateDir: '/tmp/a',
        hostname: 'h1',
        advertiseAddr: '10.0.0.9',
        label: ['zone=east'],
        executor: 'hollow',
        metricsListen: '0.0.0.0:7422',
        insecureRegistry: ['127.0.0.1:5000'],
      },
      {},
    );
    assert.deepEqual(o, {
      managers: ['m1:7420', 'm2:7420'],
      joinToken: 'SWMTKN-1-x',
      advertiseAddr: '10.0.0.9',
      executor: 'hollow',
      labels: { zone: 'east' },
      stateDir: '/tmp/a',
      hostname: 'h1',
      metricsListen: '0.0.0.0:7422',
      runtime: { insecureRegistries: ['127.0.0.1:5000'] },
    });
    assert.equal(agentOptions({ manager: 'm', executor: 'container', metricsListen: 'none' }, { CONVOY_JOIN_TOKEN: 'tok' }).joinToken, 'tok');
    assert.throws(() => agentOptions({ token: 't', executor: 'container', metricsListen: 'none' }, {}), /--manager: at least one/);
    assert.throws(() => agentOptions({ manager: 'm', executor: 'container', metricsListen: 'none' }, {}), /--token: a join token is required/);
    assert.throws(() => agentOptions({ manager: 'm', token: 't', executor: 'vm', metricsListen: 'none' }, {}), /--executor: "vm"/);
  });

  it('advertises the first non-loopback IPv4 address', () => {
    const lo = { address: '127.0.0.1', netmask: '255.0.0.0', family: 'IPv4' as const, mac: '', internal: true, cidr: null };
    const v6 = { address: 'fe80::1', netmask: '', family: 'IPv6' as const, mac: '', internal: false, cidr: null, scopeid: 0 };
    const eth = { ...lo, address: '192.168.1.7', internal: false };
    assert.equal(defaultAdvertiseAddr({ lo: [lo], eth0: [v6, eth] }), '192.168.1.7');
    assert.equal(defaultAdvertiseAddr({ lo: [lo] }), '127.0.0.1');
  });
});
