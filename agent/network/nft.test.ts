// The ruleset's diff: one endpoint change becomes a few statements, whatever the number of services.
import { strict as assert } from 'node:assert';
import type { NetworkState } from '../../proto/mod';
import { diffText, renderBridge, renderRuleset } from './nft';

function state(services: number, readySecond = true): NetworkState {
  return {
    version: 1,
    clusterCidr: '10.42.0.0/16',
    bindAllow: [],
  vipCidr: '10.43.0.0/16',
    nodes: [],
    networks: [],
    services: Array.from({ length: services }, (_, i) => ({
      serviceId: `s${i}`,
      serviceName: `svc${i}`,
      mode: 'VIP',
      virtualIps: [{ networkId: 'n', addr: `10.43.${i >> 8}.${(i & 255) + 1}` }],
      ports: i === 0 ? [{ name: '', protocol: 'tcp', targetPort: 80, publishedPort: 30080, publishMode: 'INGRESS' }] : [],
      networks: ['n'],
      tasks: [
        { taskId: `a${i}`, nodeId: 'x', addresses: [`10.42.${i >> 7}.${((i & 127) << 1) + 2}`], ready: true, slot: 1 },
        { taskId: `b${i}`, nodeId: 'x', addresses: [`10.42.${i >> 7}.${((i & 127) << 1) + 3}`], ready: i !== 0 || readySecond, slot: 2 },
      ],
    })) as NetworkState['services'],
  };
}

const render = (s: NetworkState) => renderRuleset({ state: s, local: [], defaultClusterCidr: '10.42.0.0/16', defaultVipCidr: '10.43.0.0/16' }).ruleset;

describe('nftables ruleset diff', () => {
  it('is empty when nothing changed', () => {
    assert.equal(diffText(render(state(50)), render(state(50))), '');
  });

  it('rewrites only the chains of the service whose endpoint left, then deletes the unused endpoint chains', () => {
    const text = diffText(render(state(500)), render(state(500, false)));
    const lines = text.trim().split('\n');
    assert.ok(lines.length <= 8, text);
    assert.ok(lines.includes('flush chain ip convoy svc_s0'), text);
    assert.ok(lines.includes('add rule ip convoy svc_s0 goto ep_10_42_0_2'), text);
    assert.ok(lines.includes('delete chain ip convoy ep_10_42_0_3'), text);
    // Referencing chains are refilled before the endpoint chains they no longer use are deleted.
    assert.ok(lines.indexOf('delete chain ip convoy ep_10_42_0_3') > lines.indexOf('flush chain ip convoy svc_s0'));
    assert.ok(!text.includes('svc_s1 '), text);
  });

  it('adds a new service as new chains and map elements, without touching the others', () => {
    const text = diffText(render(state(10)), render(state(11)));
    assert.match(text, /^add chain ip convoy svc_s10$/m);
    assert.match(text, /^add element ip convoy vips \{ 10\.43\.0\.11 : goto svc_s10 \}$/m);
    assert.match(text, /^add element ip convoy tasks \{ 10\.42\.0\.22, 10\.42\.0\.23 \}$/m);
    assert.doesNotMatch(text, /svc_s9\b/);
  });
});

describe('host firewall and bridge table', () => {
  const local = [{ taskId: 't', serviceId: 's', serviceName: 'w', veth: 'cvyabc', mac: '02:42:0a:2a:01:05', addresses: ['10.42.1.5'], networks: ['n'], hostPorts: [], netns: 'x', hostAccess: true }];
  const s = { ...state(1), nodes: [{ nodeId: 'a', addr: '10.41.0.12', subnet: '10.42.1.0/24', addresses: ['192.168.7.12', '172.17.0.1'] }] } as NetworkState;
  const text = renderRuleset({ state: s, local, defaultClusterCidr: '10.42.0.0/16', defaultVipCidr: '10.43.0.0/16', underlayAddr: '10.41.0.11', gateway: '10.42.1.1' }).text;

  it('lets a task reach its host only for DNS on the bridge, VXLAN only from node addresses', () => {
    assert.match(text, /udp dport 4789 ip saddr != @nodes drop/);
    assert.match(text, /iifname "convoy0" ip daddr 10\.42\.1\.1 meta l4proto \{ tcp, udp \} th dport 53 accept\n\s+reject/);
    assert.match(text, /add element ip convoy nodes \{ 10\.41\.0\.12, 192\.168\.7\.12, 172\.17\.0\.1, 10\.41\.0\.11 \}/, 'every address of every node, not only the underlay ones');
  });

  it('rejects task → node addresses but published ports and --host-access tasks', () => {
    assert.match(text, /ip saddr 10\.42\.0\.0\/16 ip daddr @nodes jump task_to_node/);
    assert.match(text, /add element ip convoy published \{ tcp \. 30080 \}/);
    assert.match(text, /add element ip convoy host_access \{ 10\.42\.1\.5 \}/);
  });

  it('binds each veth to its addresses and drops frames between task ports', () => {
    const b = renderBridge('10.42.1.1', local);
    assert.match(b, /add element bridge convoy veth_ip \{ "cvyabc" \. 10\.42\.1\.5 \}/);
    assert.match(b, /add element bridge convoy veth_mac \{ "cvyabc" \. 02:42:0a:2a:01:05 \}/);
    assert.match(b, /iifname \. ether saddr != @veth_mac drop\n\s+ether type ip iifname \. ip saddr @veth_ip return/);
    assert.match(b, /ether type arp iifname \. arp saddr ether @veth_mac iifname \. arp saddr ip @veth_ip arp daddr ip 10\.42\.1\.1 return/);
    assert.match(b, /arp daddr ip 10\.42\.1\.1 return\n\s+drop/);
    assert.match(b, /iifname "cvy\*" oifname "cvy\*" drop/);
  });
});
