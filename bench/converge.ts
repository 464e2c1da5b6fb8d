// Convergence benchmark on a 3-host netns lab (issue 4): `service create
// --replicas N` (busybox httpd, published port) until all N are RUNNING and
// reachable through the published port: host 1's nftables ingress chain
// holds all N endpoints and a request through host 1's port is answered.
// Also prints when the last task reached RUNNING, so the networking share
// is visible.
//
//   npm run bench:converge [-- --replicas 100]
//
// Last line: replicas=N seconds=S running_seconds=R. Never fails on time.
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { eventually } from '../common/eventually';
import { DEMO_HTTPD } from '../lab/mod';
import { startLab } from '../e2e/support/lab';
import { arg, onInterrupt } from './support';

function run(cmd: string, args: string[], timeout = 10_000): Promise<string> {
  return new Promise((resolve, reject) => execFile(cmd, args, { encoding: 'utf8', timeout, maxBuffer: 64 << 20 }, (e, out, err) => (e ? reject(new Error(`${cmd}: ${err || e.message}`)) : resolve(out))));
}

async function main(): Promise<void> {
  const n = arg('replicas', 100);
  const lab = await startLab({ hosts: 3 });
  const offInterrupt = onInterrupt(() => lab.stop());
  try {
    const h1 = lab.state.hosts[0];
    const t0 = Date.now();
    await lab.convoy('service', 'create', '-d', '--name', 'web', '--replicas', String(n), '-p', '8080:80', '--limit-memory', '16M', lab.image, 'sh', '-c', DEMO_HTTPD);
    let runningAt = 0;
    await eventually(
      async () => {
        if (!runningAt) {
          const tasks = (await lab.api.listTasks({ service: 'web' })).tasks;
          if (tasks.filter((t) => t.desiredState === 'RUNNING' && t.status?.state === 'RUNNING').length < n) return false;
          runningAt = Date.now();
        }
        const table = await run('nsenter', [`--net=/run/netns/${h1.netns}`, '--', 'nft', 'list', 'table', 'ip', 'convoy']);
        const chain = /chain ing_\w+_tcp_8080 \{[^}]*\}/.exec(table)?.[0] ?? '';
        const endpoints = new Set(chain.match(/ep_[\d_]+_tcp_80\b/g) ?? []).size;
        if (endpoints < n) return false;
        await run('busybox', ['wget', '-O-', `http://${h1.addr}:8080/`], 3000);
        return true;
      },
      `${n} replicas running and behind host 1's published port`,
      { timeoutMs: 180_000, pollMs: 100 },
    );
    const s = (Date.now() - t0) / 1000;
    const r = (runningAt - t0) / 1000;
    printPhases(lab.state.dir, lab.state.hosts.length, t0);
    console.log(`service create --replicas ${n} on 3 hosts: all RUNNING after ${r.toFixed(2)} s, all behind the published port (host 1's nftables) and answering after ${s.toFixed(2)} s`);
    console.log(`replicas=${n} seconds=${s.toFixed(2)} running_seconds=${r.toFixed(2)}`);
  } finally {
    await offInterrupt();
    await lab.stop();
  }
}

/** Per host, when its agent logged each step of the burst (ms after the create command started). */
function printPhases(dir: string, hosts: number, t0: number): void {
  const steps: [string, (m: Record<string, unknown>) => boolean][] = [
    ['assigned', (m) => m.msg === 'task state' && m.to === 'ACCEPTED'],
    ['image pulled', (m) => m.msg === 'image pulled'],
    ['network attached', (m) => m.msg === 'task attached'],
    ['container created', (m) => m.msg === 'task prepared'],
    ['running', (m) => m.msg === 'task state' && m.to === 'RUNNING'],
  ];
  for (let i = 1; i <= hosts; i++) {
    let text = '';
    try {
      text = fs.readFileSync(path.join(dir, `agent-h${i}.log`), 'utf8');
    } catch {
      continue;
    }
    const at = new Map<string, number[]>();
    for (const line of text.split('\n')) {
      let m: Record<string, unknown>;
      try {
        m = JSON.parse(line) as Record<string, unknown>;
      } catch {
        continue;
      }
      const t = Date.parse(String(m.time)) - t0;
      if (!(t >= 0)) continue;
      for (const [name, match] of steps) if (match(m)) at.set(name, [...(at.get(name) ?? []), t]);
    }
    const parts = steps
      .filter(([name]) => at.has(name))
      .map(([name]) => {
        const v = (at.get(name) ?? []).sort((a, b) => a - b);
        return v.length > 1 ? `${name} ${v[0]}..${v[v.length - 1]} ms` : `${name} ${v[0]} ms`;
      });
    console.log(`  host ${i}: ${parts.join(', ')}`);
  }
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : String(e));
  process.exit(1);
});
