// The container options in taskToConfig (pure): hostname templates, extra
// hosts and resolv.conf with the agent's DNS kept as the nameserver, tmpfs
// sizes, privileged, devices, ulimits.
import * as assert from 'node:assert/strict';
import { DEFAULT_TMPFS_SIZE_BYTES, hostsOf, resolvConfOf, taskToConfig } from './executor';
import { taskHostname } from './hostname';
import type { ImageRecord } from './image/store';
import { makeTask } from './testing/fixtures';

const image: ImageRecord = {
  ref: 'r/x:1',
  manifestDigest: 'sha256:m',
  configDigest: 'sha256:c',
  config: { architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: ['sha256:l'] }, config: { Cmd: ['sh'] } },
  layers: ['sha256:l'],
  layerSizes: [1],
  pulledAt: '',
};

describe('container options in the task config', () => {
  it('renders hostname templates with the task and node, cut to a DNS label', () => {
    const t = { ...makeTask('abcdef0123456789', { hostname: '{{.Service.Name}}-{{.Task.Slot}}' }), serviceId: 'svc1', nodeId: 'node9' };
    assert.equal(taskHostname(t, 'host-a'), 'web-1');
    assert.equal(taskHostname({ ...t, spec: { ...t.spec!, container: { ...t.spec!.container!, hostname: '{{.Node.Hostname}}-{{.Task.ID}}' } } }, 'host-a'), 'host-a-abcdef0123456789');
    assert.equal(taskHostname({ ...t, slot: 0, spec: { ...t.spec!, container: { ...t.spec!.container!, hostname: 'g-{{.Task.Slot}}' } } }, 'h'), 'g-node9');
    const long = taskHostname({ ...t, spec: { ...t.spec!, container: { ...t.spec!.container!, hostname: `${'a'.repeat(62)}-{{.Task.ID}}` } } }, 'h');
    assert.equal(long, 'a'.repeat(62));
  });

  it('keeps the agent DNS as the nameserver and adds search and options; without a network writes the servers', () => {
    const base = 'nameserver 10.42.0.1\noptions ndots:0\n';
    const d = { nameservers: ['8.8.8.8'], search: ['example.com'], options: ['timeout:1'] };
    assert.equal(resolvConfOf(d, base), 'nameserver 10.42.0.1\nsearch example.com\noptions ndots:0 timeout:1\n');
    assert.equal(resolvConfOf({ ...d, options: ['ndots:3'] }, base), 'nameserver 10.42.0.1\nsearch example.com\noptions ndots:3\n');
    assert.equal(resolvConfOf(d, undefined), 'nameserver 8.8.8.8\nsearch example.com\noptions timeout:1\n');
    assert.equal(resolvConfOf(null, base), base);
    assert.equal(hostsOf(['10.0.0.1 db  db.local'], '127.0.0.1\tlocalhost\n', 'h'), '127.0.0.1\tlocalhost\n10.0.0.1\tdb\tdb.local\n');
  });

  it('sizes every tmpfs, gives privileged every capability without seccomp, maps devices and ulimits', () => {
    const tmpfs = (size: number) => ({ type: 'TMPFS' as const, source: '', target: '/t', readOnly: false, tmpfsSizeBytes: size });
    assert.equal(taskToConfig(makeTask('t1', { mounts: [tmpfs(0)] }), image, image.layers).mounts![0].tmpfsSizeBytes, DEFAULT_TMPFS_SIZE_BYTES);
    assert.equal(taskToConfig(makeTask('t1', { mounts: [tmpfs(0)] }, { memoryBytes: 32 << 20 }), image, image.layers).mounts![0].tmpfsSizeBytes, 32 << 20);
    assert.equal(taskToConfig(makeTask('t1', { mounts: [tmpfs(4096)] }), image, image.layers).mounts![0].tmpfsSizeBytes, 4096);
    const p = taskToConfig(makeTask('t2', { privileged: true, devices: [{ pathOnHost: '/dev/zero', pathInContainer: '/dev/z', permissions: 'rwm' }], ulimits: [{ name: 'nofile', soft: 10, hard: 20 }], init: true, tty: true, sysctls: { 'net.core.somaxconn': '9' } }), image, image.layers);
    assert.equal(p.capabilities!.length, 41);
    assert.equal(p.seccomp, false);
    assert.equal(p.privileged, true);
    assert.deepEqual(p.devices, [{ source: '/dev/zero', target: '/dev/z' }]);
    assert.deepEqual(p.rlimits, { nofile: { soft: 10, hard: 20 } });
    assert.deepEqual([p.init, p.tty, p.sysctls], [true, true, { 'net.core.somaxconn': '9' }]);
    assert.throws(() => taskToConfig(makeTask('t3', { devices: [{ pathOnHost: '/etc/shadow', pathInContainer: '', permissions: '' }] }), image, image.layers), /device \/etc\/shadow is not under \/dev/);
  });
});
