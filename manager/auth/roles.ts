// Who may call what: the role table of the Control API (docs/security.md).
// Every RPC of proto/control.proto has exactly one row (roles.test.ts reads
// the service definition and fails on a missing or stale row); an RPC with
// no row is refused to everyone (authorize.ts), so a new RPC is closed until
// someone decides who may call it.
//
//   read     admin, operator, viewer   looking, never changing; no join tokens, no secret values
//   operate  admin, operator           services, networks, tasks, scale/update/rollback, exec, use of secrets/configs
//   admin    admin                     nodes, cluster, join tokens, users, the CA
//
// Node roles (manager, worker) call the Dispatcher, never the Control API; a
// manager may only forward a call on behalf of the user who made it.
import type { Role, UserRole } from '../../common/identity';

export type Access = 'read' | 'operate' | 'admin';

export const ACCESS_ROLES: Readonly<Record<Access, readonly UserRole[]>> = {
  read: ['admin', 'operator', 'viewer'],
  operate: ['admin', 'operator'],
  admin: ['admin'],
};

export interface RpcRule {
  access: Access;
  /** Whether each call leaves an audit record (every mutating call, every exec, every handing out of credentials). */
  audit: boolean;
  /** The kind of object the call is about, for the audit record's target. */
  kind: 'service' | 'task' | 'node' | 'network' | 'cluster' | 'user' | 'secret' | 'config';
}

const read = (kind: RpcRule['kind']): RpcRule => ({ access: 'read', audit: false, kind });
const operate = (kind: RpcRule['kind']): RpcRule => ({ access: 'operate', audit: true, kind });
const admin = (kind: RpcRule['kind'], audit = true): RpcRule => ({ access: 'admin', audit, kind });

/** One row per Control RPC, by its name in proto/control.proto. */
export const CONTROL_RULES: Readonly<Record<string, RpcRule>> = Object.freeze({
  CreateService: operate('service'),
  GetService: read('service'),
  ListServices: read('service'),
  UpdateService: operate('service'),
  ScaleService: operate('service'),
  RollbackService: operate('service'),
  RemoveService: operate('service'),

  ListTasks: read('task'),
  GetTask: read('task'),
  // The exec itself runs through the task's agent; this is where it is allowed and recorded.
  StartExec: operate('task'),

  ListNodes: read('node'),
  GetNode: read('node'),
  UpdateNode: admin('node'),
  RemoveNode: admin('node'),

  CreateNetwork: operate('network'),
  GetNetwork: read('network'),
  ListNetworks: read('network'),
  RemoveNetwork: operate('network'),

  GetClusterInfo: read('cluster'),
  GetVersion: read('cluster'),
  // Not a change, but it hands out the credentials to join: audited.
  GetJoinTokens: admin('cluster'),
  RotateJoinToken: admin('cluster'),
  UpdateCluster: admin('cluster'),

  CreateUser: admin('user'),
  ListUsers: admin('user', false),
  RemoveUser: admin('user'),

  // Secrets: metadata is readable by every role; the value never comes back
  // to anyone. Operators deploy with them (a stack brings its own), so they
  // create, rotate and remove them.
  CreateSecret: operate('secret'),
  GetSecret: read('secret'),
  ListSecrets: read('secret'),
  RemoveSecret: operate('secret'),
  RotateSecret: operate('secret'),
  // Configs are not secret (GetConfig returns the value, as Docker's inspect does).
  CreateConfig: operate('config'),
  GetConfig: read('config'),
  ListConfigs: read('config'),
  RemoveConfig: operate('config'),
  RotateConfig: operate('config'),
  // Registry credentials are a secret too, used by services --with-registry-auth.
  RegistryLogin: operate('secret'),
});

/**
 * What travels outside the Control API, by the same table: NATS subjects
 * (events and logs; NATS permissions per identity are set from this), and
 * the agent's exec socket (root on the node only, after StartExec).
 */
export const STREAM_ACCESS: Readonly<Record<'events' | 'logs', Access>> = Object.freeze({ events: 'read', logs: 'read' });

/** Whether `role` may call `rpc`. False for node roles, unknown roles and RPCs without a row. */
export function mayCall(role: Role | string, rpc: string): boolean {
  const rule = Object.prototype.hasOwnProperty.call(CONTROL_RULES, rpc) ? CONTROL_RULES[rpc] : undefined;
  return !!rule && (ACCESS_ROLES[rule.access] as readonly string[]).includes(role);
}

/** The rule of `rpc`, if it has one. */
export function ruleOf(rpc: string): RpcRule | undefined {
  return Object.prototype.hasOwnProperty.call(CONTROL_RULES, rpc) ? CONTROL_RULES[rpc] : undefined;
}
