// The NATS permissions (proto/nats-auth.ts) follow the roles table's stream
// access (STREAM_ACCESS): who may read logs and events on NATS is who may read.
import { strict as assert } from 'node:assert';
import { USER_ROLES } from '../../common/identity';
import { natsPermissions } from '../../proto/nats-auth';
import { ACCESS_ROLES, STREAM_ACCESS } from './roles';

describe('roles table and NATS permissions agree', () => {
  it('a user role reads events and logs on NATS exactly when STREAM_ACCESS lets it', () => {
    for (const role of USER_ROLES) {
      const p = natsPermissions({ id: 'u1', role })!;
      const logs = ACCESS_ROLES[STREAM_ACCESS.logs].includes(role);
      const events = ACCESS_ROLES[STREAM_ACCESS.events].includes(role);
      assert.equal(p.publish.allow.includes('convoy.logs.*') && !p.subscribe.deny?.length, logs, `${role} logs`);
      assert.equal(p.subscribe.allow.includes('convoy.events.>'), events, `${role} events`);
    }
  });
});
