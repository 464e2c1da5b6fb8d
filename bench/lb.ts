// Load-balancing benchmark on a 2-host netns lab (issue 4).
//
// 1. wrk from inside host 1's namespace, alternating, --runs times each:
//    through the published port of host 1 (nftables DNAT, then the VXLAN
//    overlay to the replica on host 2) vs straight to that task's IP (the
//    same overlay, no DNAT). ratio = median published rps / median direct rps.
// 2. Endpoint latency: the service is scaled up one task at a time; for each
//    new task, from its RUNNING status timestamp (the agent's clock, this
//    machine) to the moment host 1's nftables holds its address (VIP
//    reachable) and host 1's DNS answers it under tasks.<service>; both
//    checked back to back, each observation timed when its check returns.
// 3. nftables update time with --services services (3 endpoints each) in a
//    scratch namespace: the whole table written in one `nft -f` transaction,
//    then one endpoint changed (the programmer's diff: a few statements).
//
//   npm run bench:lb [-- --runs 3 --seconds 5 --tasks 10 --services 1000]
//
// Last line: key=value (published_rps, direct_rps, ratio, ready_to_vip_p99_ms,
// ready_to_dns_p99_ms, nft_1000_full_ms, ...). Never fails on time.
import { execFile, spawn } from 'node:child_process';
import type { NetworkState, Task } from '../proto/mod';
import { diffText, renderRuleset } from '../agent/network/nft';
import { buildQuery, parseResponse } from '../agent/network/dns';
import { netnsSh, hostSh } from '../agent/network/sh';
import { taskNetnsName } from '../agent/network/attacher';
import { eventually } from '../common/eventually';
import { DEMO_HTTPD } from '../lab/mod';
import { DEFAULT_CLUSTER_CIDR, DEFAULT_VIP_CIDR } from '../proto/defaults';
import { startLab, type Lab } from '../e2e/support/lab';
import { arg, onInterrupt, quantile } from './support';

/** Nearest-rank median, as the p99 next to it. */
const median = (xs: number[]) => quantile(xs, 0.5);

const f1 = (n: number) => n.toFixed(1);
const ip = (n: number) => [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');

function run(cmd: string, args: string[], input?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = execFile(cmd, args, { encoding: 'utf8', maxBuffer: 64 << 20 }, (e, out, err) => (e ? reject(new Error(`${cmd}: ${(err || e.message).slice(0, 400)}`)) : resolve(out)));
    if (input !== undefined) p.stdin?.end(input);
  });
}

/** Requests/s of one wrk run from inside netns. */
async function wrk(netns: string, url: string, seconds: number): Promise<number> {
  const out = await run('nsenter', [`--net=/run/netns/${netns}`, '--', 'wrk', '-t', '2', '-c', '16', '-d', `${seconds}s`, url]);
  const m = /Requests\/sec:\s*([\d.]+)/.exec(out);
  if (!m) throw new Error(`wrk: no Requests/sec in:\n${out}`);
  return Number(m[1]);
}

const isRunning = (t: Task) => t.desiredState === 'RUNNING' && t.status?.state === 'RUNNING';
async function running(lab: Lab, service: string): Promise<Task[]> {
  return (await lab.api.listTasks({ service })).tasks.filter(isRunning);
}
const addrOf = (t: Task) => t.networks[0]?.addresses[0]?.split('/')[0] ?? '';

/**
 * DNS queries from inside netns to server, through one long-lived process in
 * the namespace (a process per query would cost ~100 ms and blur the figure).
 * query() answers the A records, or none after 300 ms.
 */
function dnsProbe(netns: string, server: string): { query(name: string): Promise<string[]>; close(): void } {
  const js = `const d=require('dgram').createSocket('udp4');let t;d.on('message',m=>{clearTimeout(t);process.stdout.write(m.toString('base64')+'\\n')});require('readline').createInterface({input:process.stdin}).on('line',l=>{d.send(Buffer.from(l,'base64'),53,'${server}');t=setTimeout(()=>process.stdout.write('\\n'),300)}).on('close',()=>process.exit(0))`;
  const p = spawn('nsenter', [`--net=/run/netns/${netns}`, '--', process.execPath, '-e', js], { stdio: ['pipe', 'pipe', 'inherit'] });
  const waiting: ((line: string) => void)[] = [];
  let buf = '';
  p.stdout.on('data', (b: Buffer) => {
    buf += b.toString();
    for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      waiting.shift()?.(line);
    }
  });
  return {
    query: (name) =>
      new Promise((resolve) => {
        waiting.push((line) => resolve(line ? parseResponse(Buffer.from(line, 'base64')).addrs : []));
        p.stdin.write(buildQuery(7, name).toString('base64') + '\n');
      }),
    close: () => p.stdin.end(),
  };
}

async function main(): Promise<void> {
  const runs = arg('runs', 3);
  const seconds = arg('seconds', 5);
  const nTasks = arg('tasks', 10);
  const nServices = arg('services', 1000);
  const figures: Record<string, string> = {};

  // ---- 3. nftables with many services (no lab needed) -------------------------
  const scratch = 'convoy-bench-nft';
  await hostSh.run('ip', ['netns', 'del', scratch]).catch(() => undefined);
  await hostSh.run('ip', ['netns', 'add', scratch]);
  const offScratch = onInterrupt(() => hostSh.run('ip', ['netns', 'del', scratch]).then(() => undefined));
  try {
    const sh = netnsSh(scratch);
    const state = (bump: number): NetworkState => ({
      version: 1,
      clusterCidr: DEFAULT_CLUSTER_CIDR,
      bindAllow: [],
      vipCidr: DEFAULT_VIP_CIDR,
      nodes: [],
      networks: [],
      services: Array.from({ length: nServices }, (_, i) => ({
        serviceId: `s${i}`,
        serviceName: `svc${i}`,
        mode: 'VIP',
        virtualIps: [{ networkId: 'n', addr: ip(10 << 24 | 43 << 16 | (i + 1)) }],
        ports: i < 100 ? [{ name: '', protocol: 'tcp', targetPort: 80, publishedPort: 30000 + i, publishMode: 'INGRESS' }] : [],
        networks: ['n'],
        tasks: [0, 1, 2].map((k) => ({ taskId: `t${i}-${k}`, nodeId: 'x', addresses: [ip(10 << 24 | 42 << 16 | (i * 3 + k + 10 + (i === 0 && k === 0 ? bump : 0)))], ready: true, slot: k + 1 })),
      })) as NetworkState['services'],
    });
    const full: number[] = [];
    const one: number[] = [];
    const applyOne: number[] = [];
    for (let r = 0; r < runs; r++) {
      await sh.run('nft', ['delete', 'table', 'ip', 'convoy']).catch(() => undefined);
      const first = renderRuleset({ state: state(0), local: [], defaultClusterCidr: DEFAULT_CLUSTER_CIDR, defaultVipCidr: DEFAULT_VIP_CIDR });
      const a = first.text;
      const prevRuleset = first.ruleset;
      let t0 = performance.now();
      await sh.run('nft', ['-f', '-'], a);
      full.push(performance.now() - t0);
      // What the programmer does on one endpoint change: render, diff, one small transaction.
      const tr = performance.now();
      const next = renderRuleset({ state: state(40000), local: [], defaultClusterCidr: DEFAULT_CLUSTER_CIDR, defaultVipCidr: DEFAULT_VIP_CIDR });
      const b = diffText(prevRuleset, next.ruleset);
      const render = performance.now() - tr;
      t0 = performance.now();
      await sh.run('nft', ['-f', '-'], b);
      applyOne.push(performance.now() - t0);
      one.push(applyOne[applyOne.length - 1] + render);
    }
    figures[`nft_${nServices}_full_ms`] = f1(median(full));
    figures[`nft_${nServices}_one_change_ms`] = f1(median(one));
    figures[`nft_${nServices}_one_change_apply_ms`] = f1(median(applyOne));
    console.log(`nftables, ${nServices} services x 3 endpoints: whole table ${f1(median(full))} ms (median of ${runs}); one endpoint changed: render + diff + apply ${f1(median(one))} ms, of which the nft transaction ${f1(median(applyOne))} ms`);
  } finally {
    await offScratch();
    await hostSh.run('ip', ['netns', 'del', scratch]).catch(() => undefined);
  }

  // ---- the lab -----------------------------------------------------------------
  const lab = await startLab({ hosts: 2 });
  const offInterrupt = onInterrupt(() => lab.stop());
  try {
    const h1 = lab.state.hosts[0];
    // One replica: both paths end at the same server, so the only difference is the DNAT.
    await lab.convoy('service', 'create', '-d', '--name', 'web', '--replicas', '1', '--constraint', 'node.hostname==lab-h2', '-p', '8080:80', lab.image, 'sh', '-c', DEMO_HTTPD);
    await eventually(async () => (await running(lab, 'web')).length === 1, '1 web task', { timeoutMs: 60_000, pollMs: 100 });
    const webTask = (await running(lab, 'web'))[0];
    const direct = addrOf(webTask);
    // busybox httpd closes every connection first: its TIME_WAIT sockets pile up run after run and
    // slow it down. Let the server drop them (per-namespace switch), so runs stay comparable.
    await run('nsenter', [`--net=/run/netns/${taskNetnsName(webTask.id)}`, '--', 'sysctl', '-q', '-w', 'net.ipv4.tcp_max_tw_buckets=0']);
    // Both paths answer before measuring.
    await eventually(async () => (await wrk(h1.netns, `http://${h1.addr}:8080/`, 1)) > 0, 'the published port', { timeoutMs: 20_000, pollMs: 100 });

    // ---- 1. published port vs task IP ----
    const pub: number[] = [];
    const dir: number[] = [];
    // busybox httpd closes every connection: tens of thousands of connections per run. Let the
    // client reuse TIME_WAIT ports, and alternate which path goes first so neither pays for the other.
    await run('nsenter', [`--net=/run/netns/${h1.netns}`, '--', 'sysctl', '-q', '-w', 'net.ipv4.tcp_tw_reuse=1', 'net.ipv4.ip_local_port_range=1024 65000']);
    for (let r = 0; r < runs; r++) {
      if (r % 2 === 0) {
        pub.push(await wrk(h1.netns, `http://${h1.addr}:8080/`, seconds));
        dir.push(await wrk(h1.netns, `http://${direct}:80/`, seconds));
      } else {
        dir.push(await wrk(h1.netns, `http://${direct}:80/`, seconds));
        pub.push(await wrk(h1.netns, `http://${h1.addr}:8080/`, seconds));
      }
      console.log(`run ${r + 1}: published ${f1(pub[r])} req/s, direct ${f1(dir[r])} req/s`);
    }
    const ratio = median(pub) / median(dir);
    figures.published_rps = f1(median(pub));
    figures.direct_rps = f1(median(dir));
    figures.ratio = ratio.toFixed(3);
    console.log(`wrk -t2 -c16 ${seconds}s from ${h1.netns}: published port ${f1(median(pub))} req/s vs task IP ${f1(median(dir))} req/s (medians of ${runs}), ratio ${ratio.toFixed(3)} (1 replica on host 2 behind the port, busybox httpd, one request per connection)`);

    // ---- 2. RUNNING → in host 1's nftables and DNS ----
    const subnet1 = (await lab.api.listNodes({})).nodes.find((n) => n.description?.hostname === 'lab-h1')?.subnet ?? '';
    const dnsServer = subnet1.replace(/\.0\/\d+$/, '.1');
    const toVip: number[] = [];
    const toDns: number[] = [];
    const dns = dnsProbe(h1.netns, dnsServer);
    try {
      for (let i = 0; i < nTasks; i++) {
        const tasks = (await lab.api.listTasks({ service: 'web' })).tasks;
        const before = new Set(tasks.map((t) => t.id));
        await lab.convoy('service', 'scale', '-d', `web=${tasks.filter(isRunning).length + 1}`);
        // The new task's address is known from its assignment on; from then on, host 1's nftables and
        // DNS are checked back to back, each observation timed when the check returns (an upper bound).
        let addr = '';
        let vipAt = 0;
        let dnsAt = 0;
        const end = Date.now() + 20_000;
        while (!vipAt || !dnsAt) {
          if (Date.now() > end) throw new Error('the new task did not show in host 1\'s nftables and DNS within 20 s');
          if (!addr) {
            const t = (await lab.api.listTasks({ service: 'web' })).tasks.find((x) => !before.has(x.id) && x.desiredState === 'RUNNING' && addrOf(x));
            addr = t ? addrOf(t) : '';
            if (!addr) await new Promise((r) => setTimeout(r, 20));
            continue;
          }
          if (!vipAt) {
            // An ep_<addr> chain exists only for a ready endpoint (agent/network/nft.ts).
            const nft = await run('nsenter', [`--net=/run/netns/${h1.netns}`, '--', 'nft', 'list', 'table', 'ip', 'convoy']);
            if (nft.includes(`chain ep_${addr.replace(/\./g, '_')} `)) vipAt = Date.now();
          }
          if (!dnsAt && (await dns.query('tasks.web')).includes(addr)) dnsAt = Date.now();
        }
        const newTask = (await running(lab, 'web')).find((t) => addrOf(t) === addr);
        const ranAt = Number(newTask?.status?.timestamp ?? 0);
        if (!ranAt) throw new Error(`task at ${addr} reachable but not RUNNING in the manager`);
        toVip.push(Math.max(0, vipAt - ranAt));
        toDns.push(Math.max(0, dnsAt - ranAt));
      }
    } finally {
      dns.close();
    }
    figures.ready_to_vip_median_ms = String(median(toVip));
    figures.ready_to_vip_p99_ms = String(quantile(toVip, 0.99));
    figures.ready_to_dns_median_ms = String(median(toDns));
    figures.ready_to_dns_p99_ms = String(quantile(toDns, 0.99));
    console.log(`task RUNNING (agent's status timestamp) → in host 1's VIP map: median ${median(toVip)} ms, p99 ${quantile(toVip, 0.99)} ms; → answered by host 1's DNS: median ${median(toDns)} ms, p99 ${quantile(toDns, 0.99)} ms (${nTasks} tasks; each observation timed when its check returns, checks back to back)`);
  } finally {
    await offInterrupt();
    await lab.stop();
  }
  console.log(Object.entries(figures).map(([k, v]) => `${k}=${v}`).join(' '));
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : String(e));
  process.exit(1);
});
