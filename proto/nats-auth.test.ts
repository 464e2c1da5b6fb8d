import { strict as assert } from 'node:assert';
import { natsPermissions, natsUserName, natsUsers } from './nats-auth';
import { eventMatchesOrigin, eventSubject, originToken, type ConvoyEvent } from './events';

describe('NATS permissions (proto/nats-auth)', () => {
  it('names a user by the RFC 2253 form of its certificate subject', () => {
    assert.equal(natsUserName({ id: 'n1', role: 'worker', cluster: 'c1' }), 'CN=n1,OU=worker,O=c1');
  });

  it('a worker publishes only its own node subjects and reads only its own log requests', () => {
    const p = natsPermissions({ id: 'n1', role: 'worker' })!;
    assert.deepEqual(p.publish.allow, ['convoy.stats.n1', 'convoy.events.task.state.n1', '_INBOX.convoy.logs.>']);
    assert.deepEqual(p.subscribe.allow, ['convoy.logs.n1', '_INBOX.convoy.logs.*.keepalive']);
  });

  it('users read events and logs (ask for logs) and write no events or stats', () => {
    for (const role of ['admin', 'operator', 'viewer'] as const) {
      const p = natsPermissions({ id: 'alice', role })!;
      assert.ok(p.publish.allow.includes('convoy.logs.*'), role);
      assert.ok(!p.publish.allow.some((s) => s.startsWith('convoy.events') || s.startsWith('convoy.stats')), role);
      assert.deepEqual(p.subscribe.allow, ['_INBOX.>', 'convoy.events.>'], role);
    }
  });

  it("a manager certificate's subject with a worker's rights (`as`): named by the certificate, permitted by the placement role", () => {
    const [u] = natsUsers([{ id: 'n1', role: 'manager', cluster: 'c1', as: 'worker' }]);
    assert.equal(u.user, 'CN=n1,OU=manager,O=c1');
    assert.deepEqual(u.permissions, natsPermissions({ id: 'n1', role: 'worker' }));
    assert.ok(!u.permissions.subscribe.allow.includes('convoy.stats.*'), 'no manager rights');
    const [m] = natsUsers([{ id: 'n1', role: 'manager', cluster: 'c1', as: 'manager' }]);
    assert.ok(m.permissions.subscribe.allow.includes('convoy.stats.*'));
  });

  it('gives no permissions (so no user) to ids that could widen a subject or break the config', () => {
    for (const bad of ['n1.>', '*', 'a b', 'n1,OU=manager', '', 'x"y']) {
      assert.equal(natsPermissions({ id: bad, role: 'worker' }), undefined, bad);
    }
    assert.equal(natsPermissions({ id: 'bob,OU=admin', role: 'viewer' }), undefined);
    assert.deepEqual(
      natsUsers([
        { id: 'n1', role: 'worker', cluster: 'c1' },
        { id: 'n1', role: 'worker', cluster: 'c1' },
        { id: 'n2.*', role: 'worker', cluster: 'c1' },
        { id: 'n3', role: 'worker', cluster: 'c1,O=x' },
      ]).map((u) => u.user),
      ['CN=n1,OU=worker,O=c1'],
    );
  });

  it('event subjects carry their origin, and a reader drops an event whose source is not that origin', () => {
    assert.equal(eventSubject({ type: 'task', action: 'state' }, 'n1'), 'convoy.events.task.state.n1');
    assert.equal(originToken('m.1 *'), 'm_1__');
    const task = (nodeId: string, source: string) => ({ type: 'task', action: 'state', nodeId, source, time: 0, taskId: 't', serviceId: 's', serviceName: 'web', slot: 1, state: 'RUNNING' }) as ConvoyEvent;
    assert.ok(eventMatchesOrigin('convoy.events.task.state.n1', task('n1', 'agent/n1')));
    assert.ok(!eventMatchesOrigin('convoy.events.task.state.n1', task('n2', 'agent/n1')), 'a task of another node');
    assert.ok(!eventMatchesOrigin('convoy.events.task.state.n1', task('n2', 'agent/n2')), 'claims another agent');
    assert.ok(!eventMatchesOrigin('convoy.events.task.state.n1', task('n2', 'manager/m1')), 'claims a manager');
    assert.ok(eventMatchesOrigin('convoy.events.task.state.m1', task('n2', 'manager/m1')));
    assert.ok(eventMatchesOrigin('convoy.events.task.state', task('n2', 'agent/n2')), 'older 4-token subjects');
    assert.ok(!eventMatchesOrigin('convoy.events.service.created.n1', task('n1', 'agent/n1')), 'type and action must be the subject’s');
    const svc = { type: 'service', action: 'created', source: 'manager/m1', time: 0, serviceId: 's', serviceName: 'web' } as ConvoyEvent;
    assert.ok(eventMatchesOrigin('convoy.events.service.created.m1', svc), 'manager-only subjects');
  });
});
