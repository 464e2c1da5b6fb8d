// Public surface of manager/auth/: who is calling (identity.ts), what each
// role may call (roles.ts), the authorize wrapper (authorize.ts), the audit
// trail (audit.ts) and the root-only unix socket (local-socket.ts); and
// `secureControl`, the one call manager.ts makes to put them in front of the
// Control API.
import * as path from 'node:path';
import type * as grpc from '@grpc/grpc-js';
import type { Identity } from '../../common/identity';
import type { Logger } from '../../common/logger';
import type { CertIssuer } from '../ca/issuer';
import type { ManagerObserver } from '../hooks';
import { AUDIT_LOG_FILE, AuditLog, teeAudit } from './audit';
import { authorize } from './authorize';
import { LOCAL_SOCKET_FILE, socketPathFits, startLocalSocket, type LocalSocket } from './local-socket';

export { AUDIT_LOG_FILE, AuditLog, teeAudit, type AuditSink } from './audit';
export { authorize, auditTarget, callerOf, FORWARDED_FOR, forwardedMetadata, type Caller } from './authorize';
export { identityOf, LOCAL_SOCKET } from './identity';
export { LOCAL_SOCKET_FILE, startLocalSocket, type LocalSocket } from './local-socket';
export { ACCESS_ROLES, CONTROL_RULES, mayCall, STREAM_ACCESS, type Access, type RpcRule } from './roles';

/**
 * Who a call with no certificate is on a plaintext TCP listener. Only
 * until the manager's listener is mutual TLS (issue 11): with client
 * certificates required no such call arrives. Audited as via "plaintext".
 */
export const PLAINTEXT_ANONYMOUS: Identity = Object.freeze({ id: 'anonymous', role: 'admin', cluster: '' }) as Identity;

export interface SecureControlOptions<H extends object> {
  dataDir: string;
  managerId: string;
  service: grpc.ServiceDefinition;
  handlers: H;
  observer: Pick<ManagerObserver, 'event'>;
  issuer?: CertIssuer;
  /** Unix socket path; default <dataDir>/convoy.sock; '' = none. */
  socket?: string;
  /** The TCP listener is plaintext: calls without a certificate are PLAINTEXT_ANONYMOUS. */
  plaintext?: boolean;
  log: Logger;
}

export interface SecuredControl<H> {
  /** What the TCP listener serves. */
  handlers: H;
  socket?: LocalSocket;
  auditFile: string;
  close(): Promise<void>;
}

/** The authorized Control handlers, the audit trail, and the unix socket serving them. */
export async function secureControl<H extends object>(o: SecureControlOptions<H>): Promise<SecuredControl<H>> {
  const auditFile = path.join(o.dataDir, AUDIT_LOG_FILE);
  const file = new AuditLog(auditFile, { logger: o.log.child({ component: 'audit' }) });
  const handlers = authorize(o.service, o.handlers, {
    audit: teeAudit(file, { record: (r) => o.observer.event(r) }),
    source: `manager/${o.managerId}`,
    issuer: o.issuer,
    anonymous: o.plaintext ? PLAINTEXT_ANONYMOUS : undefined,
    log: o.log.child({ component: 'authorize' }),
  });
  let socket: LocalSocket | undefined;
  const socketPath = o.socket ?? path.join(o.dataDir, LOCAL_SOCKET_FILE);
  try {
    if (o.socket === undefined && !socketPathFits(socketPath))
      // The default place only: a data dir too deep for a socket path does not stop the manager.
      o.log.warn('no local socket: the data dir path is too long for one (give --socket PATH)', { path: socketPath });
    else if (o.socket !== '') socket = await startLocalSocket({ path: socketPath, privateDir: o.socket === undefined, service: o.service, handlers, logger: o.log });
  } catch (e) {
    file.close();
    throw e;
  }
  return {
    handlers,
    socket,
    auditFile,
    async close() {
      await socket?.close();
      file.close();
    },
  };
}
