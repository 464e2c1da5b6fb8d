// The cluster CA's gRPC services (proto/ca.proto): NodeCA on the join
// listener (GetRootCA, Join with a token), CertRenewal on the mutual-TLS
// listener (a node renews its own certificate).
import * as crypto from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { identityOf } from '../auth/identity';
import type { Logger } from '../../common/logger';
import { parseJoinToken, tokenSecretHash } from '../../common/join-token';
import type { CertRenewalHandlers, Cluster, NodeCAHandlers } from '../../proto/mod';
import { ApiError, unaryWith } from '../api';
import { newId } from '../ids';
import type { StateCache } from '../state/cache';
import { CaError, type ClusterCa } from './ca';
import type { KeyRing } from '../crypto/kek';

export interface CaServiceDeps {
  ca: ClusterCa;
  cache: StateCache;
  /** The KEK, handed to a joining manager that asks (manager tokens only; docs/security.md). */
  kek: KeyRing;
  log: Logger;
}

const refusedToken = () => new ApiError(grpc.status.PERMISSION_DENIED, 'invalid join token (wrong, or rotated since): get the current one with `convoy cluster join-token worker`');

function sameHash(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && x.length > 0 && crypto.timingSafeEqual(x, y);
}

const asInvalid = (e: unknown) => (e instanceof CaError ? new ApiError(grpc.status.INVALID_ARGUMENT, e.message) : e);

export function nodeCaHandlers(d: CaServiceDeps): NodeCAHandlers {
  const unary = unaryWith(() => undefined, d.log);
  return {
    GetRootCA: unary('GetRootCA', async () => ({ caCert: d.ca.caPem })),
    Join: unary('Join', async (req: { token: string; csr: string; wantKek: boolean }) => {
      let parsed;
      try {
        parsed = parseJoinToken(req.token ?? '');
      } catch {
        throw refusedToken();
      }
      if (parsed.caDigest !== d.ca.fingerprint) throw new ApiError(grpc.status.PERMISSION_DENIED, 'invalid join token: it pins another CA than this cluster’s');
      const c: Cluster | undefined = d.cache.cluster;
      const h = tokenSecretHash(req.token);
      const role = c && sameHash(h, c.workerTokenHash) ? 'worker' : c && sameHash(h, c.managerTokenHash) ? 'manager' : undefined;
      if (!role) throw refusedToken();
      const nodeId = newId();
      const issued = await d.ca.issue(req.csr ?? '', { id: nodeId, role }).catch((e: unknown) => {
        throw asInvalid(e);
      });
      d.log.info('node joined: certificate issued', { 'node.id': nodeId, role, serial: issued.serial });
      return { nodeId, role, cert: issued.cert, caCert: issued.ca, notAfter: issued.notAfter, kek: role === 'manager' && req.wantKek ? d.kek.text() : '' };
    }),
  };
}

export function certRenewalHandlers(d: CaServiceDeps): CertRenewalHandlers {
  const unary = unaryWith(() => undefined, d.log);
  return {
    Renew: unary('Renew', async (req: { csr: string }, _md, call) => {
      // The identity gate already refused revoked and expired certificates.
      const who = identityOf(call as Parameters<typeof identityOf>[0]);
      if (!who) throw new ApiError(grpc.status.UNAUTHENTICATED, 'no certificate identity');
      const issued = await d.ca.issue(req.csr ?? '', { id: who.id, role: who.role }).catch((e: unknown) => {
        throw asInvalid(e);
      });
      d.log.info('certificate renewed', { id: who.id, role: who.role, serial: issued.serial });
      return { nodeId: who.id, role: who.role, cert: issued.cert, caCert: issued.ca, notAfter: issued.notAfter, kek: '' };
    }),
  };
}
