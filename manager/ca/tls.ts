// The manager's TLS (docs/security.md): server credentials whose certificate
// can be swapped while the server runs (renewal), and the gate every call on
// the mutual-TLS listener passes.
//
// grpc-js lets ServerCredentials push a new secure context to the servers
// bound with them (`updateSecureContextOptions` → http2 `setSecureContext`):
// new connections get the new certificate, open ones keep theirs. That is
// how a renewed manager certificate goes live with no listener restart.
//
// Where each refusal happens:
// - no client certificate, one from another CA, an expired one: at the TLS
//   handshake (requestCert + rejectUnauthorized against the cluster CA), so
//   such a client never reaches a handler;
// - a revoked identity, or a certificate that expired on a connection opened
//   while it was valid: at every call, UNAUTHENTICATED, by `identityGate`
//   (the revocation list is by identity, mirrored in every manager's cache).
import type * as tls from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import type { Identity, TlsBundle } from '../../common/identity';
import { cachePeerCertificates, identityOf, rememberCallIdentity } from '../auth/identity';

export class SwappableServerCredentials extends grpc.ServerCredentials {
  constructor(
    ctx: tls.SecureContextOptions,
    requireClientCert: boolean,
    private readonly interceptors: grpc.ServerInterceptor[] = [],
  ) {
    super({ requestCert: requireClientCert, rejectUnauthorized: requireClientCert }, ctx);
  }
  /** Servers bound with these credentials use `ctx` for every connection from now on. */
  swap(ctx: tls.SecureContextOptions): void {
    this.updateSecureContextOptions(ctx);
  }
  override _equals(other: grpc.ServerCredentials): boolean {
    return other === this;
  }
  override _getInterceptors(): grpc.ServerInterceptor[] {
    return this.interceptors;
  }
}

/** The mutual-TLS listener's context: our certificate, client certificates verified against the CA. */
export function mtlsContext(b: TlsBundle): tls.SecureContextOptions {
  return { ca: b.ca, cert: b.cert, key: b.key, minVersion: 'TLSv1.2' };
}

/** The join listener's context: our certificate with the CA in the chain (the joiner pins the CA from it). */
export function joinContext(b: TlsBundle): tls.SecureContextOptions {
  return { cert: `${b.cert.trimEnd()}\n${b.ca.trimEnd()}\n`, key: b.key, minVersion: 'TLSv1.2' };
}

/** Why a verified identity is refused now, or undefined. */
export function refusal(who: Identity | undefined, o: { cluster: () => string; isRevoked: (who: Identity) => boolean; now?: () => number }): string | undefined {
  if (!who) return 'the client certificate names no Convoy identity';
  const cluster = o.cluster();
  if (cluster && who.cluster !== cluster) return `certificate of another cluster (${who.cluster})`;
  if (who.notAfter !== undefined && who.notAfter < (o.now ?? Date.now)()) return `certificate of ${who.role} ${who.id} expired`;
  if (o.isRevoked(who)) return `certificate of ${who.role} ${who.id} revoked`;
  return undefined;
}

/** Refuses, before any handler, every call whose certificate identity is revoked, expired or not ours. */
export function identityGate(o: { cluster: () => string; isRevoked: (who: Identity) => boolean }): grpc.ServerInterceptor {
  // One peer-certificate object per TLS 1.3 connection, not one per call (manager/auth/identity.ts).
  cachePeerCertificates();
  return (_method, call) =>
    new grpc.ServerInterceptingCall(call, {
      start: (next) =>
        next({
          onReceiveMetadata: (md, mdNext) => {
            const who = identityOf(call);
            const why = refusal(who, o);
            // Refused: the call ends here, no handler sees it.
            if (why) call.sendStatus({ code: grpc.status.UNAUTHENTICATED, details: why, metadata: new grpc.Metadata() });
            else {
              // The handler's call carries this same metadata object: its identityOf finds who here.
              rememberCallIdentity(md, who!);
              mdNext(md);
            }
          },
        }),
    });
}
