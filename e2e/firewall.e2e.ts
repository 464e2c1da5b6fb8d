// The host firewall and network isolation attacked from inside containers
// (issue 12), on a 2-host lab set up as Docker leaves a host: iptables
// FORWARD policy DROP and bridge-nf-call-iptables=1 on the machine (and
// FORWARD DROP in the lab's host namespaces); both restored after, even on
// failure.
//
// From a task on lab-h1: no port of its own node or of the other one answers
// (manager, metrics, etcd, NATS, SSH), its DNS and a published port do;
// --host-access opens the node; IPv4, ARP and IPv6 link-local to a task of
// another network on the same host fail; a datagram sent with another task's
// address (the attacker has NET_ADMIN to take it) never arrives (the
// receiver's ICMP counters say so).
import { strict as assert } from 'node:assert';
import { eventually } from '../common/eventually';
import { DEMO_HTTPD } from '../lab/mod';
import { LAB_ETCD_PORT, LAB_NATS_PORT } from '../lab/topology';
import type { Task } from '../proto/mod';
import { startLab, type Lab } from './support/lab';
import { dockerLikeHost, type DockerLikeHost } from './support/docker-host';

const NODE_PORTS = [7420, 7421, 7422, LAB_ETCD_PORT, LAB_NATS_PORT, 22];
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
    await lab.convoy('service', 'create', '--name', 'attacker', '--cap-add', 'NET_ADMIN', ...on1, lab.image, 'sleep', '1000000');
    await lab.convoy('service', 'create', '--name', 'neighbour', '--network', 'other', ...on1, lab.image, 'sleep', '1000000');
    await lab.convoy('service', 'create', '--name', 'victim', ...on1, lab.image, 'sleep', '1000000');
    await lab.convoy('service', 'create', '--name', 'receiver', ...on1, lab.image, 'sleep', '1000000');
    await lab.convoy('service', 'create', '--name', 'trusted', '--host-access', ...on1, lab.image, 'sleep', '1000000');
    await lab.convoy('service', 'create', '--name', 'web', '-p', `${PUBLISHED}:80`, '--constraint', 'node.hostname==lab-h2', lab.image, 'sh', '-c', DEMO_HTTPD);
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
