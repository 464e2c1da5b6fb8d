// The compose keys of the container options (issue 13): each converted with
// Docker's meaning into the service spec, each bad value refused with file,
// line, path and reason; privileged and devices (ignored by Swarm) honoured.
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { ServiceSpec } from '../../proto/mod';
import { loadStack } from './load';

let dir: string;
const S = (body: string) => `services:\n  web:\n    image: reg.local/web:1\n${body}`;
function container(text: string): NonNullable<ServiceSpec['container']> {
  const file = path.join(dir, 'c0.yml');
  fs.writeFileSync(file, text);
  const p = loadStack('app', { files: [file], env: {}, cwd: dir });
  return p.services.find((s) => s.key === 'web')!.spec.container!;
}
function refused(text: string, re: RegExp): void {
  assert.throws(() => container(text), (e: Error) => {
    assert.equal(e.name, 'StackError');
    assert.match(e.message, re);
    assert.doesNotMatch(e.message, /\n/);
    return true;
  });
}

describe('stack loader: container options', () => {
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'convoy-stack-opts-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('converts init, sysctls (map and list), ulimits (number and soft/hard), extra_hosts, dns, dns_search, dns_opt, tty, stdin_open, privileged, devices, tmpfs', () => {
    const c = container(
      S(
        [
          '    init: true',
          '    sysctls: {net.core.somaxconn: 1024, kernel.shmmax: 68719476736}',
          '    ulimits: {nproc: 65535, nofile: {soft: 20000, hard: 40000}}',
          '    extra_hosts: ["somehost:162.242.195.82", "otherhost=50.31.209.229", "v6:::1"]',
          '    dns: 8.8.8.8',
          '    dns_search: [dc1.example.com, dc2.example.com]',
          '    dns_opt: [use-vc, "ndots:2"]',
          '    tty: true',
          '    stdin_open: true',
          '    privileged: true',
          '    devices: ["/dev/ttyUSB0:/dev/ttyUSB1", "/dev/fuse"]',
          '    tmpfs: ["/run:size=1m"]',
          '    hostname: "{{.Service.Name}}-{{.Task.Slot}}"',
          '',
        ].join('\n'),
      ),
    );
    assert.equal(c.init, true);
    assert.deepEqual(c.sysctls, { 'net.core.somaxconn': '1024', 'kernel.shmmax': '68719476736' });
    assert.deepEqual(c.ulimits, [{ name: 'nproc', soft: 65535, hard: 65535 }, { name: 'nofile', soft: 20000, hard: 40000 }]);
    assert.deepEqual(c.hosts, ['162.242.195.82 somehost', '50.31.209.229 otherhost', '::1 v6']);
    assert.deepEqual(c.dnsConfig, { nameservers: ['8.8.8.8'], search: ['dc1.example.com', 'dc2.example.com'], options: ['use-vc', 'ndots:2'] });
    assert.deepEqual([c.tty, c.openStdin, c.privileged], [true, true, true]);
    assert.deepEqual(c.devices, [{ pathOnHost: '/dev/ttyUSB0', pathInContainer: '/dev/ttyUSB1', permissions: 'rwm' }, { pathOnHost: '/dev/fuse', pathInContainer: '', permissions: 'rwm' }]);
    assert.deepEqual(c.mounts, [{ type: 'TMPFS', source: '', target: '/run', readOnly: false, tmpfsSizeBytes: 1 << 20 }]);
    assert.equal(c.hostname, '{{.Service.Name}}-{{.Task.Slot}}');
    assert.deepEqual(container(S('    sysctls: ["net.ipv4.ip_forward=1"]\n    extra_hosts: {db: 10.0.0.1}\n')).sysctls, { 'net.ipv4.ip_forward': '1' });
    assert.deepEqual(container(S('    extra_hosts: {db: 10.0.0.1}\n')).hosts, ['10.0.0.1 db']);
  });

  it('refuses bad values naming file, line and path', () => {
    refused(S('    sysctls: {vm.swappiness: 10}\n'), /c0\.yml:4: services\.web\.sysctls\.vm\.swappiness: "vm\.swappiness" is not namespaced/);
    refused(S('    ulimits: {nofiles: 10}\n'), /c0\.yml:4: services\.web\.ulimits\.nofiles: "nofiles" is not a ulimit/);
    refused(S('    ulimits: {nofile: {soft: 20, hard: 10}}\n'), /c0\.yml:4: services\.web\.ulimits\.nofile: the soft limit is above the hard one/);
    refused(S('    ulimits: {nofile: {soft: 20}}\n'), /services\.web\.ulimits\.nofile: needs soft and hard/);
    refused(S('    extra_hosts: ["nohost"]\n'), /c0\.yml:4: services\.web\.extra_hosts\[0\]: "nohost" is not HOST:IP/);
    refused(S('    extra_hosts: ["db:not-an-ip"]\n'), /services\.web: spec\.container\.hosts\[0\]: "not-an-ip" is not an IP address|services\.web.*not an IP address/);
    refused(S('    dns: 127.0.0.1\n'), /loopback/);
    refused(S('    tty: maybe\n'), /c0\.yml:4: services\.web\.tty: must be true or false/);
    refused(S('    devices: ["dev/fuse"]\n'), /c0\.yml:4: services\.web\.devices\[0\]: "dev\/fuse" is not HOST-PATH/);
    refused(S('    devices: ["/etc/shadow"]\n'), /under \/dev\//);
  });
});
