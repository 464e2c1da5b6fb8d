// Control API: users, the operators' identities (docs/security.md). The
// client generates its key and a CSR; the manager signs it through the
// cluster CA (CertIssuer) as O=<cluster>, OU=<role>, CN=<name>, and keeps
// only the user's name, role and certificate serial under /convoy/users/.
// Removing a user revokes every certificate naming it. Admin only (the role
// table, manager/auth/roles.ts).
import * as grpc from '@grpc/grpc-js';
import { isUserRole, USER_ROLES, type UserRole } from '../../common/identity';
import type { ControlHandlers, User } from '../../proto/mod';
import { USER_NAME_RE, validateUserName } from '../../proto/users';
import { checkCsr } from '../../common/csr';
import { ApiError, invalid } from '../api';
import { callerOf } from '../auth/authorize';
import { ConflictError } from '../store/store';
import type { Ctx } from './common';

type Handlers = Pick<ControlHandlers, 'CreateUser' | 'ListUsers' | 'RemoveUser'>;

export { USER_NAME_RE, validateUserName };

export function userHandlers(c: Ctx): Handlers {
  const { store, cache, unary } = c;
  const noCa = () => new ApiError(grpc.status.FAILED_PRECONDITION, 'this manager has no cluster CA to sign or revoke user certificates');

  return {
    CreateUser: unary('CreateUser', async (req: { name: string; role: string; csr: string }, _md, call) => {
      const errors: { field: string; message: string }[] = [];
      const bad = validateUserName(req.name ?? '');
      if (bad) errors.push({ field: 'name', message: bad });
      // A node's id in a user's certificate would let revoking one revoke the other.
      else if (cache.nodes.has(req.name) || cache.managers.has(req.name)) errors.push({ field: 'name', message: `"${req.name}" is a node's id` });
      if (!isUserRole(req.role ?? '')) errors.push({ field: 'role', message: `${JSON.stringify(req.role ?? '')} is not one of ${USER_ROLES.join(', ')}` });
      if (!/-----BEGIN CERTIFICATE REQUEST-----[\s\S]+-----END CERTIFICATE REQUEST-----/.test(req.csr ?? '')) errors.push({ field: 'csr', message: 'not a PEM certificate signing request' });
      if (errors.length) throw invalid(errors);
      const badCsr = await checkCsr(req.csr);
      if (badCsr) throw invalid([{ field: 'csr', message: badCsr }]);
      const issuer = c.issuer;
      if (!issuer) throw noCa();
      const by = callerOf(call)?.identity;
      const now = Date.now();
      const draft: User = { id: req.name, meta: null, name: req.name, role: req.role, serial: '', notAfter: 0, createdAt: now, createdBy: by ? `${by.id} (${by.role})` : '' };
      // The name first (a second create of it loses here, before anything is signed).
      try {
        await store.put('users', draft, true);
      } catch (e) {
        if (e instanceof ConflictError) throw new ApiError(grpc.status.ALREADY_EXISTS, `name: user "${req.name}" already exists`);
        throw e;
      }
      let issued;
      try {
        issued = await issuer.issue(req.csr, { id: req.name, role: req.role as UserRole });
      } catch (e) {
        const cur = await store.get<User>('users', req.name).catch(() => undefined);
        if (cur) await store.batch([{ op: 'delete', kind: 'users', obj: cur }]).catch(() => undefined);
        if (e instanceof ApiError) throw e;
        // The CSR was checked above: this is the CA's own failure.
        throw new ApiError(grpc.status.FAILED_PRECONDITION, `the cluster CA did not sign: ${e instanceof Error ? e.message : String(e)}`);
      }
      const user = await store.update<User>('users', req.name, (cur) => cur && { ...cur, serial: issued.serial, notAfter: issued.notAfter });
      if (user?.meta) c.reads.wrote(user.meta.version);
      return { user: user ?? { ...draft, serial: issued.serial, notAfter: issued.notAfter }, cert: issued.cert, ca: issued.ca };
    }),
    ListUsers: unary('ListUsers', async () => {
      const { items } = await store.list<User>('users');
      return { users: items.sort((a, b) => a.name.localeCompare(b.name)) };
    }),
    RemoveUser: unary('RemoveUser', async (req: { name: string }) => {
      const bad = validateUserName(req.name ?? '');
      if (bad) throw invalid([{ field: 'name', message: bad }]);
      const cur = await store.get<User>('users', req.name);
      if (!cur) throw new ApiError(grpc.status.NOT_FOUND, `user "${req.name}" not found`);
      // Revoked before it is forgotten: a removed user's certificate never stays good.
      if (!c.issuer) throw noCa();
      await c.issuer.revoke(req.name);
      const r = await store.batch([{ op: 'delete', kind: 'users', obj: cur }]);
      if (r.conflicts.length || !r.committed) throw new ApiError(grpc.status.ABORTED, `user "${req.name}" changed meanwhile (its certificate is revoked); retry`);
      c.reads.wrote(r.revision);
      return {};
    }),
  };
}
