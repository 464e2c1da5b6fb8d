// Spec validation: each refusal names its field; defaults are Docker's.
import { strict as assert } from 'node:assert';
import type { ServiceSpec } from '../../proto/mod';
import { GiB, node, service } from '../orchestrator/testing/fixtures';
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
    const pl = (constraints: string[], preferences: string[] = []) => ({ placement: { constraints, preferences, maxReplicasPerNode: 0, platforms: [] } });
    refuses(pl(['node.labels.zone == east', 'node.colour == red']), 'spec.placement.constraints[1]', /unknown constraint key/);
    refuses(pl(['node.role > manager']), 'spec.placement.constraints[0]', /only == and !=/);
    refuses(pl([], ['zone']), 'spec.placement.preferences[0]');
    assert.ok(validateServiceSpec(base(pl(['engine.labels.disk==ssd', 'node.platform.arch!=arm64'], ['spread=node.labels.zone'])), ctx).ok);
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

  it('refuses bad autoscale policies and update ratios', () => {
    const a = (o: object) => ({ autoscale: { enabled: true, minReplicas: 1, maxReplicas: 5, targetCpuPercent: 70, targetMemoryPercent: 0, scaleDownStabilizationMs: 0, ...o }, resources: { reservations: { nanoCpus: 1e8, memoryBytes: 0, pids: 0 }, limits: null } });
    refuses(a({ minReplicas: 6 }), 'spec.autoscale.minReplicas', /greater than maxReplicas/);
    refuses(a({ targetCpuPercent: 1001 }), 'spec.autoscale.targetCpuPercent');
    refuses(a({ targetCpuPercent: 0 }), 'spec.autoscale');
    assert.ok(validateServiceSpec(base(a({})), ctx).ok);
    refuses({ update: { parallelism: 1, delayMs: 0, failureAction: 'FAILURE_PAUSE', monitorMs: 0, maxFailureRatio: 1.5, order: 'STOP_FIRST' } }, 'spec.update.maxFailureRatio');
  });
});
