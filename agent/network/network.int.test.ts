// Host networking across two "hosts" (network namespaces on one bridge), each
// programmed by a real createHostNetworking (testing/host-main.ts) from
// hand-made NetworkState: overlay by IP, VIP balancing, DNS, ingress ports,
// endpoint removal, network isolation, and cleanup.
import { strict as assert } from 'node:assert';
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { NetworkState, Task } from '../../proto/mod';
import { taskMac, taskNetnsName } from './attacher';
import { FakeHost } from './testing/fake-host';
import { createUnderlay, removeUnderlay, type UnderlaySpec } from '../../lab/underlay';

const BR = 'convoy-nt0';
const NS = 'convoy-nt-h';
const spec: UnderlaySpec = {
  bridge: BR,
  bridgeCidr: '10.41.9.1/24',
  hosts: [
    { netns: `${NS}1`, addr: '10.41.9.11' },
    { netns: `${NS}2`, addr: '10.41.9.12' },
  ],
};
const NET_A = 'netA';
const NET_B = 'netB';

function task(id: string, serviceName: string, net: string, cidr: string): Task {
  const t: Partial<Task> = { id, serviceId: `svc-${serviceName}`, serviceName, networks: [{ networkId: net, networkName: net, addresses: [cidr], vni: 0 }], endpointPorts: [] };
  return t as Task;
}

// (busybox 1.35's wget crashes with -T or -q: the time limit is execFileSync's.)
function sh(cmd: string, args: string[], timeout = 15_000): string {
  return execFileSync(cmd, args, { encoding: 'utf8', timeout, stdio: ['ignore', 'pipe', 'pipe'] });
}

/** wget from inside a task namespace; the body, or undefined when the request failed. */
function wgetIn(taskId: string, url: string): string | undefined {
  try {
    return sh('nsenter', [`--net=/run/netns/${taskNetnsName(taskId)}`, '--', 'busybox', 'wget', '-O-', url], 3000).trim();
  } catch {
    return undefined;
  }
}

function wgetHere(url: string): string | undefined {
  try {
    return sh('busybox', ['wget', '-O-', url], 3000).trim();
  } catch {
    return undefined;
  }
}

/** A/NXDOMAIN answer of the DNS server at server, asked from inside a task namespace. */
function lookupIn(taskId: string, name: string, server: string): string[] | 'nxdomain' {
  let out: string;
  try {
    out = sh('nsenter', [`--net=/run/netns/${taskNetnsName(taskId)}`, '--', 'busybox', 'nslookup', '-type=a', name, server]);
  } catch (e) {
    const o = String((e as { stdout?: string }).stdout ?? '') + String((e as { stderr?: string }).stderr ?? '');
    if (/NXDOMAIN/i.test(o)) return 'nxdomain';
    throw e;
  }
  // busybox prints the server first ("Address:\t10.42.1.1:53"), then answers.
  return [...out.matchAll(/^Address:\s*([\d.]+)\s*$/gm)].map((m) => m[1]).sort();
}

describe('host networking across two hosts (netns lab)', function () {
  this.timeout(120_000);
  const hosts: FakeHost[] = [];
  const servers: ChildProcess[] = [];
  let www: string;
  const web1 = task('web1aaaaaaaaaaaa', 'web', NET_A, '10.42.2.2/24');
  const web2 = task('web2aaaaaaaaaaaa', 'web', NET_A, '10.42.2.3/24');
  const cli1 = task('cli1aaaaaaaaaaaa', 'cli', NET_A, '10.42.1.2/24');
  const oth1 = task('oth1aaaaaaaaaaaa', 'other', NET_B, '10.42.2.4/24');
  const cliB = task('clibaaaaaaaaaaaa', 'clib', NET_B, '10.42.1.3/24');
  const hp1 = { ...task('hp1aaaaaaaaaaaaa', 'hp', NET_A, '10.42.2.5/24'), endpointPorts: [{ name: '', protocol: 'tcp', targetPort: 80, publishedPort: 20080, publishMode: 'HOST' }] } as Task;

  const state = (over: { web2Ready?: boolean } = {}): NetworkState => ({
    version: Date.now(),
    clusterCidr: '10.42.0.0/16',
    bindAllow: [],
    vipCidr: '10.43.0.0/16',
    nodes: [
      { nodeId: 'n1', addr: spec.hosts[0].addr, subnet: '10.42.1.0/24', up: true, addresses: [] },
      { nodeId: 'n2', addr: spec.hosts[1].addr, subnet: '10.42.2.0/24', up: true, addresses: [] },
    ],
    networks: [
      { id: NET_A, spec: { name: 'a', subnet: '', labels: {}, internal: false }, vni: 0, subnet: '' },
      { id: NET_B, spec: { name: 'b', subnet: '', labels: {}, internal: true }, vni: 0, subnet: '' },
    ] as NetworkState['networks'],
    services: [
      {
        serviceId: 'svc-web',
        serviceName: 'web',
        mode: 'VIP',
        virtualIps: [{ networkId: NET_A, addr: '10.43.0.2' }],
        ports: [{ name: '', protocol: 'tcp', targetPort: 80, publishedPort: 30080, publishMode: 'INGRESS' }],
        networks: [NET_A],
        tasks: [
          { taskId: web1.id, nodeId: 'n2', addresses: ['10.42.2.2'], ready: true, slot: 1 },
          { taskId: web2.id, nodeId: 'n2', addresses: ['10.42.2.3'], ready: over.web2Ready ?? true, slot: 2 },
        ],
      },
      { serviceId: 'svc-cli', serviceName: 'cli', mode: 'VIP', virtualIps: [{ networkId: NET_A, addr: '10.43.0.3' }], ports: [], networks: [NET_A], tasks: [{ taskId: cli1.id, nodeId: 'n1', addresses: ['10.42.1.2'], ready: true, slot: 1 }] },
      { serviceId: 'svc-other', serviceName: 'other', mode: 'DNSRR', virtualIps: [], ports: [], networks: [NET_B], tasks: [{ taskId: oth1.id, nodeId: 'n2', addresses: ['10.42.2.4'], ready: true, slot: 1 }] },
      { serviceId: 'svc-clib', serviceName: 'clib', mode: 'VIP', virtualIps: [{ networkId: NET_B, addr: '10.43.0.5' }], ports: [], networks: [NET_B], tasks: [{ taskId: cliB.id, nodeId: 'n1', addresses: ['10.42.1.3'], ready: true, slot: 1 }] },
    ] as NetworkState['services'],
  });

  const applyAll = async (st: NetworkState) => {
    for (const h of hosts) await h.apply(st);
  };

  function httpd(taskId: string, addr: string, body: string): void {
    const dir = path.join(www, taskId);
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'index.html'), body + '\n');
    servers.push(spawn('nsenter', [`--net=/run/netns/${taskNetnsName(taskId)}`, '--', 'busybox', 'httpd', '-f', '-p', `${addr}:80`, '-h', dir], { stdio: 'ignore' }));
  }

  async function cleanupAll(): Promise<void> {
    for (const s of servers.splice(0)) if (s.pid && s.exitCode === null) s.kill('SIGKILL');
    for (const h of hosts.splice(0)) await h.close();
    for (const t of [web1, web2, cli1, oth1, cliB, hp1]) fs.existsSync(`/run/netns/${taskNetnsName(t.id)}`) && sh('ip', ['netns', 'del', taskNetnsName(t.id)]);
    await removeUnderlay(BR, NS);
  }

  before(async () => {
    await cleanupAll(); // leftovers of a crashed run
    www = fs.mkdtempSync(path.join(os.tmpdir(), 'convoy-nt-'));
    await createUnderlay(spec);
    hosts.push(new FakeHost(spec.hosts[0].netns, spec.hosts[0].addr), new FakeHost(spec.hosts[1].netns, spec.hosts[1].addr));
    await applyAll(state());
    await hosts[0].attach(cli1);
    await hosts[0].attach(cliB);
    await hosts[1].attach(web1);
    await hosts[1].attach(web2);
    await hosts[1].attach(oth1);
    await hosts[1].attach(hp1);
    await applyAll(state());
    httpd(web1.id, '10.42.2.2', 'web1');
    httpd(web2.id, '10.42.2.3', 'web2');
    httpd(oth1.id, '10.42.2.4', 'other1');
    httpd(hp1.id, '10.42.2.5', 'hp1');
    // A server on the machine's side of the underlay bridge: "outside the cluster".
    fs.mkdirSync(path.join(www, 'machine'), { recursive: true });
    fs.writeFileSync(path.join(www, 'machine', 'index.html'), 'machine\n');
    servers.push(spawn('busybox', ['httpd', '-f', '-p', '10.41.9.1:18080', '-h', path.join(www, 'machine')], { stdio: 'ignore' }));
    // httpd needs a moment to bind; poll, do not sleep.
    for (let i = 0; i < 50 && wgetIn(web2.id, 'http://10.42.2.3/') !== 'web2'; i++) await new Promise((r) => setTimeout(r, 100));
    for (let i = 0; i < 50 && wgetHere('http://10.41.9.1:18080/') !== 'machine'; i++) await new Promise((r) => setTimeout(r, 100));
  });

  after(async () => {
    await cleanupAll();
    fs.rmSync(www, { recursive: true, force: true });
  });

  it('reaches a task on another host by its IP over the overlay', () => {
    assert.equal(wgetIn(cli1.id, 'http://10.42.2.2/'), 'web1');
  });

  it("drops a task's frames once it sends with another MAC (anti-spoofing per veth), and passes them again with its own", () => {
    const inNs = (...args: string[]) => sh('nsenter', [`--net=/run/netns/${taskNetnsName(cli1.id)}`, '--', ...args]);
    const own = /link\/ether ([0-9a-f:]+)/.exec(inNs('ip', 'link', 'show', 'eth0'))![1];
    assert.equal(own, taskMac('10.42.1.2'), 'the attacher set the MAC from the address');
    const host1 = spec.hosts[0].netns;
    const bridgeMac = /link\/ether ([0-9a-f:]+)/.exec(sh('ip', ['-n', host1, 'link', 'show', 'convoy0']))![1];
    try {
      // Another task's MAC (that of web1 on the other host), then a made-up one. Both neighbour
      // tables are set by hand, as a raw-socket sender would have them: no ARP is needed, so
      // only the bridge's source-MAC check stands between the task and the gateway.
      for (const other of [taskMac('10.42.2.2'), '02:42:de:ad:be:ef']) {
        inNs('ip', 'link', 'set', 'eth0', 'address', other);
        inNs('ip', 'neigh', 'replace', '10.42.1.1', 'lladdr', bridgeMac, 'dev', 'eth0', 'nud', 'permanent');
        sh('ip', ['-n', host1, 'neigh', 'replace', '10.42.1.2', 'lladdr', other, 'dev', 'convoy0', 'nud', 'permanent']);
        assert.equal(wgetIn(cli1.id, 'http://10.42.2.2/'), undefined, `sent with ${other}`);
      }
    } finally {
      inNs('ip', 'link', 'set', 'eth0', 'address', own);
      inNs('ip', 'neigh', 'flush', 'dev', 'eth0');
      sh('ip', ['-n', host1, 'neigh', 'del', '10.42.1.2', 'dev', 'convoy0']);
    }
    assert.equal(wgetIn(cli1.id, 'http://10.42.2.2/'), 'web1');
  });

  it('balances a VIP across the ready tasks', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 30 && seen.size < 2; i++) seen.add(wgetIn(cli1.id, 'http://10.43.0.2/') ?? 'failed');
    assert.deepEqual([...seen].sort(), ['web1', 'web2']);
  });

  it('answers <service> with the VIP and tasks.<service> with the ready tasks', () => {
    assert.deepEqual(lookupIn(cli1.id, 'web', '10.42.1.1'), ['10.43.0.2']);
    assert.deepEqual(lookupIn(cli1.id, 'tasks.web', '10.42.1.1'), ['10.42.2.2', '10.42.2.3']);
    assert.deepEqual(lookupIn(cli1.id, 'nosuchservice', '10.42.1.1'), 'nxdomain');
  });

  it('serves an ingress port on every host, including one running no task', () => {
    for (const h of spec.hosts) {
      const seen = new Set<string>();
      for (let i = 0; i < 30 && seen.size < 2; i++) seen.add(wgetHere(`http://${h.addr}:30080/`) ?? 'failed');
      assert.deepEqual([...seen].sort(), ['web1', 'web2'], `through ${h.addr}`);
    }
  });

  it('masquerades traffic leaving the cluster (the machine has no route back to task addresses)', () => {
    assert.equal(wgetIn(cli1.id, 'http://10.41.9.1:18080/'), 'machine');
  });

  it('keeps a task of an internal network from leaving the cluster', () => {
    assert.equal(wgetIn(cliB.id, 'http://10.41.9.1:18080/'), undefined);
  });

  it('maps a host-mode port to the local task on its host only', () => {
    assert.equal(wgetHere(`http://${spec.hosts[1].addr}:20080/`), 'hp1');
    assert.equal(wgetHere(`http://${spec.hosts[0].addr}:20080/`), undefined);
  });

  it('isolates networks: no route by IP, no name, across networks', () => {
    assert.equal(wgetIn(cli1.id, 'http://10.42.2.4/'), undefined);
    assert.equal(lookupIn(cli1.id, 'other', '10.42.1.1'), 'nxdomain');
    // The same task is reachable from its own network (DNSRR answers the task address).
    assert.deepEqual(lookupIn(cliB.id, 'other', '10.42.1.1'), ['10.42.2.4']);
    assert.equal(wgetIn(cliB.id, 'http://10.42.2.4/'), 'other1');
  });

  it('stops sending new connections to a task once it is not ready', async () => {
    for (const h of hosts) assert.equal((await h.apply(state({ web2Ready: false }))).report.mode, 'diff');
    const seen = new Set<string>();
    for (let i = 0; i < 20; i++) seen.add(wgetIn(cli1.id, 'http://10.43.0.2/') ?? 'failed');
    for (let i = 0; i < 10; i++) seen.add(wgetHere(`http://${spec.hosts[0].addr}:30080/`) ?? 'failed');
    assert.deepEqual([...seen], ['web1']);
    assert.deepEqual(lookupIn(cli1.id, 'tasks.web', '10.42.1.1'), ['10.42.2.2']);
    for (const h of hosts) assert.equal((await h.apply(state())).report.mode, 'diff');
    assert.equal(wgetIn(cli1.id, 'http://10.42.2.3/'), 'web2');
  });

  it('leaves nothing behind once the hosts clean up', async () => {
    await hosts[1].detach(web2.id);
    assert.equal(fs.existsSync(`/run/netns/${taskNetnsName(web2.id)}`), false);
    for (const s of servers.splice(0)) s.kill('SIGKILL');
    for (const h of hosts.splice(0)) await h.close();
    for (const h of spec.hosts) {
      const links = sh('ip', ['-n', h.netns, '-o', 'link', 'show']);
      assert.doesNotMatch(links, /convoy0|convoy-vx|cvy/, `links left in ${h.netns}`);
      assert.doesNotMatch(sh('ip', ['netns', 'exec', h.netns, 'nft', 'list', 'tables']), /convoy/);
    }
    const left = sh('ip', ['netns', 'list']);
    for (const t of [web1, web2, cli1, oth1, cliB, hp1]) assert.doesNotMatch(left, new RegExp(taskNetnsName(t.id)));
    await removeUnderlay(BR, NS);
    assert.doesNotMatch(sh('ip', ['netns', 'list']), /convoy-nt/);
    assert.doesNotMatch(sh('ip', ['-o', 'link', 'show']), /convoy-nt0|cvl-nt0/);
  });
});
