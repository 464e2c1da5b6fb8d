// The allocator: subnets, task addresses, VIPs, ports — all derived from the
// stored objects, so a new leader (a fresh Sim on the same state) agrees.
import { strict as assert } from 'node:assert';
import { node, service, Sim } from '../orchestrator/testing/fixtures';

const addrs = (s: Sim) => [...s.tasks.values()].flatMap((t) => t.networks.flatMap((n) => n.addresses));

describe('allocator', () => {
  it('creates the default network once and gives each node its own /24', () => {
    const s = new Sim({ services: [], nodes: [node('a'), node('b'), node('c', { subnet: '10.42.0.0/24' })] });
    s.tick();
    const nets = [...s.networks.values()];
    assert.equal(nets.length, 1);
    assert.equal(nets[0].spec?.name, 'default');
    assert.equal(nets[0].vni, 4096);
    const subnets = [...s.nodes.values()].map((n) => n.subnet).sort();
    assert.deepEqual(subnets, ['10.42.0.0/24', '10.42.1.0/24', '10.42.2.0/24']);
    assert.equal(s.tick().writes.length, 0, 'stable');
  });

  it('gives every placed task a unique address of its node, skipping .0, .1 and .255', () => {
    const s = new Sim({ services: [service('web', { replicas: 300 })], nodes: [node('a'), node('b')] });
    s.tick();
    const all = addrs(s);
    assert.equal(all.length, 300);
    assert.equal(new Set(all).size, 300);
    for (const t of s.live('web')) {
      const subnet = s.nodes.get(t.nodeId)!.subnet.split('.').slice(0, 3).join('.');
      const a = t.networks[0].addresses[0];
      assert.ok(a.startsWith(subnet + '.') && a.endsWith('/24'));
      assert.ok(!['0', '1', '255'].includes(a.split('/')[0].split('.')[3]));
      assert.equal(t.networks[0].vni, 4096);
    }
  });

  it('releases an address when its task ends and never hands out a duplicate across a leader change', () => {
    const s = new Sim({ services: [service('web', { replicas: 3, restart: { condition: 'RESTART_ANY', delayMs: 0, maxAttempts: 0, windowMs: 0 } })], nodes: [node('a')] });
    s.tick();
    s.agentsRun();
    s.report((t) => t.slot === 2, 'FAILED');
    // A new leader: a fresh reconciler on the same stored state.
    const s2 = new Sim({ services: [...s.services.values()], nodes: [...s.nodes.values()], tasks: [...s.tasks.values()], opts: { newId: () => `x${Math.random()}` } });
    s2.networks = s.networks;
    s2.tick();
    const live = s2.live('web').flatMap((t) => t.networks.flatMap((n) => n.addresses));
    assert.equal(live.length, 3);
    assert.equal(new Set(live).size, 3);
  });

  it('allocates VIPs and ingress ports, keeps given ones, and keeps them stable', () => {
    const ports = (published: number) => ({ mode: 'VIP' as const, ports: [{ name: '', protocol: 'tcp', targetPort: 80, publishedPort: published, publishMode: 'INGRESS' as const }] });
    const s = new Sim({ services: [service('a', { endpoint: ports(0) }), service('b', { endpoint: ports(8080) }), service('c', { endpoint: { mode: 'DNSRR', ports: [] } })], nodes: [] });
    s.tick();
    const a = s.services.get('a')!.endpoint!;
    const b = s.services.get('b')!.endpoint!;
    assert.equal(a.ports[0].publishedPort, 30000);
    assert.equal(b.ports[0].publishedPort, 8080);
    assert.notEqual(a.virtualIps[0].addr, b.virtualIps[0].addr);
    assert.match(a.virtualIps[0].addr, /^10\.43\.0\.\d+$/);
    assert.equal(s.services.get('c')!.endpoint?.virtualIps.length ?? 0, 0);
    assert.equal(s.tick().writes.length, 0);
  });

  it('picks host-mode ports per node from the host range without collisions', () => {
    const s = new Sim({ services: [service('h', { replicas: 4, endpoint: { mode: 'VIP', ports: [{ name: '', protocol: 'tcp', targetPort: 80, publishedPort: 0, publishMode: 'HOST' }] } })], nodes: [node('a')] });
    s.tick();
    const ps = s.live('h').map((t) => t.endpointPorts[0].publishedPort);
    assert.equal(new Set(ps).size, 4);
    assert.ok(ps.every((p) => p >= 20000 && p <= 29999));
  });

  it('never picks a host-mode port the node reports listening on', () => {
    const n = node('a');
    // Every port of the range but two is taken by the node's own listeners.
    n.description!.listeningTcp = Array.from({ length: 10_000 }, (_, i) => 20000 + i).filter((p) => p !== 21000 && p !== 22000);
    const s = new Sim({ services: [service('h', { replicas: 2, endpoint: { mode: 'VIP', ports: [{ name: '', protocol: 'tcp', targetPort: 80, publishedPort: 0, publishMode: 'HOST' }] } })], nodes: [n] });
    s.tick();
    assert.deepEqual(s.live('h').map((t) => t.endpointPorts[0].publishedPort).sort(), [21000, 22000]);
  });
});
