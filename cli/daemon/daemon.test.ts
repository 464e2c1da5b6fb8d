import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { agentOptions, defaultAdvertiseAddr, DEFAULT_AGENT_METRICS } from './agent';
import { managerOptions, DEFAULT_MANAGER_METRICS } from './manager';

describe('cli daemons (flags → options)', () => {
  const pemDir = fs.mkdtempSync(path.join(os.tmpdir(), 'convoy-daemon-test-'));
  const pem = (name: string, text = `-----BEGIN ${name}-----\nx\n-----END ${name}-----\n`) => {
    fs.writeFileSync(path.join(pemDir, name), text);
    return path.join(pemDir, name);
  };
  after(() => fs.rmSync(pemDir, { recursive: true, force: true }));

  it('maps manager flags to startManager options', () => {
    const tlsFlags = { etcdCacert: pem('CA'), etcdCert: pem('CERTIFICATE'), etcdKey: pem('KEY') };
    const o = managerOptions({
      listen: '0.0.0.0:7420',
      dataDir: '/var/lib/convoy/manager',
      metricsListen: '0.0.0.0:7421',
      advertiseAddr: '10.0.0.5',
      etcd: 'https://10.0.0.2:2379, 10.0.0.3:2379',
      ...tlsFlags,
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
      etcdEndpoints: ['https://10.0.0.2:2379', 'https://10.0.0.3:2379'],
      etcdTls: { ca: fs.readFileSync(tlsFlags.etcdCacert, 'utf8'), cert: fs.readFileSync(tlsFlags.etcdCert, 'utf8'), key: fs.readFileSync(tlsFlags.etcdKey, 'utf8') },
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
    assert.equal(bare.socket, undefined, 'no --socket: <data dir>/convoy.sock');
    assert.equal(managerOptions({ listen: 'h:1', dataDir: 'd', metricsListen: 'none', socket: 'none' }).socket, '');
    assert.equal(managerOptions({ listen: 'h:1', dataDir: 'd', metricsListen: 'none', socket: '/run/convoy/m.sock' }).socket, '/run/convoy/m.sock');
    assert.throws(() => managerOptions({ listen: 'h:1', dataDir: 'd', metricsListen: 'none', socket: 'rel.sock' }), /--socket: "rel.sock" is not an absolute path/);
    const joining = managerOptions({ listen: '0.0.0.0:7420', dataDir: '/d', metricsListen: 'none', kekFile: '/k/kek', join: '10.0.0.1' }, { CONVOY_JOIN_TOKEN: 'CVYTKN-1-x' });
    assert.deepEqual([joining.kekFile, joining.join, joining.joinToken], ['/k/kek', '10.0.0.1:7423', 'CVYTKN-1-x']);
    assert.equal(managerOptions({ listen: 'h:1', dataDir: 'd', metricsListen: 'none' }, { CONVOY_JOIN_TOKEN: 't' }).joinToken, undefined, 'an agent token in the environment is no join');
    assert.throws(() => managerOptions({ listen: 'h:1', dataDir: 'd', metricsListen: 'none', token: 't' }), /--join: the join address/);
    // --cert-expiry: the cluster's bounds (1 minute .. 10 years), as `cluster update --cert-expiry`.
    assert.equal(managerOptions({ listen: 'h:1', dataDir: 'd', metricsListen: 'none', certExpiry: '1m' }).certExpiryMs, 60_000);
    assert.equal(bare.certExpiryMs, undefined);
    assert.throws(() => managerOptions({ listen: 'h:1', dataDir: 'd', metricsListen: 'none', certExpiry: '59s' }), /--cert-expiry: "59s" is outside 60s \.\. 10 years/);
    assert.throws(() => managerOptions({ listen: 'h:1', dataDir: 'd', metricsListen: 'none', certExpiry: 'soon' }), /--cert-expiry/);
  });

  it('--nats embedded with --nats-port: a port for the embedded NATS only', () => {
    const base = { listen: '10.41.0.11:7420', dataDir: 'd', metricsListen: 'none' };
    const o = managerOptions({ ...base, nats: 'embedded', natsPort: '4222' });
    assert.deepEqual([o.natsUrl, o.natsPort], ['embedded', 4222]);
    assert.equal(managerOptions({ ...base, natsPort: '4222' }).natsPort, 4222, 'no --nats: the embedded default');
    for (const bad of ['0', '65536', '42x', '-1']) assert.throws(() => managerOptions({ ...base, natsPort: bad }), /--nats-port: ".*" is not a port/);
    assert.throws(() => managerOptions({ ...base, nats: 'tls://10.41.0.11:4222', natsPort: '4222' }), /--nats-port: only for the embedded NATS/);
    assert.throws(() => managerOptions({ ...base, nats: 'none', natsPort: '4222' }), /--nats-port: only for the embedded NATS/);
  });

  it('--metrics-tls asks for mutual TLS on /metrics; metrics default to loopback', () => {
    const base = { listen: '127.0.0.1:7420', dataDir: 'd' };
    assert.equal(managerOptions({ ...base, metricsListen: '10.0.0.5:7421', metricsTls: true }).metricsMutualTls, true);
    assert.throws(() => managerOptions({ ...base, metricsListen: 'none', metricsTls: true }), /--metrics-tls: metrics are off/);
    assert.equal(agentOptions({ manager: 'm', token: 't', executor: 'hollow', metricsListen: '10.0.0.5:7422', metricsTls: true }, {}).metricsMutualTls, true);
    assert.match(DEFAULT_MANAGER_METRICS, /^127\.0\.0\.1:/);
    assert.match(DEFAULT_AGENT_METRICS, /^127\.0\.0\.1:/);
  });

  it('refuses an external etcd without TLS: http:// URLs, missing or unreadable client material', () => {
    const base = { listen: '127.0.0.1:7420', dataDir: 'd', metricsListen: 'none' };
    const tlsFlags = { etcdCacert: pem('CA'), etcdCert: pem('CERTIFICATE'), etcdKey: pem('KEY') };
    assert.throws(() => managerOptions({ ...base, etcd: 'http://10.0.0.2:2379', ...tlsFlags }), /--etcd: "http:\/\/10.0.0.2:2379" is not an https etcd URL/);
    assert.throws(() => managerOptions({ ...base, etcd: '10.0.0.2:2379' }), /--etcd: --etcd-cacert, --etcd-cert, --etcd-key required/);
    assert.throws(() => managerOptions({ ...base, etcd: '10.0.0.2:2379', etcdCacert: tlsFlags.etcdCacert }), /--etcd: --etcd-cert, --etcd-key required/);
    assert.throws(() => managerOptions({ ...base, etcd: '10.0.0.2:2379', ...tlsFlags, etcdKey: path.join(pemDir, 'nope') }), /--etcd-key: cannot read .*nope \(ENOENT\)/);
    assert.throws(() => managerOptions({ ...base, etcd: '10.0.0.2:2379', ...tlsFlags, etcdCert: pem('plain', 'not pem') }), /--etcd-cert: .*plain is not a PEM file/);
    assert.throws(() => managerOptions({ ...base, ...tlsFlags }), /--etcd-cacert: only with --etcd/);
    assert.deepEqual(managerOptions({ ...base, etcd: '10.0.0.2:2379', ...tlsFlags }).etcdEndpoints, ['https://10.0.0.2:2379']);
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
