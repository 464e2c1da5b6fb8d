// Cluster networking on a 3-host netns lab (issue 4): service discovery by
// name across hosts, tasks.<service>, the published port on every host,
// scale down, a dead host, network isolation, the lead manager killed (the
// lab runs two managers on one etcd), and a clean `lab down`.
//
// Every web replica serves "<hostname> <address>" (DEMO_HTTPD), so answers
// are counted by distinct task address.
import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import { eventually } from '../common/eventually';
import { DEMO_HTTPD, LAB_TMPFS, labSecurity } from '../lab/mod';
import { connectControl } from '../proto/client';
import type { Task } from '../proto/mod';
import { startLab, type Lab } from './support/lab';
import { dockerLikeHost, type DockerLikeHost } from './support/docker-host';

const WEB_REPLICAS = 4;
const PUBLISHED = 8080;

function wget(url: string): Promise<string | undefined> {
  // busybox 1.35's wget crashes with -T: execFile's timeout bounds it.
  return new Promise((resolve) => execFile('busybox', ['wget', '-O-', url], { timeout: 3000, encoding: 'utf8' }, (err, out) => resolve(err ? undefined : out.trim())));
}

/** Second word of an answer: the replica's address. */
const addrOf = (answer: string | undefined) => answer?.split(/\s+/)[1] ?? 'failed';

describe('cluster networking on a 3-host lab', function () {
  this.timeout(300_000);
  let lab: Lab;
  let hostNode: Map<string, string>; // hostname → node id
  let clientTask: string;
  // Run as on a host that also has Docker (issue 12).
  let docker: DockerLikeHost | undefined;

  const running = async (service: string): Promise<Task[]> =>
    (await lab.api.listTasks({ service })).tasks.filter((t) => t.desiredState === 'RUNNING' && t.status?.state === 'RUNNING');
  const addrs = (ts: Task[]) => ts.map((t) => t.networks[0]?.addresses[0]?.split('/')[0] ?? '').sort();
  /** n requests from the client container to url; the address of each answer ("failed" when none). */
  const fromClient = async (url: string, n: number): Promise<string[]> =>
    (await lab.execIn(clientTask, `for i in $(seq 1 ${n}); do wget -O- ${url} 2>/dev/null || echo "x failed"; done`)).trim().split('\n').map(addrOf);
  const viaPort = async (hostAddr: string, n: number): Promise<string[]> => {
    const out: string[] = [];
    for (let i = 0; i < n; i++) out.push(addrOf(await wget(`http://${hostAddr}:${PUBLISHED}/`)));
    return out;
  };

  before(async () => {
    docker = dockerLikeHost();
    lab = await startLab({ hosts: 3, managers: 2, heartbeat: '500ms' });
    docker.inNamespaces(lab.state.hosts.map((h) => h.netns));
    const nodes = (await lab.api.listNodes({})).nodes;
    hostNode = new Map(nodes.map((n) => [n.description?.hostname ?? '', n.id]));
    await lab.convoy('network', 'create', 'isolated');
    await lab.convoy('service', 'create', '-d', '--name', 'web', '--replicas', String(WEB_REPLICAS), '--constraint', 'node.hostname!=lab-h1', '-p', `${PUBLISHED}:80`, lab.image, 'sh', '-c', DEMO_HTTPD);
    await lab.convoy('service', 'create', '-d', '--name', 'client', '--constraint', 'node.hostname==lab-h1', lab.image, 'sleep', '1000000');
    await lab.convoy('service', 'create', '-d', '--name', 'secret', '--network', 'isolated', '--constraint', 'node.hostname==lab-h2', lab.image, 'sh', '-c', DEMO_HTTPD);
    await lab.convoy('service', 'create', '-d', '--name', 'hostport', '--publish', 'mode=host,target=80,published=20080', '--constraint', 'node.hostname==lab-h2', lab.image, 'sh', '-c', DEMO_HTTPD);
    await eventually(
      async () => (await running('web')).length === WEB_REPLICAS && (await running('client')).length === 1 && (await running('secret')).length === 1 && (await running('hostport')).length === 1,
      'web, client, secret and hostport running',
      120_000,
    );
    clientTask = (await running('client'))[0].id;
  });

  after(async () => {
    try {
      await lab?.stop();
    } finally {
      docker?.restore();
    }
  });

  it('reaches http://web/ from a container on host 1; the replicas run on hosts 2 and 3', async () => {
    const web = await running('web');
    assert.ok(web.every((t) => t.nodeId !== hostNode.get('lab-h1')));
    assert.deepEqual(new Set(web.map((t) => t.nodeId)), new Set([hostNode.get('lab-h2'), hostNode.get('lab-h3')]));
    const answers = await fromClient('http://web/', 40);
    assert.ok(!answers.includes('failed'), `failed requests: ${answers.join(' ')}`);
    assert.deepEqual([...new Set(answers)].sort(), addrs(web));
  });

  it('lists every running task under tasks.web', async () => {
    const out = await lab.execIn(clientTask, 'nslookup tasks.web');
    const listed = [...out.matchAll(/^Address:\s*([\d.]+)\s*$/gm)].map((m) => m[1]).sort();
    assert.deepEqual(listed, addrs(await running('web')));
  });

  it('balances the published port on every host (one runs none) across every replica', async () => {
    const want = addrs(await running('web'));
    for (const h of lab.state.hosts) {
      const seen = new Set<string>();
      for (let i = 0; i < 60 && seen.size < want.length; i++) seen.add(addrOf(await wget(`http://${h.addr}:${PUBLISHED}/`)));
      assert.deepEqual([...seen].sort(), want, `through ${h.netns} (${h.addr})`);
    }
  });

  it('maps a host-mode published port to the task on its own host only', async () => {
    const [hp] = await running('hostport');
    assert.equal(hp.nodeId, hostNode.get('lab-h2'));
    assert.equal(addrOf(await wget(`http://${lab.state.hosts[1].addr}:20080/`)), addrs([hp])[0]);
    assert.equal(await wget(`http://${lab.state.hosts[0].addr}:20080/`), undefined);
  });

  it('keeps services on different networks apart', async () => {
    const secret = await running('secret');
    const secretAddr = addrs(secret)[0];
    // The name is unknown to the client's network, and the address is unreachable.
    assert.match(await lab.execIn(clientTask, 'nslookup secret 2>&1; true'), /NXDOMAIN|can't find/i);
    const direct = await lab.execIn(clientTask, `wget -O- http://${secretAddr}/ 2>&1 || echo unreachable`, 20_000);
    assert.match(direct, /unreachable/);
    // From its own network it answers (through its VIP, to itself). The page says which task wrote it
    // ("<hostname> <hostname -i>"): a page without an address is a container that could not resolve its own name.
    const page = await lab.execIn(secret[0].id, 'wget -O- http://secret/ 2>/dev/null');
    assert.equal(addrOf(page), secretAddr, `page ${JSON.stringify(page)} of task ${secret[0].id}`);
  });

  it('sends no traffic to a removed task after a scale down', async () => {
    const before = addrs(await running('web'));
    await lab.convoy('service', 'scale', '-d', 'web=2');
    await eventually(async () => (await running('web')).length === 2, 'web at 2 running tasks', 60_000);
    const kept = addrs(await running('web'));
    const removed = before.filter((a) => !kept.includes(a));
    assert.equal(removed.length, 2);
    // The store says 2; the hosts follow (bench/lb.ts measures how soon). Once a round of
    // requests misses the removed tasks, none may reach them again.
    const t0 = Date.now();
    await eventually(async () => (await fromClient('http://web/', 10)).every((a) => kept.includes(a)), 'no traffic to the removed tasks', 10_000).catch(() => undefined);
    process.stdout.write(`      (hosts converged on the scale down within ${Date.now() - t0} ms of the store)\n`);
    const answers = [...(await fromClient('http://web/', 30)), ...(await viaPort(lab.state.hosts[0].addr, 15))];
    assert.deepEqual([...new Set(answers)].sort(), kept, `answers: ${[...new Set(answers)].join(' ')}`);
  });

  it('moves traffic to the survivors when a host dies', async () => {
    const h3 = hostNode.get('lab-h3');
    await lab.killHost(3);
    await eventually(async () => {
      const web = await running('web');
      return web.length === 2 && web.every((t) => t.nodeId !== h3);
    }, 'web running on the surviving hosts only', 60_000);
    const survivors = addrs(await running('web'));
    // The hosts converge on the new endpoints: then every request lands on a survivor.
    let answers: string[] = [];
    await eventually(async () => {
      answers = [...(await viaPort(lab.state.hosts[0].addr, 10)), ...(await viaPort(lab.state.hosts[1].addr, 10)), ...(await fromClient('http://web/', 10))];
      return answers.every((a) => survivors.includes(a));
    }, 'traffic on the survivors only', 20_000).catch(() => undefined);
    assert.deepEqual([...new Set(answers)].sort(), survivors, `answers: ${answers.join(' ')}`);
  });

  it('keeps going when the lead manager is killed: the other leads, scales web, and the hosts follow', async () => {
    const [m1, m2] = lab.state.managers ?? [];
    assert.ok(m1 && m2, 'the lab runs two managers');
    const other = connectControl(m2, { security: labSecurity(lab.state) });
    try {
      const before = await other.getClusterInfo({});
      assert.equal(before.managers.length, 2);
      const leader = before.managers.find((m) => m.leader);
      assert.ok(leader, 'a leader is known');
      // Kill the leader's process (kill -9), whichever host it runs on.
      const victim = leader.addr === m1 ? 'manager' : 'manager-h2';
      const api = leader.addr === m1 ? other : lab.api;
      process.kill(lab.state.pids.find((p) => p.name === victim)!.pid, 'SIGKILL');
      await eventually(async () => (await api.getClusterInfo({})).managers.some((m) => m.leader && m.id !== leader.id), 'the other manager leading', 30_000);
      // The new leader reconciles: web goes from 2 to 3 replicas (hosts 1 and 3 are out: constraint, dead).
      await api.scaleService({ service: 'web', replicas: 3 });
      const live = async () => (await api.listTasks({ service: 'web' })).tasks.filter((t) => t.desiredState === 'RUNNING' && t.status?.state === 'RUNNING');
      await eventually(async () => (await live()).length === 3, '3 web replicas running under the new leader', 60_000);
      const want = addrs(await live());
      assert.equal(new Set(want).size, 3, `three distinct addresses: ${want.join(' ')}`);
      // The agents' sessions moved to the surviving manager: the published port reaches the new replica too.
      let answers: string[] = [];
      await eventually(async () => {
        answers = await viaPort(lab.state.hosts[1].addr, 20);
        return want.every((a) => answers.includes(a));
      }, 'the published port answering from all 3 replicas', 20_000).catch(() => undefined);
      assert.deepEqual([...new Set(answers)].sort(), want, `answers: ${answers.join(' ')}`);
    } finally {
      other.close();
    }
  });

  it('leaves no namespace, link, nftables table, mount, file or process behind on lab down', async () => {
    const pids = lab.state.pids.map((p) => p.pid);
    await lab.stop();
    const sh = (cmd: string, args: string[]) => new Promise<string>((res, rej) => execFile(cmd, args, { encoding: 'utf8' }, (e, out) => (e ? rej(e) : res(out))));
    assert.doesNotMatch(await sh('ip', ['netns', 'list']), /convoy-lab|convoy-t-/);
    assert.doesNotMatch(await sh('ip', ['-o', 'link', 'show']), /convoy-lab0|cvl-lab0|convoy0|convoy-vx|cvy/);
    assert.doesNotMatch(await sh('nft', ['list', 'tables']), /convoy/);
    for (const pid of pids) assert.throws(() => process.kill(pid, 0), `pid ${pid} still alive`);
    assert.doesNotMatch(fs.readFileSync('/proc/self/mounts', 'utf8'), new RegExp(`^${LAB_TMPFS} `, 'm'));
    assert.ok(!fs.existsSync(lab.state.dir), `${lab.state.dir} removed`);
  });
});
