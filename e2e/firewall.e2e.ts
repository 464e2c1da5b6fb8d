// The host firewall and network isolation attacked from inside containers
// (issue 12), on a 2-host lab set up as Docker leaves a host: iptables
// FORWARD policy DROP and bridge-nf-call-iptables=1 on the machine (and
// FORWARD DROP in the lab's host namespaces); both restored after, even on
// failure.
//
// From a task on lab-h1: no port of its own node or of the other one answers
// (manager, metrics, etcd, NATS, SSH), its DNS and a published port do;
// --host-access opens the node, and even then the Control API and NATS refuse
// a workload at the TLS layer (no client certificate), while the same client
// with the admin bundle, from the same network namespace, gets in; IPv4, ARP and IPv6 link-local to a task of
// another network on the same host fail; a datagram sent with another task's
// address (the attacker has NET_ADMIN to take it) never arrives (the
// receiver's ICMP counters say so).
import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import { eventually } from '../common/eventually';
import { DEMO_HTTPD } from '../lab/mod';
import { LAB_ETCD_PORT, LAB_NATS_PORT } from '../lab/topology';
import type { Task } from '../proto/mod';
import { startLab, type Lab } from './support/lab';
import { dockerLikeHost, type DockerLikeHost } from './support/docker-host';

// 7423: the manager's join listener (docs/security.md).
const NODE_PORTS = [7420, 7421, 7422, 7423, LAB_ETCD_PORT, LAB_NATS_PORT, 22];
const PUBLISHED = 8080;

describe('host firewall and isolation on a Docker-like host (e2e)', function () {
  this.timeout(300_000);
  let lab: Lab | undefined;
  let docker: DockerLikeHost | undefined;

  const running = async (service: string): Promise<Task[]> =>
    (await lab!.api.listTasks({ service })).tasks.filter((t) => t.desiredState === 'RUNNING' && t.status?.state === 'RUNNING');
  const one = async (service: string) => (await running(service))[0];
  const addrOf = (t: Task) => t.networks[0]?.addresses[0]?.split('/')[0] ?? '';
  /** "open" or "closed" for each addr:port, from inside task. */
  const probe = async (task: Task, targets: string[]) =>
    (await lab!.execIn(task.id, targets.map((t) => `if timeout 4 nc -w 2 ${t.replace(':', ' ')} </dev/null >/dev/null 2>&1; then echo "${t} open"; else echo "${t} closed"; fi`).join('\n'), 120_000)).trim();

  before(async () => {
    docker = dockerLikeHost();
    lab = await startLab({ hosts: 2, managers: 1, heartbeat: '500ms' });
    docker.inNamespaces(lab.state.hosts.map((h) => h.netns));
    await lab.convoy('network', 'create', 'other');
    const on1 = ['--constraint', 'node.hostname==lab-h1'];
    await lab.convoy('service', 'create', '-d', '--name', 'attacker', '--cap-add', 'NET_ADMIN', ...on1, lab.image, 'sleep', '1000000');
    await lab.convoy('service', 'create', '-d', '--name', 'neighbour', '--network', 'other', ...on1, lab.image, 'sleep', '1000000');
    await lab.convoy('service', 'create', '-d', '--name', 'victim', ...on1, lab.image, 'sleep', '1000000');
    await lab.convoy('service', 'create', '-d', '--name', 'receiver', ...on1, lab.image, 'sleep', '1000000');
    await lab.convoy('service', 'create', '-d', '--name', 'trusted', '--host-access', ...on1, lab.image, 'sleep', '1000000');
    await lab.convoy('service', 'create', '-d', '--name', 'web', '-p', `${PUBLISHED}:80`, '--constraint', 'node.hostname==lab-h2', lab.image, 'sh', '-c', DEMO_HTTPD);
    const all = ['attacker', 'neighbour', 'victim', 'receiver', 'trusted', 'web'];
    await eventually(async () => (await Promise.all(all.map(running))).every((ts) => ts.length === 1), `${all.join(', ')} running`, 120_000);
  });

  after(async () => {
    try {
      await lab?.stop();
    } finally {
      docker?.restore();
    }
  });

  it("reaches no port of its own node or of the other one, but its DNS, a published port and (with --host-access) the node", async () => {
    const attacker = await one('attacker');
    const [h1, h2] = lab!.state.hosts.map((h) => h.addr);
    const gw = (await lab!.execIn(attacker.id, 'ip route show default')).match(/via ([\d.]+)/)?.[1] ?? '';
    const targets = [h1, h2, gw].flatMap((a) => NODE_PORTS.map((p) => `${a}:${p}`));
    const out = await probe(attacker, targets);
    assert.deepEqual(out.split('\n').filter((l) => l.endsWith(' open')), [], out);
    assert.match(await lab!.execIn(attacker.id, 'nslookup web 2>&1'), /Address:\s*10\.43\./);
    const page = await lab!.execIn(attacker.id, `timeout 5 wget -O- http://${h2}:${PUBLISHED}/ 2>/dev/null || echo failed`);
    assert.doesNotMatch(page, /failed/);
    // The same probes from a --host-access task: the agent's metrics port of its node answers.
    const opened = await probe(await one('trusted'), [`${h1}:7422`]);
    assert.match(opened, / open$/, opened);
  });

  it('through convoy task exec in a lab task: mount, module loading, setting the clock and new user or mount namespaces fail (syscall probes: agent/runtime/security.int.test.ts)', async () => {
    const victim = await one('victim');
    // The clock is "set" to the current second: were it allowed, the host would lose under a second, not a year.
    const script =
      'mount -t tmpfs x /mnt 2>&1; echo mount=$?; insmod /bin/busybox 2>&1; echo insmod=$?; date -s "$(date +%Y-%m-%d\\ %H:%M:%S)" 2>&1; ' +
      'unshare -U true 2>&1; echo unshare-U=$?; unshare -m true 2>&1; echo unshare-m=$?; grep -E "^(Seccomp|CapInh):" /proc/self/status';
    const out = await lab!.convoy('task', 'exec', victim.id, '--', 'sh', '-c', script);
    const kv = new Map(out.split('\n').filter((l) => /^[a-zA-Z-]+=\d+$/.test(l)).map((l) => l.split('=') as [string, string]));
    for (const k of ['mount', 'insmod', 'unshare-U', 'unshare-m']) assert.ok(kv.has(k) && kv.get(k) !== '0', `${k}: ${out}`);
    // busybox date exits 0 after a refused set; its message says what happened.
    assert.match(out, /can't set date: Operation not permitted/);
    assert.match(out, /unshare\(0x10000000\): Operation not permitted/);
    assert.match(out, /unshare\(0x20000\): Operation not permitted/);
    assert.match(out, /Seccomp:\s+2/, 'the seccomp filter is on');
    assert.match(out, /CapInh:\s+0+\n/, 'empty inheritable set');
  });

  it('from a task that reaches its node (--host-access), the Control API and NATS refuse it without a client certificate; with the admin bundle the same client gets in', async () => {
    const trusted = await one('trusted');
    const h1 = lab!.state.hosts.find((h) => h.index === 1)!.addr;
    const tlsDir = lab!.state.tlsDir!;
    const probeJs = path.join(__dirname, 'support', 'tls-probe.js');
    const run = async (kind: 'grpc' | 'nats', port: number, withBundle: boolean) =>
      JSON.parse(await lab!.nodeInNetnsOf(trusted.id, [probeJs, kind, `${h1}:${port}`, path.join(tlsDir, 'ca.pem'), ...(withBundle ? [tlsDir] : [])])) as { ok: boolean; code: unknown; err?: string };
    // The ports answer TCP from this task (the firewall lets --host-access through).
    assert.deepEqual((await probe(trusted, [`${h1}:7420`, `${h1}:${LAB_NATS_PORT}`])).split('\n'), [`${h1}:7420 open`, `${h1}:${LAB_NATS_PORT} open`]);
    // Control API: the TLS handshake fails without a client certificate (UNAVAILABLE, no handler ran).
    const grpcAnon = await run('grpc', 7420, false);
    assert.equal(grpcAnon.ok, false, JSON.stringify(grpcAnon));
    assert.equal(grpcAnon.code, 14, `UNAVAILABLE: ${JSON.stringify(grpcAnon)}`);
    // NATS: TLS is required and a client certificate with it.
    const natsAnon = await run('nats', LAB_NATS_PORT, false);
    assert.equal(natsAnon.ok, false, JSON.stringify(natsAnon));
    assert.doesNotMatch(natsAnon.err ?? '', /no answer in/, 'refused, not unanswered');
    // The control: the same probes with the admin bundle succeed, so the refusals are the certificate's.
    assert.deepEqual(await run('grpc', 7420, true), { ok: true });
    assert.deepEqual(await run('nats', LAB_NATS_PORT, true), { ok: true });
  });

  it('IPv4, ARP and IPv6 link-local to a task of another network on the same host fail', async () => {
    const attacker = await one('attacker');
    const neighbour = await one('neighbour');
    assert.equal(attacker.nodeId, neighbour.nodeId);
    const addr = addrOf(neighbour);
    const ll = (await lab!.execIn(neighbour.id, 'ip -6 addr show dev eth0 2>/dev/null; true')).match(/inet6 (fe80::[0-9a-f:]+)/)?.[1];
    const script = [
      `ping -c 1 -W 2 ${addr} >/dev/null 2>&1 && echo ipv4-ok`,
      `arping -c 1 -w 2 -I eth0 ${addr} 2>&1 | grep -q 'reply from' && echo arp-ok`,
      // Control: ARP to the gateway works, so the probe is not vacuous.
      `arping -c 1 -w 2 -I eth0 $(ip route show default | sed -n 's/.*via \\([0-9.]*\\).*/\\1/p') 2>&1 | grep -q 'reply from' || echo arp-gateway-failed`,
      ll ? `ping -6 -c 1 -W 2 ${ll}%eth0 >/dev/null 2>&1 && echo ipv6-ok` : 'true',
      'true',
    ].join('\n');
    assert.equal((await lab!.execIn(attacker.id, script, 60_000)).trim(), '');
  });

  it("needs Convoy's own accept chain on a Docker-like host: without the CONVOY-FORWARD jump cross-host task traffic fails, with it back it passes", async () => {
    const attacker = await one('attacker');
    const web = `${addrOf(await one('web'))}:80`;
    const h1 = lab!.state.hosts.find((h) => h.index === 1)!; // lab-h1, where the attacker runs
    const ipt = (...args: string[]) => execFileSync('ip', ['netns', 'exec', h1.netns, 'iptables', '-w', ...args], { stdio: 'pipe' });
    assert.equal(await probe(attacker, [web]), `${web} open`, 'the control: open with the chain');
    ipt('-D', 'FORWARD', '-j', 'CONVOY-FORWARD');
    try {
      assert.equal(await probe(attacker, [web]), `${web} closed`, "Docker's FORWARD DROP stops it without Convoy's accept chain");
    } finally {
      ipt('-I', 'FORWARD', '1', '-j', 'CONVOY-FORWARD');
    }
    assert.equal(await probe(attacker, [web]), `${web} open`);
  });

  it('a packet sent with another task address never arrives', async () => {
    const attacker = await one('attacker');
    const receiver = await one('receiver');
    const victimAddr = addrOf(await one('victim'));
    const to = addrOf(receiver);
    // Echo requests the receiver's kernel took in (its namespace's /proc/net/snmp): busybox has no sniffer.
    const inEchos = async () =>
      Number(await lab!.execIn(receiver.id, "awk '/^Icmp:/ { if (!h) { for (i = 1; i <= NF; i++) if ($i == \"InEchos\") c = i; h = 1 } else print $c }' /proc/net/snmp"));
    // Control: from the attacker's own address the pings arrive.
    const n0 = await inEchos();
    await lab!.execIn(attacker.id, `ping -c 2 -W 2 ${to} >/dev/null 2>&1; true`);
    assert.equal(await inEchos(), n0 + 2);
    // The same from the victim's address (NET_ADMIN lets the attacker put it on its eth0): none arrives.
    await lab!.execIn(attacker.id, `ip addr add ${victimAddr}/32 dev eth0 && ping -c 2 -W 2 -I ${victimAddr} ${to} >/dev/null 2>&1; true`, 30_000);
    assert.equal(await inEchos(), n0 + 2);
  });
});
