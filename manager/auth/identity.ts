// The identity behind a gRPC call: from the peer's verified certificate on
// the TLS listener, LOCAL_ROOT on the root-only unix socket. Never from the
// request. Handlers call `identityOf(call)`; a call with no identity is
// refused before it reaches them.
//
// Parsing a certificate (crypto.X509Certificate) costs ~0.2 ms of CPU, and
// every call asks twice (the identity gate, then the handler): at a burst's
// thousands of status reports and heartbeats a second that was most of the
// manager's TLS cost. The identity a certificate names depends only on its
// bytes, so it is kept by the DER itself (the key is the whole certificate,
// not a digest of it: nothing to collide). Expiry and revocation are still
// checked on every call by the callers (notAfter travels in the identity).
import * as tls from 'node:tls';
import type * as grpc from '@grpc/grpc-js';
import { identityFromCert, LOCAL_ROOT, type Identity } from '../../common/identity';

/** Calls arriving on the unix-socket server carry this marker (set by that server's wrapper). */
export const LOCAL_SOCKET = Symbol('convoy.local-socket');

type AnyCall = { getAuthContext?: () => { sslPeerCertificate?: { raw?: Buffer } }; metadata?: unknown } & { [LOCAL_SOCKET]?: boolean };

/** Certificates remembered at most (a cluster's nodes and users; the oldest goes first past it). */
export const IDENTITY_CACHE_MAX = 16_384;
/** DER (latin1 string of the bytes) → the identity it names, or null for a certificate that names none. */
const byCert = new Map<string, Identity | null>();

/** The identity a verified peer certificate names, parsed once per certificate. */
export function identityOfCert(raw: Buffer): Identity | undefined {
  const k = raw.toString('latin1');
  const hit = byCert.get(k);
  if (hit !== undefined) return hit ?? undefined;
  const who = identityFromCert(raw);
  if (byCert.size >= IDENTITY_CACHE_MAX) byCert.delete(byCert.keys().next().value as string);
  byCert.set(k, who ? Object.freeze(who) : null);
  return who;
}

/** Certificates in the cache now (tests). */
export function identityCacheSize(): number {
  return byCert.size;
}

/**
 * Identities the identity gate (manager/ca/tls.ts) found, by the request
 * metadata object grpc-js made for that one call and hands on to its
 * handler: the handler's identityOf does not ask TLS again (getPeerCertificate
 * builds a fresh object with three digests on every call: 8% of the
 * manager's thread in a TLS burst). Weak: it goes with the call.
 */
const byCallMetadata = new WeakMap<object, Identity>();

/** The identity gate found `who` behind the call whose request metadata is `md`. */
export function rememberCallIdentity(md: object, who: Identity): void {
  byCallMetadata.set(md, who);
}

/** The caller's identity, or undefined when it presented no Convoy certificate. */
export function identityOf(call: Pick<grpc.ServerUnaryCall<unknown, unknown>, 'getAuthContext'> | AnyCall): Identity | undefined {
  const c = call as AnyCall;
  if (c[LOCAL_SOCKET]) return LOCAL_ROOT;
  const known = typeof c.metadata === 'object' && c.metadata ? byCallMetadata.get(c.metadata) : undefined;
  if (known) return known;
  const raw = c.getAuthContext?.().sslPeerCertificate?.raw;
  return raw ? identityOfCert(raw) : undefined;
}

const PEER_CACHED = Symbol.for('convoy.peer-certificate-cache');
type PatchedProto = typeof tls.TLSSocket.prototype & { [PEER_CACHED]?: true };

/**
 * grpc-js's getAuthContext() asks the socket for its peer's certificate on
 * every call, and node builds a fresh object with three digests each time
 * (~20 µs: 8% of the manager's thread in a burst of status reports and
 * heartbeats, docs/manager.md). On a TLS 1.3 connection the peer's
 * certificate cannot change (TLS 1.3 has no renegotiation), so the first
 * answer is kept for the socket's life (a WeakMap: it goes with the socket).
 * TLS 1.2 sockets, which can renegotiate, and detailed queries go to node
 * every time. Expiry and revocation are still checked on every call (the
 * identity gate). Installed once per process, by the manager's mTLS listener.
 */
export function cachePeerCertificates(): void {
  const proto = tls.TLSSocket.prototype as PatchedProto;
  if (proto[PEER_CACHED]) return;
  const original = proto.getPeerCertificate;
  const kept = new WeakMap<tls.TLSSocket, tls.PeerCertificate>();
  function getPeerCertificate(this: tls.TLSSocket, detailed?: boolean): tls.PeerCertificate | tls.DetailedPeerCertificate {
    if (detailed) return original.call(this, true);
    const hit = kept.get(this);
    if (hit) return hit;
    const cert = original.call(this, false);
    if (cert && cert.raw && this.getProtocol() === 'TLSv1.3') kept.set(this, cert);
    return cert;
  }
  proto.getPeerCertificate = getPeerCertificate as typeof proto.getPeerCertificate;
  proto[PEER_CACHED] = true;
}

