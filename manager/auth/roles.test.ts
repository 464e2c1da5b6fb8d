// The role table against the Control service as proto/control.proto defines
// it: every RPC has a row (a new RPC without one fails here, and is refused
// to everyone at run time), no row names an RPC that is gone, and the
// promises of docs/security.md hold for each role.
import { strict as assert } from 'node:assert';
import { grpcPackages } from '../../proto/mod';
import { NODE_ROLES, USER_ROLES } from '../../common/identity';
import { CONTROL_RULES, mayCall } from './roles';

const rpcs = Object.keys(grpcPackages().control.convoy.Control.service);

describe('role table', () => {
  it('has one row for every Control RPC of control.proto, and none for an RPC that is not there', () => {
    assert.ok(rpcs.length >= 24, `the service definition was read (${rpcs.length} RPCs)`);
    const missing = rpcs.filter((r) => !(r in CONTROL_RULES));
    assert.deepEqual(missing, [], `RPCs with no row in manager/auth/roles.ts CONTROL_RULES: ${missing.join(', ')}`);
    assert.deepEqual(Object.keys(CONTROL_RULES).filter((r) => !rpcs.includes(r)), [], 'rows for RPCs control.proto does not have');
  });

  it('lets admin call everything', () => {
    for (const r of rpcs) assert.ok(mayCall('admin', r), r);
  });

  it('lets no node role call any Control RPC', () => {
    for (const role of NODE_ROLES) for (const r of rpcs) assert.ok(!mayCall(role, r), `${role} ${r}`);
  });

  it('gives operator services, networks, tasks, scale, update, rollback and exec, but no nodes, cluster changes, tokens or users', () => {
    for (const r of ['CreateService', 'UpdateService', 'ScaleService', 'RollbackService', 'RemoveService', 'CreateNetwork', 'RemoveNetwork', 'StartExec', 'ListTasks', 'GetTask', 'ListNodes', 'GetClusterInfo'])
      assert.ok(mayCall('operator', r), r);
    for (const r of ['UpdateNode', 'RemoveNode', 'GetJoinTokens', 'RotateJoinToken', 'CreateUser', 'ListUsers', 'RemoveUser']) assert.ok(!mayCall('operator', r), r);
  });

  it('gives viewer reads only: no change, no exec, no join tokens, no users', () => {
    for (const r of rpcs) {
      const readOnly = /^(Get|List)/.test(r) && !['GetJoinTokens', 'ListUsers'].includes(r);
      assert.equal(mayCall('viewer', r), readOnly, r);
    }
  });

  it('audits every RPC that changes something, and exec', () => {
    for (const r of rpcs) if (!/^(Get|List)/.test(r)) assert.ok(CONTROL_RULES[r].audit, r);
    assert.ok(CONTROL_RULES.StartExec.audit && CONTROL_RULES.GetJoinTokens.audit);
  });

  it('refuses an RPC with no row, and unknown roles', () => {
    for (const role of USER_ROLES) assert.ok(!mayCall(role, 'DropEverything'));
    assert.ok(!mayCall('root', 'ListServices'));
    assert.ok(!mayCall('admin', 'toString'), 'no prototype keys');
  });
});
