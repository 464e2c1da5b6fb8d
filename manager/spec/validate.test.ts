// Spec validation: each refusal names its field; defaults are Docker's.
import { strict as assert } from 'node:assert';
import type { ServiceSpec } from '../../proto/mod';
import { GiB, node, service } from '../orchestrator/testing/fixtures';
import * as L from './limits';
import { validateServiceSpec, type ValidationResult } from './validate';

const base = (o: Partial<ServiceSpec> = {}) => ({ name: 'web', replicas: 2, container: { image: 'registry.local:5000/team/web:1.2' }, ...o }) as ServiceSpec;
const ctx = { nodes: [node('a', { mem: 4 * GiB })], services: [] };
const fields = (r: ValidationResult) => (r.ok ? [] : r.errors.map((e) => e.field));
const refuses = (o: Partial<ServiceSpec>, field: string, msg?: RegExp) => {
  const r = validateServiceSpec(base(o), ctx);
  assert.ok(!r.ok, `expected ${field} to be refused`);
  assert.ok(fields(r).includes(field), `fields: ${fields(r).join(', ')}`);
  if (msg) assert.match(r.errors.find((e) => e.field === field)!.message, msg);
};
const ports = (...ps: { targetPort: number; publishedPort?: number; protocol?: string; publishMode?: 'INGRESS' | 'HOST' }[]) => ({
  mode: 'VIP' as const,
  ports: ps.map((p) => ({ name: '', protocol: p.protocol ?? 'tcp', targetPort: p.targetPort, publishedPort: p.publishedPort ?? 0, publishMode: p.publishMode ?? ('INGRESS' as const) })),
});

describe('validateServiceSpec', () => {
  it('fills Docker-like defaults', () => {
    const r = validateServiceSpec(base(), ctx);
    assert.ok(r.ok);
    const s = r.spec;
    assert.deepEqual(s.restart, { condition: 'RESTART_ANY', delayMs: 5000, maxAttempts: 0, windowMs: 0 });
    assert.equal(s.update?.parallelism, 1);
    assert.equal(s.update?.failureAction, 'FAILURE_PAUSE');
    assert.equal(s.update?.monitorMs, 5000);
    assert.equal(s.update?.order, 'STOP_FIRST');
    assert.equal(s.container?.stopGracePeriodMs, 10_000);
    assert.equal(s.endpoint?.mode, 'VIP');
    assert.equal(s.mode, 'REPLICATED');
    const p = validateServiceSpec(base({ endpoint: { mode: 'VIP', ports: [{ targetPort: 80 } as never] } }), ctx);
    assert.ok(p.ok);
    assert.equal(p.spec.endpoint?.ports[0].protocol, 'tcp');
    assert.equal(p.spec.endpoint?.ports[0].publishMode, 'INGRESS');
  });

  it('takes capabilities by Docker\'s names, refuses unknown ones naming the entry, and keeps read_only', () => {
    const ok = validateServiceSpec(base({ container: { image: 'x:1', capAdd: ['net_admin', 'CAP_SYS_TIME', 'ALL'], capDrop: ['chown'], readOnly: true } as never }), ctx);
    assert.ok(ok.ok);
    assert.deepEqual(ok.spec.container?.capAdd, ['net_admin', 'CAP_SYS_TIME', 'ALL']);
    assert.deepEqual(ok.spec.container?.capDrop, ['chown']);
    assert.equal(ok.spec.container?.readOnly, true);
    refuses({ container: { image: 'x:1', capAdd: ['NET_ADMIN', 'NET_WIZARD'] } as never }, 'spec.container.capAdd[1]', /"NET_WIZARD" is not a capability/);
    refuses({ container: { image: 'x:1', capDrop: ['CAP_'] } as never }, 'spec.container.capDrop[0]', /not a capability/);
    refuses({ container: { image: 'x:1', capAdd: Array.from({ length: L.CAPABILITIES_MAX + 1 }, () => 'CHOWN') } as never }, 'spec.container.capAdd', /at most/);
    refuses({ container: { image: 'x:1', capAdd: ['x'.repeat(L.CAPABILITY_NAME_MAX_BYTES + 1)] } as never }, 'spec.container.capAdd[0]', /longer than/);
    refuses({ container: { image: 'x:1', readOnly: 'yes' } as never }, 'spec.container.readOnly', /true or false/);
  });

  it("takes a stack's scoped names (app_web) and DNS aliases on the service's own networks", () => {
    const ok = validateServiceSpec(base({ name: 'app_web', networks: ['app_front'], networkAliases: [{ network: 'app_front', aliases: ['web', 'www'] }] }), { ...ctx, networks: [{ id: 'n1', spec: { name: 'app_front' } } as never] });
    assert.ok(ok.ok, JSON.stringify(!ok.ok && ok.errors));
    assert.deepEqual(ok.spec.networkAliases, [{ network: 'app_front', aliases: ['web', 'www'] }]);
    refuses({ networkAliases: [{ network: 'default', aliases: ['github.com'] }] }, 'spec.networkAliases[0].aliases[0]', /not a DNS label/);
    assert.ok(validateServiceSpec(base({ networkAliases: [{ network: 'default', aliases: ['w'] }] }), ctx).ok, '"default" when the service names no network');
    refuses({ name: '_web' }, 'spec.name', /DNS label/);
    refuses({ name: 'web_' }, 'spec.name', /DNS label/);
    refuses({ container: { image: 'x:1', hostname: 'a_b' } as never }, 'spec.container.hostname', /not a valid hostname/);
    refuses({ networks: ['a'], networkAliases: [{ network: 'b', aliases: ['x'] }] }, 'spec.networkAliases[0].network', /not one of the service's networks/);
    refuses({ networkAliases: [{ network: 'default', aliases: ['bad name'] }] }, 'spec.networkAliases[0].aliases[0]', /not a DNS label/);
    refuses({ networkAliases: [{ network: 'default', aliases: Array.from({ length: L.ALIASES_MAX + 1 }, (_, i) => `a${i}`) }] }, 'spec.networkAliases[0].aliases', /at most/);
  });

  it('refuses bad names and images', () => {
    refuses({ name: '' }, 'spec.name', /empty/);
    refuses({ name: 'Web_1' }, 'spec.name', /DNS label/);
    refuses({ name: 'a'.repeat(64) }, 'spec.name');
    refuses({ container: { image: '' } as never }, 'spec.container.image', /empty/);
    refuses({ container: { image: 'UPPER/case' } as never }, 'spec.container.image', /image reference/);
    refuses({ container: { image: 'web::1' } as never }, 'spec.container.image');
  });

  it('refuses negative, fractional and NaN replicas, and replicas on a global service', () => {
    refuses({ replicas: -1 }, 'spec.replicas', /from 0/);
    refuses({ replicas: 1.5 }, 'spec.replicas');
    refuses({ replicas: NaN }, 'spec.replicas');
    refuses({ mode: 'GLOBAL', replicas: 3 }, 'spec.replicas', /global/);
  });

  it('refuses unknown constraint keys, bad operators and bad preferences', () => {
    const pl = (constraints: string[], preferences: string[] = []) => ({ placement: { constraints, preferences, maxReplicasPerNode: 0, platforms: [], strategy: 'SPREAD' as const } });
    refuses(pl(['node.labels.zone == east', 'node.colour == red']), 'spec.placement.constraints[1]', /unknown constraint key/);
    refuses(pl(['node.role > manager']), 'spec.placement.constraints[0]', /only == and !=/);
    refuses(pl([], ['zone']), 'spec.placement.preferences[0]');
    assert.ok(validateServiceSpec(base(pl(['engine.labels.disk==ssd', 'node.platform.arch!=arm64'], ['spread=node.labels.zone'])), ctx).ok);
  });

  it('takes spread or binpack as the placement strategy, binpack for replicated services only', () => {
    const pl = (strategy: string, mode = 'REPLICATED') => ({ mode, replicas: mode === 'GLOBAL' ? 0 : 2, placement: { constraints: [], preferences: [], maxReplicasPerNode: 0, platforms: [], strategy } }) as never;
    assert.ok(validateServiceSpec(base(pl('BINPACK')), ctx).ok);
    assert.ok(validateServiceSpec(base(pl('')), ctx).ok, 'absent = spread');
    refuses(pl('TIGHT'), 'spec.placement.strategy', /"TIGHT" is not one of SPREAD, BINPACK/);
    refuses(pl('BINPACK', 'GLOBAL'), 'spec.placement.strategy', /replicated services/);
  });

  it('refuses bad ports and a port published twice', () => {
    refuses({ endpoint: ports({ targetPort: 0 }) }, 'spec.endpoint.ports[0].targetPort');
    refuses({ endpoint: ports({ targetPort: 80 }, { targetPort: 70000 }) }, 'spec.endpoint.ports[1].targetPort');
    refuses({ endpoint: ports({ targetPort: 80, publishedPort: 70000 }) }, 'spec.endpoint.ports[0].publishedPort');
    refuses({ endpoint: ports({ targetPort: 80, protocol: 'sctp' }) }, 'spec.endpoint.ports[0].protocol');
    refuses({ endpoint: ports({ targetPort: 80, publishedPort: 8080 }, { targetPort: 81, publishedPort: 8080 }) }, 'spec.endpoint.ports[1].publishedPort', /twice/);
  });

  it('reports a published port held by another service as a conflict', () => {
    const other = service('api', { endpoint: ports({ targetPort: 80, publishedPort: 8080 }) });
    const r = validateServiceSpec(base({ endpoint: ports({ targetPort: 80, publishedPort: 8080 }) }), { ...ctx, services: [other] });
    assert.ok(!r.ok && r.conflict === true);
    assert.match(r.errors[0].message, /already published by service "api"/);
    assert.ok(validateServiceSpec(base({ endpoint: ports({ targetPort: 80, publishedPort: 8080 }) }), { ...ctx, services: [other], existingId: 'api' }).ok, 'its own port is not a conflict');
  });

  it('refuses reservations no node can hold and limits below reservations', () => {
    const res = (resv: number, lim: number) => ({ resources: { reservations: { nanoCpus: 0, memoryBytes: resv, pids: 0 }, limits: { nanoCpus: 0, memoryBytes: lim, pids: 0 } } });
    refuses(res(8 * GiB, 0), 'spec.resources.reservations.memoryBytes', /no node has that much memory \(largest: 4\.0 GiB\)/);
    refuses(res(2 * GiB, GiB), 'spec.resources.limits.memoryBytes', /lower than/);
    refuses(res(0, 1024), 'spec.resources.limits.memoryBytes', /at least/);
    refuses({ resources: { reservations: { nanoCpus: -1, memoryBytes: 0, pids: 0 }, limits: null } }, 'spec.resources.reservations.nanoCpus');
  });

  it('refuses huge labels, too many labels and a huge spec', () => {
    refuses({ labels: { ['k'.repeat(129)]: 'v' } }, `spec.labels["${'k'.repeat(32)}"]`);
    refuses({ labels: { k: 'v'.repeat(4097) } }, 'spec.labels["k"]');
    refuses({ labels: Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`k${i}`, 'v'])) }, 'spec.labels');
    refuses({ container: { image: 'x:1', env: Array.from({ length: 3000 }, (_, i) => `K${i}=${'v'.repeat(50)}`) } as never }, 'spec');
  });

  it('refuses bad env entries and mounts', () => {
    refuses({ container: { image: 'x:1', env: ['OK=1', 'novalue', '=x'] } as never }, 'spec.container.env[1]');
    const m = (mounts: object[]) => ({ container: { image: 'x:1', mounts } as never });
    refuses(m([{ type: 'BIND', source: 'relative', target: '/data', readOnly: false, tmpfsSizeBytes: 0 }]), 'spec.container.mounts[0].source');
    refuses(m([{ type: 'VOLUME', source: 'v', target: 'data', readOnly: false, tmpfsSizeBytes: 0 }]), 'spec.container.mounts[0].target');
    refuses(m([{ type: 'TMPFS', source: '', target: '/t', readOnly: false, tmpfsSizeBytes: 0 }, { type: 'TMPFS', source: '', target: '/t', readOnly: false, tmpfsSizeBytes: 0 }]), 'spec.container.mounts[1].target', /twice/);
  });

  it('admits bind mounts only from allowed paths, checked and normalised at create', () => {
    const bind = (source: string) => ({ container: { image: 'x:1', mounts: [{ type: 'BIND', source, target: '/data', readOnly: false, tmpfsSizeBytes: 0 }] } as never });
    // The default: no allow list, no bind mount.
    refuses(bind('/srv/data'), 'spec.container.mounts[0].source', /not under a path the cluster allows/);
    const allowed = { ...ctx, bindAllow: ['/srv'], bindDenied: ['/srv/convoy-manager'] };
    const r = validateServiceSpec(base(bind('/srv//data/')), allowed);
    assert.ok(r.ok, JSON.stringify(r));
    assert.equal(r.spec.container!.mounts[0].source, '/srv/data');
    const no = (source: string, re: RegExp) => {
      const v = validateServiceSpec(base(bind(source)), allowed);
      assert.ok(!v.ok && v.errors.length === 1 && v.errors[0].field === 'spec.container.mounts[0].source', JSON.stringify(v));
      assert.match(v.errors[0].message, re);
    };
    no('/srv/../etc', /'\.\.'/);
    no('/opt/x', /not under a path the cluster allows \(\/srv/);
    no('/srv/convoy-manager/kek', /cluster's own state/);
    const root = { ...ctx, bindAllow: ['/'] };
    for (const p of ['/', '/etc', '/var/run/docker.sock', '/var/lib/convoy', '/root/.convoy', '/proc/self'])
      assert.ok(!validateServiceSpec(base(bind(p)), root).ok, `${p} admitted under /`);
  });

  it("refuses the cluster's own ports and ports a node listens on, naming the field", () => {
    for (const [port, what] of [[7420, /manager's gRPC/], [2379, /etcd/], [4222, /NATS/], [4789, /VXLAN/], [53, /DNS/], [7422, /agent's metrics/]] as const) {
      refuses({ endpoint: ports({ targetPort: 80, publishedPort: port }) }, 'spec.endpoint.ports[0].publishedPort', what);
      refuses({ endpoint: ports({ targetPort: 80, publishedPort: port, publishMode: 'HOST', protocol: 'udp' }) }, 'spec.endpoint.ports[0].publishedPort', what);
    }
    const n = node('a', { mem: 4 * GiB });
    n.description!.listeningTcp = [22, 5432];
    n.description!.listeningUdp = [123];
    const c = { nodes: [n], services: [] };
    const one = (p: Parameters<typeof ports>[0]) => validateServiceSpec(base({ endpoint: ports(p) }), c);
    const r = one({ targetPort: 22, publishedPort: 22 });
    assert.ok(!r.ok && r.conflict && r.errors[0].field === 'spec.endpoint.ports[0].publishedPort');
    assert.match(r.errors[0].message, /22\/tcp is in use on node "host-a"/);
    assert.ok(!one({ targetPort: 123, publishedPort: 123, protocol: 'udp', publishMode: 'HOST' }).ok);
    assert.ok(one({ targetPort: 123, publishedPort: 123 }).ok, '123/tcp is free');
    assert.ok(one({ targetPort: 80, publishedPort: 8080 }).ok);
  });

  it('refuses bad autoscale policies and update ratios', () => {
    const a = (o: object) => ({ autoscale: { enabled: true, minReplicas: 1, maxReplicas: 5, targetCpuPercent: 70, targetMemoryPercent: 0, scaleDownStabilizationMs: 0, ...o }, resources: { reservations: { nanoCpus: 1e8, memoryBytes: 0, pids: 0 }, limits: null } });
    refuses(a({ minReplicas: 6 }), 'spec.autoscale.minReplicas', /greater than maxReplicas/);
    refuses(a({ targetCpuPercent: 1001 }), 'spec.autoscale.targetCpuPercent');
    refuses(a({ targetCpuPercent: 0 }), 'spec.autoscale');
    assert.ok(validateServiceSpec(base(a({})), ctx).ok);
    // Off, the policy is kept for a later update to turn back on: its values are bounded all the same (fuzz:spec found Infinity surviving as null).
    refuses(a({ enabled: false, maxReplicas: Infinity }), 'spec.autoscale.maxReplicas');
    refuses(a({ enabled: false, targetMemoryPercent: -Infinity }), 'spec.autoscale.targetMemoryPercent');
    assert.ok(validateServiceSpec(base(a({ enabled: false, minReplicas: 0, maxReplicas: 0, targetCpuPercent: 0 })), ctx).ok, 'an all-zero policy that is off');
    refuses({ update: { parallelism: 1, delayMs: 0, failureAction: 'FAILURE_PAUSE', monitorMs: 0, maxFailureRatio: 1.5, order: 'STOP_FIRST' } }, 'spec.update.maxFailureRatio');
  });
});

describe('validateServiceSpec on hostile input', () => {
  const ok = (o: Partial<ServiceSpec>) => {
    const r = validateServiceSpec(base(o), ctx);
    assert.ok(r.ok, r.ok ? '' : r.errors.map((e) => `${e.field}: ${e.message}`).join('; '));
    return r.spec;
  };
  const c = (o: object) => ({ container: { image: 'x:1', ...o } as never });
  const pl = (o: object) => ({ placement: { constraints: [], preferences: [], maxReplicasPerNode: 0, platforms: [], strategy: 'SPREAD' as const, ...o } });

  it('holds every string of a container to its limit, naming the field', () => {
    ok(c({ env: [`K=${'v'.repeat(L.ARG_MAX_BYTES - 2)}`], args: ['a'.repeat(L.ARG_MAX_BYTES)] }));
    refuses(c({ env: ['A=1', 'B=2', 'C=3', `K=${'v'.repeat(L.ARG_MAX_BYTES - 1)}`] }), 'spec.container.env[3]', new RegExp(`longer than ${L.ARG_MAX_BYTES} bytes`));
    refuses(c({ env: [`K=${'é'.repeat(L.ARG_MAX_BYTES / 2)}`] }), 'spec.container.env[0]', /longer than/); // bytes, not characters
    refuses(c({ command: ['sh', 'a'.repeat(L.ARG_MAX_BYTES + 1)] }), 'spec.container.command[1]');
    refuses(c({ args: ['a\0b'] }), 'spec.container.args[0]', /NUL/);
    refuses(c({ dir: `/${'d'.repeat(L.PATH_MAX_BYTES)}` }), 'spec.container.dir');
    refuses(c({ user: 'u'.repeat(L.USER_MAX_BYTES + 1) }), 'spec.container.user');
    refuses(c({ stopSignal: `SIG${'A'.repeat(40)}` }), 'spec.container.stopSignal');
    refuses(c({ hostname: 'h'.repeat(64) }), 'spec.container.hostname');
    refuses({ container: { image: `reg.local/${'a'.repeat(L.IMAGE_MAX_BYTES)}` } as never }, 'spec.container.image', /longer than 1024 bytes/);
  });

  it('holds every list to its count', () => {
    refuses(c({ env: Array.from({ length: L.ENV_MAX + 1 }, (_, i) => `K${i}=1`) }), 'spec.container.env', /at most 1024 entries/);
    refuses(c({ args: Array.from({ length: L.ARGV_MAX + 1 }, () => 'a') }), 'spec.container.args');
    refuses(c({ mounts: Array.from({ length: L.MOUNTS_MAX + 1 }, (_, i) => ({ type: 'TMPFS', source: '', target: `/t${i}`, readOnly: false, tmpfsSizeBytes: 0 })) }), 'spec.container.mounts');
    refuses(pl({ constraints: Array.from({ length: L.CONSTRAINTS_MAX + 1 }, () => 'node.role==worker') }), 'spec.placement.constraints');
    refuses(pl({ preferences: Array.from({ length: L.PREFERENCES_MAX + 1 }, () => 'node.labels.zone') }), 'spec.placement.preferences');
    refuses(pl({ platforms: Array.from({ length: L.PLATFORMS_MAX + 1 }, () => ({ os: 'linux', arch: '' })) }), 'spec.placement.platforms');
    refuses({ networks: Array.from({ length: L.NETWORKS_MAX + 1 }, (_, i) => `n${i}`) }, 'spec.networks');
    refuses({ endpoint: { mode: 'VIP', ports: Array.from({ length: L.PORTS_MAX + 1 }, (_, i) => ({ name: '', protocol: 'tcp', targetPort: 80, publishedPort: 20000 + i, publishMode: 'INGRESS' as const })) } }, 'spec.endpoint.ports');
    refuses(c({ healthcheck: { test: ['CMD', ...Array.from({ length: L.ARGV_MAX }, () => 'a')], intervalMs: 0, timeoutMs: 0, retries: 0, startPeriodMs: 0 } }), 'spec.container.healthcheck.test');
  });

  it('takes a maximal constraint and refuses a longer one before parsing it', () => {
    const maximal = `node.labels.${'k'.repeat(L.LABEL_KEY_MAX_BYTES)} == ${'v'.repeat(L.LABEL_VALUE_MAX_BYTES)}`;
    assert.ok(maximal.length <= L.CONSTRAINT_MAX_BYTES);
    ok(pl({ constraints: [maximal] }));
    refuses(pl({ constraints: [`node.id==a${' '.repeat(120_000)}b`] }), 'spec.placement.constraints[0]', /longer than 8192 bytes/);
    refuses(pl({ constraints: ['='.repeat(L.CONSTRAINT_MAX_BYTES)] }), 'spec.placement.constraints[0]', /not of the form/);
  });

  it('keeps durations within what Node timers can wait (2^31-1 ms) and counts within uint32', () => {
    const hc = (o: object) => c({ healthcheck: { test: ['CMD', 'true'], intervalMs: 1000, timeoutMs: 1000, retries: 3, startPeriodMs: 0, ...o } });
    ok(hc({ intervalMs: L.DURATION_MAX_MS }));
    refuses(hc({ intervalMs: L.DURATION_MAX_MS + 1 }), 'spec.container.healthcheck.intervalMs', /milliseconds from 0 to 2147483647/);
    refuses(hc({ timeoutMs: Infinity }), 'spec.container.healthcheck.timeoutMs');
    refuses(hc({ retries: -1 }), 'spec.container.healthcheck.retries');
    refuses(c({ stopGracePeriodMs: 1.5 }), 'spec.container.stopGracePeriodMs');
    refuses({ restart: { condition: 'RESTART_ANY', delayMs: 2 ** 40, maxAttempts: 0, windowMs: 0 } }, 'spec.restart.delayMs');
    refuses({ update: { parallelism: 2 ** 32, delayMs: 0, failureAction: 'FAILURE_PAUSE', monitorMs: 0, maxFailureRatio: 0, order: 'STOP_FIRST' } }, 'spec.update.parallelism');
    refuses(pl({ maxReplicasPerNode: NaN }), 'spec.placement.maxReplicasPerNode');
  });

  it('refuses wrong types by field instead of throwing', () => {
    const raw = (o: object) => validateServiceSpec({ name: 'web', container: { image: 'x:1' }, ...o } as unknown as ServiceSpec, ctx);
    const fieldsOf = (o: object) => fields(raw(o));
    assert.deepEqual(fieldsOf({ container: { image: 'x:1', env: 'A=1' } }), ['spec.container.env']);
    assert.deepEqual(fieldsOf({ container: { image: 'x:1', env: ['A=1', 7] } }), ['spec.container.env[1]']);
    assert.deepEqual(fieldsOf({ container: [] }), ['spec.container']);
    assert.deepEqual(fieldsOf({ labels: { a: { nested: 'x' } } }), ['spec.labels["a"]']);
    assert.deepEqual(fieldsOf({ replicas: '3' }), ['spec.replicas']);
    assert.deepEqual(fieldsOf({ mode: 'SIDEWAYS' }), ['spec.mode']);
    assert.deepEqual(fieldsOf({ endpoint: { ports: [null] } }), ['spec.endpoint.ports[0]']);
    assert.deepEqual(fields(validateServiceSpec([] as unknown as ServiceSpec, ctx)), ['spec']);
    assert.deepEqual(fields(validateServiceSpec('web' as unknown as ServiceSpec, ctx)), ['spec']);
  });

  it('refuses a "__proto__" label and pollutes nothing', () => {
    const labels = JSON.parse('{"__proto__": {"polluted": "yes"}, "ok": "1"}') as Record<string, string>;
    assert.deepEqual(fields(validateServiceSpec(base({ labels }), ctx)), ['spec.labels["__proto__"]']);
    refuses({ labels: JSON.parse('{"__proto__": "x"}') as Record<string, string> }, 'spec.labels["__proto__"]', /reserved/);
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
  });

  it('bounds the size of the whole spec with bounded work, cycles and depth included', () => {
    refuses({ labels: Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`k${i}`, 'v'.repeat(4000)])) }, 'spec', /larger than 128 KiB/);
    const cyclic: Record<string, unknown> = { name: 'web', container: { image: 'x:1' } };
    cyclic.self = cyclic;
    assert.deepEqual(fields(validateServiceSpec(cyclic as unknown as ServiceSpec, ctx)), ['spec']);
    let deep: unknown = 'x';
    for (let i = 0; i < 100_000; i++) deep = [deep];
    assert.deepEqual(fields(validateServiceSpec(base({ extra: deep } as never), ctx)), ['spec']);
    const sparse: string[] = [];
    sparse.length = 2 ** 31;
    assert.deepEqual(fields(validateServiceSpec(base(c({ env: sparse })), ctx)), ['spec']);
  });

  it('quotes user text in messages cut short and escaped', () => {
    const r = validateServiceSpec(base({ container: { image: 'x:1', env: [`\u001b[2J${'x'.repeat(5000)}`] } as never }), ctx);
    assert.ok(!r.ok);
    const m = r.errors[0].message;
    assert.ok(m.length < 200, m);
    assert.ok(!m.includes('\u001b'), 'no raw escape character');
    assert.match(m, /\(5004 characters\)/);
  });

  it('returns a fresh spec that validates again as itself, also after JSON', () => {
    const input = base({ labels: { a: 'b' }, container: { image: 'x:1', env: ['A=1'], mounts: [{ type: 'TMPFS', source: '', target: '/t', readOnly: false, tmpfsSizeBytes: 0, junk: 'dropped' } as never] } as never });
    const r = validateServiceSpec(input, ctx);
    assert.ok(r.ok);
    assert.notEqual(r.spec.labels, input.labels);
    assert.notEqual(r.spec.container!.env, input.container!.env);
    assert.equal((r.spec.container!.mounts[0] as unknown as Record<string, unknown>).junk, undefined, 'unknown fields are not stored');
    for (const again of [r.spec, JSON.parse(JSON.stringify(r.spec)) as ServiceSpec]) {
      const r2 = validateServiceSpec(again, ctx);
      assert.ok(r2.ok);
      assert.deepEqual(r2.spec, r.spec);
    }
  });
});
