// The DNS server against standard resolvers, not our own client: `tasks.web`
// with 100 replicas comes back whole from dig, nslookup and host (bind9's,
// Debian bind9-dnsutils), Node's c-ares and glibc's getaddrinfo: each gets a
// truncated UDP answer (TC) and asks again over TCP.
import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import { promises as dnsp } from 'node:dns';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DnsServer, DnsTable, type DnsService } from './dns';

const hundred = Array.from({ length: 100 }, (_, i) => `10.42.${1 + (i >> 6)}.${2 + (i & 63)}`);
const services: DnsService[] = [{ name: 'web', mode: 'VIP', networks: ['a'], vips: [{ networkId: 'a', addr: '10.43.0.2' }], readyAddrs: hundred }];

function run(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile(cmd, args, { timeout: 20_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd} ${args.join(' ')}: ${err.message}\n${stderr}`));
      else resolve(stdout);
    }),
  );
}

/** A-record addresses in dig's answer section ("tasks.web. 0 IN A 10.42.1.2"). */
const digAddrs = (out: string) => [...out.matchAll(/^tasks\.web\.\s+\d+\s+IN\s+A\s+(\S+)$/gm)].map((m) => m[1]);
const sorted = (a: string[]) => [...a].sort();

describe('DNS server and standard resolvers: tasks.web with 100 replicas', function () {
  this.timeout(60_000);
  const srv = new DnsServer({ upstreams: [] });
  srv.setTable(new DnsTable(services, new Map()));
  // A loopback address of its own (not 127.0.0.1, not systemd-resolved's .53) and a free port.
  const addr = `127.0.0.${100 + (process.pid % 100)}`;
  let port = 0;

  before(async function () {
    for (const tool of ['dig', 'nslookup', 'host']) {
      await run('sh', ['-c', `command -v ${tool}`]).catch(() => {
        throw new Error(`${tool} is missing: install bind9-dnsutils (.ci/setup lists it)`);
      });
    }
    await srv.listen(addr, 0);
    port = srv.port!;
  });
  after(() => srv.close());

  it('dig: the UDP answer is truncated (tc, fewer answers), dig retries over TCP and gets all 100', async () => {
    const udpOnly = await run('dig', [`@${addr}`, '-p', String(port), 'tasks.web', 'A', '+ignore', '+tries=1', '+time=5']);
    assert.match(udpOnly, /;; flags:[a-z ]*\btc\b/);
    const partial = digAddrs(udpOnly);
    assert.ok(partial.length > 0 && partial.length < 100, `${partial.length} answers in the truncated answer`);
    assert.ok(partial.length <= (1232 - 12 - 15 - 11) / 16, "within dig's EDNS0 size (1232)");
    const noEdns = digAddrs(await run('dig', [`@${addr}`, '-p', String(port), 'tasks.web', 'A', '+ignore', '+noedns', '+tries=1', '+time=5']));
    assert.equal(noEdns.length, 30, 'within 512 bytes without EDNS0');

    const before = { ...srv.stats };
    const out = await run('dig', [`@${addr}`, '-p', String(port), 'tasks.web', 'A', '+tries=1', '+time=5']);
    assert.match(out, /Truncated, retrying in TCP mode/);
    assert.match(out, /;; SERVER: .*\(TCP\)/);
    assert.doesNotMatch(out, /;; flags:[a-z ]*\btc\b/);
    assert.deepEqual(sorted(digAddrs(out)), sorted(hundred));
    assert.equal(srv.stats.udpQueries - before.udpQueries, 1);
    assert.equal(srv.stats.tcpQueries - before.tcpQueries, 1);
    assert.equal(srv.stats.truncated - before.truncated, 1);
  });

  it('nslookup (bind9) returns every one of the 100 replicas', async () => {
    const tcp = srv.stats.tcpQueries;
    const out = await run('nslookup', [`-port=${port}`, '-type=A', 'tasks.web', addr]);
    // "Address: 10.42.1.2" per record; the server's own line is "Address:\t<addr>#<port>".
    const got = [...out.matchAll(/^Address:\s+(\d+\.\d+\.\d+\.\d+)$/gm)].map((m) => m[1]);
    assert.deepEqual(sorted(got), sorted(hundred));
    assert.ok(srv.stats.tcpQueries > tcp, 'asked again over TCP');
  });

  it('host returns every one of the 100 replicas', async () => {
    const tcp = srv.stats.tcpQueries;
    const out = await run('host', ['-p', String(port), '-t', 'A', 'tasks.web', addr]);
    const got = [...out.matchAll(/ has address (\S+)$/gm)].map((m) => m[1]);
    assert.deepEqual(sorted(got), sorted(hundred));
    assert.ok(srv.stats.tcpQueries > tcp, 'asked again over TCP');
  });

  it("Node's resolver (c-ares) returns every one of the 100 replicas", async () => {
    const r = new dnsp.Resolver({ timeout: 5000, tries: 1 });
    r.setServers([`${addr}:${port}`]);
    const tcp = srv.stats.tcpQueries;
    assert.deepEqual(sorted(await r.resolve4('tasks.web')), sorted(hundred));
    assert.ok(srv.stats.tcpQueries > tcp, 'asked again over TCP');
  });

  it("glibc's getaddrinfo (what a container's programs use) returns every one of the 100 replicas", async function () {
    if (process.getuid?.() !== 0) this.skip(); // needs a network and a mount namespace of its own
    // glibc's resolv.conf has no port: run a second server on 127.0.0.1:53 in
    // a fresh network namespace, with a resolv.conf of its own bind-mounted
    // there, and getent from the same process once it listens.
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'convoy-dns-int-'));
    try {
      fs.writeFileSync(path.join(dir, 'resolv.conf'), 'nameserver 127.0.0.1\noptions attempts:1 timeout:5\n');
      fs.writeFileSync(
        path.join(dir, 'serve.js'),
        `const { DnsServer, DnsTable } = require(${JSON.stringify(path.join(__dirname, 'dns.js'))});
const { execFile } = require('node:child_process');
const srv = new DnsServer({ upstreams: [] });
srv.setTable(new DnsTable(${JSON.stringify(services)}, new Map()));
srv.listen('127.0.0.1', 53).then(() => execFile('getent', ['ahostsv4', 'tasks.web'], (err, out) => {
  process.stdout.write(out + 'STATS ' + JSON.stringify(srv.stats) + '\\n');
  srv.close().then(() => process.exit(err ? 1 : 0));
}));`,
      );
      // A veth with an address: getaddrinfo's AI_ADDRCONFIG ignores loopback-only hosts.
      const script = [
        'set -e',
        'ip link set lo up',
        'ip link add cvy-dns0 type veth peer name cvy-dns1',
        'ip addr add 10.99.0.1/24 dev cvy-dns0',
        'ip link set cvy-dns0 up',
        'ip link set cvy-dns1 up',
        `mount --bind ${path.join(dir, 'resolv.conf')} /etc/resolv.conf`,
        `exec ${process.execPath} ${path.join(dir, 'serve.js')}`,
      ].join('\n');
      const out = await run('unshare', ['--net', '--mount', 'sh', '-c', script]);
      const lines = out.split('\n').filter(Boolean);
      const stats = JSON.parse(lines.pop()!.replace(/^STATS /, '')) as { truncated: number; tcpQueries: number };
      const got = new Set(lines.map((l) => l.split(/\s+/)[0]));
      assert.deepEqual(sorted([...got]), sorted(hundred));
      assert.ok(stats.truncated >= 1 && stats.tcpQueries >= 1, `truncated over UDP, asked again over TCP: ${JSON.stringify(stats)}`);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
