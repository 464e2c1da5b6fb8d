// The container options' rules in validateServiceSpec: accepted values kept,
// every refusal naming its field; sysctls that are not namespaced refused by name.
import { strict as assert } from 'node:assert';
import type { ServiceSpec } from '../../proto/mod';
import { validateServiceSpec } from './validate';

const spec = (c: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({ name: 'web', replicas: 1, container: { image: 'r/web:1', ...c }, ...extra }) as unknown as ServiceSpec;
const ok = (c: Record<string, unknown>, extra?: Record<string, unknown>) => {
  const r = validateServiceSpec(spec(c, extra), { nodes: [], services: [] });
  assert.ok(r.ok, r.ok ? '' : JSON.stringify(r.errors));
  return r.spec.container!;
};
const refused = (c: Record<string, unknown>, field: string, re: RegExp, extra?: Record<string, unknown>) => {
  const r = validateServiceSpec(spec(c, extra), { nodes: [], services: [] });
  assert.ok(!r.ok, 'accepted');
  const e = r.errors.find((x) => x.field === field);
  assert.ok(e, `no error on ${field}: ${JSON.stringify(r.errors)}`);
  assert.match(e.message, re);
};

describe('container options in the spec (validation)', () => {
  it('accepts every option with Docker values and keeps them', () => {
    const c = ok({
      init: true,
      sysctls: { 'net.core.somaxconn': '1024', 'net.ipv4.ip_local_port_range': '1024 65000', 'kernel.shmmax': '68719476736', 'fs.mqueue.msg_max': '20', 'kernel.sem': '250 32000 100 128' },
      ulimits: [{ name: 'nofile', soft: 1024, hard: 2048 }, { name: 'core', soft: -1, hard: -1 }],
      hosts: ['10.0.0.1 db db.local', 'fd00::1 v6'],
      dnsConfig: { nameservers: ['10.0.0.53', '2001:db8::53'], search: ['example.com'], options: ['ndots:2', 'edns0'] },
      tty: true,
      openStdin: true,
      privileged: true,
      devices: [{ pathOnHost: '/dev/fuse', pathInContainer: '/dev/fuse', permissions: 'rwm' }, { pathOnHost: '/dev/zero', pathInContainer: '', permissions: '' }],
      hostname: '{{.Service.Name}}-{{.Task.Slot}}',
      mounts: [{ type: 'TMPFS', target: '/run', tmpfsSizeBytes: 1 << 20 }],
    });
    assert.equal(c.init, true);
    assert.equal(c.sysctls['net.core.somaxconn'], '1024');
    assert.deepEqual(c.ulimits[1], { name: 'core', soft: -1, hard: -1 });
    assert.equal(c.hostname, '{{.Service.Name}}-{{.Task.Slot}}');
    assert.deepEqual(c.dnsConfig?.options, ['ndots:2', 'edns0']);
    assert.equal(c.devices.length, 2);
    // Absent: Docker's defaults.
    const d = ok({});
    assert.deepEqual([d.init, d.sysctls, d.ulimits, d.hosts, d.dnsConfig, d.tty, d.openStdin, d.privileged, d.devices], [false, {}, [], [], null, false, false, false, []]);
  });

  it('refuses sysctls that are not namespaced, by name', () => {
    for (const k of ['kernel.domainname', 'vm.swappiness', 'kernel.pid_max', 'fs.file-max'])
      refused({ sysctls: { [k]: '1' } }, `spec.container.sysctls[${JSON.stringify(k)}]`, new RegExp(`"${k.replace('.', '\\.')}" is not namespaced`));
    refused({ sysctls: { 'net..x': '1' } }, 'spec.container.sysctls["net..x"]', /not a sysctl name/);
    refused({ sysctls: { 'net.core.somaxconn': 'a\nb' } }, 'spec.container.sysctls["net.core.somaxconn"]', /one line/);
    refused({ sysctls: Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`net.x${i}.y`, '1'])) }, 'spec.container.sysctls', /at most 64/);
  });

  it('refuses bad ulimits, hosts, DNS settings, devices, templates and oversized tmpfs, naming the field', () => {
    refused({ ulimits: [{ name: 'files', soft: 1, hard: 1 }] }, 'spec.container.ulimits[0].name', /"files" is not a ulimit/);
    refused({ ulimits: [{ name: 'nofile', soft: 10, hard: 5 }] }, 'spec.container.ulimits[0].soft', /greater than the hard limit/);
    refused({ ulimits: [{ name: 'nofile', soft: -2, hard: 5 }] }, 'spec.container.ulimits[0].soft', /-1 for unlimited/);
    refused({ ulimits: [{ name: 'nofile', soft: 1, hard: 1 }, { name: 'nofile', soft: 2, hard: 2 }] }, 'spec.container.ulimits[1].name', /given twice/);
    refused({ hosts: ['db 10.0.0.1'] }, 'spec.container.hosts[0]', /"db" is not an IP address/);
    refused({ hosts: ['10.0.0.1 db\n6.6.6.6 evil'] }, 'spec.container.hosts[0]', /is not "IP hostname/);
    refused({ hosts: ['10.0.0.1'] }, 'spec.container.hosts[0]', /is not "IP hostname/);
    refused({ dnsConfig: { nameservers: ['127.0.0.53'], search: [], options: [] } }, 'spec.container.dnsConfig.nameservers[0]', /loopback/);
    refused({ dnsConfig: { nameservers: ['dns.google'], search: [], options: [] } }, 'spec.container.dnsConfig.nameservers[0]', /not an IP address/);
    refused({ dnsConfig: { nameservers: [], search: ['a b'], options: [] } }, 'spec.container.dnsConfig.search[0]', /not a domain name/);
    refused({ dnsConfig: { nameservers: [], search: Array(7).fill('x.com'), options: [] } }, 'spec.container.dnsConfig.search', /at most 6/);
    refused({ dnsConfig: { nameservers: [], search: [], options: ['ndots 2'] } }, 'spec.container.dnsConfig.options[0]', /not a resolver option/);
    refused({ devices: [{ pathOnHost: '/etc/shadow', pathInContainer: '', permissions: '' }] }, 'spec.container.devices[0].pathOnHost', /under \/dev\//);
    refused({ devices: [{ pathOnHost: '/dev/../etc/shadow', pathInContainer: '', permissions: '' }] }, 'spec.container.devices[0].pathOnHost', /clean absolute path/);
    refused({ devices: [{ pathOnHost: '/dev/zero', pathInContainer: '/proc/x', permissions: '' }] }, 'spec.container.devices[0].pathInContainer', /not under \/proc or \/sys/);
    refused({ devices: [{ pathOnHost: '/dev/zero', pathInContainer: '', permissions: 'r' }] }, 'spec.container.devices[0].permissions', /only "rwm"/);
    refused({ hostname: '{{.Service.Labels}}' }, 'spec.container.hostname', /is not a template placeholder/);
    refused({ hostname: '{{.Task.Slot}}_x' }, 'spec.container.hostname', /only a-z, 0-9 and '-'/);
    refused({ hostname: '{{.Task.Slot' }, 'spec.container.hostname', /unbalanced/);
    refused({ hostname: `${'a'.repeat(250)}{{.Task.ID}}` }, 'spec.container.hostname', /longer than 256 bytes/);
    refused({ mounts: [{ type: 'TMPFS', target: '/run', tmpfsSizeBytes: 64 << 20 }] }, 'spec.container.mounts[0].tmpfsSizeBytes', /larger than the memory limit/, { resources: { limits: { memoryBytes: 32 << 20 } } });
    refused({ init: 'yes' }, 'spec.container.init', /must be true or false/);
  });
});
