import { strict as assert } from 'node:assert';
import type { ConvoyEvent } from '../../proto/events';
import { formatEvent, matches, parseFilters, subjectFor } from './mod';
import { parseSince } from './nats';
import { autoscalePolicy, describePolicy } from '../service/autoscale';
import { parseTail } from './logs';

const task: ConvoyEvent = { type: 'task', action: 'state', time: 0, source: 'agent/n1', taskId: 'abcdef123456', serviceId: 'svc1', serviceName: 'web', slot: 2, nodeId: 'n1', state: 'RUNNING' };
const scaled: ConvoyEvent = { type: 'service', action: 'autoscaled', time: 0, source: 'manager/m0', serviceId: 'svc1', serviceName: 'web', from: 3, to: 5, message: 'cpu 142% of target over 3 tasks: 3 → 5' };
const node: ConvoyEvent = { type: 'node', action: 'down', time: 0, source: 'manager/m0', nodeId: 'n1', hostname: 'host-a' };

describe('convoy events', () => {
  it('filters by type, service (name or id), node (id or hostname) and task', () => {
    const f = (...l: string[]) => parseFilters(l);
    assert.ok(matches(task, f('service=web')) && matches(scaled, f('service=svc1')));
    assert.ok(!matches(node, f('service=web')), 'node events have no service');
    assert.ok(matches(node, f('node=host-a')) && matches(task, f('node=n1')) && !matches(task, f('node=n2')));
    assert.ok(matches(task, f('type=task')) && !matches(scaled, f('type=task')));
    assert.ok(matches(scaled, f('type=task', 'type=service')), 'values of one key are alternatives');
    assert.ok(!matches(scaled, f('type=service', 'service=api')), 'keys all apply');
    assert.ok(matches(task, f('task=abcdef')));
    assert.equal(subjectFor(f('type=task')), 'convoy.events.task.>');
    assert.equal(subjectFor(f('type=service', 'action=autoscaled')), 'convoy.events.service.autoscaled.>');
    assert.equal(subjectFor(f('service=web')), 'convoy.events.>');
  });

  it('refuses unknown filters with a one-line error naming them', () => {
    assert.throws(() => parseFilters(['colour=red']), /--filter: "colour=red" is not one of type=VALUE/);
    assert.throws(() => parseFilters(['type=pod']), /type "pod" is not one of node, service, task, manager, cluster, audit/);
    assert.throws(() => parseFilters(['service=']), /--filter/);
  });

  it('shows audit records with --filter type=audit, one line naming who, what, on what and the result', () => {
    const audit: ConvoyEvent = {
      type: 'audit',
      action: 'ScaleService',
      time: 0,
      source: 'manager/m1',
      who: { id: 'olga', role: 'operator', serial: 'AB12', via: 'tls' },
      target: { kind: 'service', id: 'svc1', name: 'web' },
      result: { ok: true },
    };
    const denied: ConvoyEvent = { ...audit, action: 'StartExec', who: { id: 'victor', role: 'viewer', via: 'forwarded', forwardedBy: 'm2' }, target: { kind: 'task', id: 't1', name: 'web.1' }, result: { ok: false, code: 'PERMISSION_DENIED', message: 'role viewer ("victor") may not call StartExec' } };
    const f = parseFilters(['type=audit']);
    assert.ok(matches(audit, f) && matches(denied, f) && !matches(task, f));
    assert.equal(subjectFor(f), 'convoy.events.audit.>');
    assert.equal(formatEvent(audit), '1970-01-01T00:00:00.000Z audit ScaleService olga (operator) service web (svc1): ok [manager/m1]');
    assert.equal(formatEvent(denied), '1970-01-01T00:00:00.000Z audit StartExec victor (viewer, via m2) task web.1 (t1): PERMISSION_DENIED role viewer ("victor") may not call StartExec [manager/m1]');
  });

  it('prints one readable line per event', () => {
    assert.equal(formatEvent(scaled), '1970-01-01T00:00:00.000Z service autoscaled web 3 → 5: cpu 142% of target over 3 tasks: 3 → 5 [manager/m0]');
    assert.equal(formatEvent(task), '1970-01-01T00:00:00.000Z task state web.2 abcdef123456 RUNNING on n1 [agent/n1]');
  });

  it('reads --since as a duration ago, an RFC 3339 time or epoch seconds', () => {
    assert.equal(parseSince('10m', 1_000_000), 400_000);
    assert.equal(parseSince('1h30m', 10_000_000), 4_600_000);
    assert.equal(parseSince('2026-01-01T00:00:00Z', 0), Date.parse('2026-01-01T00:00:00Z'));
    assert.equal(parseSince('1700000000', 0), 1_700_000_000_000);
    assert.throws(() => parseSince('yesterday', 0), /--since: "yesterday" is not a duration/);
  });

  it('reads --tail', () => {
    assert.equal(parseTail('all'), undefined);
    assert.equal(parseTail('20'), 20);
    assert.throws(() => parseTail('-3'), /--tail: "-3"/);
  });
});

describe('convoy service autoscale flags', () => {
  it('turns autoscaling on from min, max and a target', () => {
    const p = autoscalePolicy(null, { min: '2', max: '20', cpu: '70' });
    assert.deepEqual(p, { enabled: true, minReplicas: 2, maxReplicas: 20, targetCpuPercent: 70, targetMemoryPercent: 0, scaleDownStabilizationMs: 0 });
    assert.equal(describePolicy(p), '2..20 replicas, target cpu 70%');
  });

  it('changes only the flags given on an enabled policy, and --off keeps the rest', () => {
    const on = autoscalePolicy(null, { min: '2', max: '20', cpu: '70', scaleDownDelay: '30s' });
    const more = autoscalePolicy(on, { max: '30', memory: '80' });
    assert.deepEqual([more.minReplicas, more.maxReplicas, more.targetCpuPercent, more.targetMemoryPercent, more.scaleDownStabilizationMs], [2, 30, 70, 80, 30_000]);
    const off = autoscalePolicy(more, { off: true });
    assert.equal(off.enabled, false);
    assert.equal(off.maxReplicas, 30);
  });

  it('refuses incomplete or contradictory flags', () => {
    assert.throws(() => autoscalePolicy(null, { cpu: '70' }), /--min and --max are required/);
    assert.throws(() => autoscalePolicy(null, { min: '1', max: '3' }), /--cpu or --memory/);
    assert.throws(() => autoscalePolicy(null, { min: '5', max: '3', cpu: '50' }), /--min 5 is greater than --max 3/);
    assert.throws(() => autoscalePolicy(null, { off: true, min: '1' }), /--off takes no other/);
    assert.throws(() => autoscalePolicy(null, { min: 'two', max: '3', cpu: '50' }), /--min/);
  });
});
