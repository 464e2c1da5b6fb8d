// The container option flags: each parsed as Docker parses it, refused with
// the flag's name; create and update (-add/-rm, --no-) applied to a spec;
// the update booleans stay unset unless given.
import { strict as assert } from 'node:assert';
import { Command } from 'commander';
import type { ServiceSpec } from '../proto/mod';
import { addContainerOptions, applyContainerCreate, applyContainerUpdate, parseDevice, parseHost, parseSysctl, parseTmpfs, parseUlimit } from './container-flags';
import { buildServiceSpec, parseEnvFile } from './flags';

type Container = NonNullable<ServiceSpec['container']>;
const fresh = (): Container => buildServiceSpec('r/web:1', [], {}).container!;

describe('container option flags', () => {
  it('parses each value as Docker does', () => {
    assert.deepEqual(parseSysctl('net.core.somaxconn=1024'), ['net.core.somaxconn', '1024']);
    assert.deepEqual(parseSysctl('net/ipv4/ip_forward=1'), ['net.ipv4.ip_forward', '1']);
    assert.deepEqual(parseUlimit('nofile=1024:2048'), { name: 'nofile', soft: 1024, hard: 2048 });
    assert.deepEqual(parseUlimit('core=-1'), { name: 'core', soft: -1, hard: -1 });
    assert.equal(parseHost('db:10.0.0.1'), '10.0.0.1 db');
    assert.equal(parseHost('v6:fd00::1'), 'fd00::1 v6');
    assert.equal(parseHost('db=10.0.0.2'), '10.0.0.2 db');
    assert.deepEqual(parseTmpfs('/run:size=64m,ro,nosuid'), { type: 'TMPFS', source: '', target: '/run', readOnly: true, tmpfsSizeBytes: 64 << 20 });
    assert.deepEqual(parseTmpfs('/tmp'), { type: 'TMPFS', source: '', target: '/tmp', readOnly: false, tmpfsSizeBytes: 0 });
    assert.deepEqual(parseDevice('/dev/fuse'), { pathOnHost: '/dev/fuse', pathInContainer: '', permissions: 'rwm' });
    assert.deepEqual(parseDevice('/dev/zero:/dev/convoyzero:rwm'), { pathOnHost: '/dev/zero', pathInContainer: '/dev/convoyzero', permissions: 'rwm' });
    assert.deepEqual(parseDevice('/dev/zero:rw'), { pathOnHost: '/dev/zero', pathInContainer: '', permissions: 'rw' });
  });

  it('refuses bad values with the flag and the reason', () => {
    assert.throws(() => parseSysctl('kernel.hostname=x'), /^CliError: --sysctl: "kernel\.hostname" is not namespaced/);
    assert.throws(() => parseSysctl('vm.swappiness=1'), /--sysctl: "vm\.swappiness" is not namespaced/);
    assert.throws(() => parseSysctl('somaxconn'), /--sysctl: "somaxconn" is not NAME=VALUE/);
    assert.throws(() => parseUlimit('files=1'), /--ulimit: "files" is not a ulimit/);
    assert.throws(() => parseUlimit('nofile=10:5'), /--ulimit: "nofile=10:5": the soft limit is above the hard one/);
    assert.throws(() => parseUlimit('nofile=x'), /is not a number/);
    assert.throws(() => parseHost('10.0.0.1'), /--host: "10\.0\.0\.1" is not HOST:IP/);
    assert.throws(() => parseTmpfs('run'), /--tmpfs: "run": the path must be absolute/);
    assert.throws(() => parseTmpfs('/run:mode=1777'), /--tmpfs: "\/run:mode=1777": option "mode" is not supported/);
    assert.throws(() => parseDevice('dev/fuse'), /--device: "dev\/fuse": the host path must be absolute/);
    assert.throws(() => parseDevice('/dev/a:/dev/b:rwx'), /permissions are a combination of r, w and m/);
  });

  it('create: every flag onto the container spec', () => {
    const c = fresh();
    applyContainerCreate(c, {
      sysctl: ['net.core.somaxconn=1024'],
      ulimit: ['nofile=1:2', 'nofile=3:4'],
      init: true,
      tmpfs: ['/run:size=1m'],
      host: ['db:10.0.0.1'],
      dns: ['10.0.0.53'],
      dnsSearch: ['example.com'],
      dnsOption: ['ndots:2'],
      tty: true,
      privileged: true,
      device: ['/dev/fuse'],
    });
    assert.deepEqual(c.sysctls, { 'net.core.somaxconn': '1024' });
    assert.deepEqual(c.ulimits, [{ name: 'nofile', soft: 3, hard: 4 }]);
    assert.deepEqual([c.init, c.tty, c.privileged], [true, true, true]);
    assert.deepEqual(c.mounts, [{ type: 'TMPFS', source: '', target: '/run', readOnly: false, tmpfsSizeBytes: 1 << 20 }]);
    assert.deepEqual(c.hosts, ['10.0.0.1 db']);
    assert.deepEqual(c.dnsConfig, { nameservers: ['10.0.0.53'], search: ['example.com'], options: ['ndots:2'] });
    assert.deepEqual(c.devices, [{ pathOnHost: '/dev/fuse', pathInContainer: '', permissions: 'rwm' }]);
  });

  it('update: removals before additions, --no- forms', () => {
    const c = fresh();
    applyContainerCreate(c, { sysctl: ['net.a.b=1', 'net.c.d=2'], ulimit: ['nofile=1:2'], host: ['db:10.0.0.1', 'old:10.0.0.9'], dns: ['10.0.0.53'], device: ['/dev/fuse'], init: true, tty: true });
    applyContainerUpdate(c, { sysctlRm: ['net.a.b'], sysctlAdd: ['net.c.d=3'], ulimitRm: ['nofile'], ulimitAdd: ['nproc=10'], hostRm: ['old'], hostAdd: ['db:10.0.0.2'], dnsRm: ['10.0.0.53'], deviceRm: ['/dev/fuse'], deviceAdd: ['/dev/zero'], init: false, tty: false });
    assert.deepEqual(c.sysctls, { 'net.c.d': '3' });
    assert.deepEqual(c.ulimits, [{ name: 'nproc', soft: 10, hard: 10 }]);
    assert.deepEqual(c.hosts, ['10.0.0.1 db', '10.0.0.2 db']);
    assert.equal(c.dnsConfig, null, 'an emptied DNS config is dropped');
    assert.deepEqual(c.devices, [{ pathOnHost: '/dev/zero', pathInContainer: '', permissions: 'rwm' }]);
    assert.deepEqual([c.init, c.tty], [false, false]);
    applyContainerUpdate(c, { hostRm: ['db'] });
    assert.deepEqual(c.hosts, []);
  });

  it('update: --init, --tty and --privileged stay unset unless given (so an update changes nothing it was not asked to)', () => {
    const cmd = addOpts('update');
    cmd.parse([], { from: 'user' });
    assert.deepEqual([cmd.opts().init, cmd.opts().tty, cmd.opts().privileged], [undefined, undefined, undefined]);
    const on = addOpts('update');
    on.parse(['--init', '-t', '--no-privileged', '--sysctl-add', 'net.a.b=1', '--sysctl-add', 'net.c.d=2'], { from: 'user' });
    assert.deepEqual([on.opts().init, on.opts().tty, on.opts().privileged, on.opts().sysctlAdd], [true, true, false, ['net.a.b=1', 'net.c.d=2']]);
    const create = addOpts('create');
    create.parse(['--host', 'db:10.0.0.1', '--host', 'x:10.0.0.2', '--dns', '1.1.1.1'], { from: 'user' });
    assert.deepEqual(create.opts().host, ['db:10.0.0.1', 'x:10.0.0.2']);
  });

  it('--env-file: a bad line is refused as file:line', () => {
    assert.throws(() => parseEnvFile('A=1\n# c\nBAD KEY=2\n', {}, '--env-file app.env'), /^CliError: --env-file app\.env:3: variable "BAD KEY" contains blanks$/);
    assert.throws(() => parseEnvFile('A=1\n=x\n', {}, '--env-file app.env'), /--env-file app\.env:2: "=x" is not KEY=value/);
    assert.throws(() => buildServiceSpec('r/w:1', [], { envFile: ['app.env'] }, { env: {}, readFile: () => 'OK=1\nNO GOOD\n' }), /--env-file app\.env:2: variable "NO GOOD" contains blanks/);
  });
});

function addOpts(kind: 'create' | 'update'): Command {
  const cmd = new Command('x').exitOverride();
  addContainerOptions(cmd, kind);
  return cmd;
}
