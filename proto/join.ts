// A node's side of the cluster CA (proto/ca.proto): joining with a token
// that pins the CA, and renewing its certificate. Agents and joining
// managers both call these.
//
//   const r = await joinCluster({ joinAddr: 'm1:7423', token });  // r.bundle: ca, cert, key
//
// Join: (1) GetRootCA over TLS that verifies nothing yet; (2) the CA's sha256
// must equal the token's digest, else stop (wrong cluster, or someone in the
// middle) before anything secret is sent; (3) a new connection that verifies
// the manager's chain against that CA and its address against the
// certificate; (4) Join with the token and a CSR for a key made here.
import * as grpc from '@grpc/grpc-js';
import { certDigest, createKeyAndCsr } from '../common/csr';
import { parseJoinToken } from '../common/join-token';
import type { TlsBundle } from '../common/identity';
import { certRenewalClient, nodeCaClient, type ClientSecurity } from './client';

/** Deadline of each call of the join exchange. */
export const JOIN_DEADLINE_MS = 10_000;

/** The join failed for a reason retrying will not fix (wrong token, CA mismatch). */
export class JoinError extends Error {
  override name = 'JoinError';
  constructor(
    message: string,
    readonly fatal: boolean,
    override readonly cause?: unknown,
  ) {
    super(message);
  }
}

export interface JoinResult {
  nodeId: string;
  role: string;
  bundle: TlsBundle;
  notAfter: number;
  /** The key-encryption keys (one base64 key per line, the current one first), for a manager token that asked for them. */
  kek?: string;
}

type Unary<Req, Res> = (req: Req, md: grpc.Metadata, opts: grpc.CallOptions, cb: (e: grpc.ServiceError | null, r?: Res) => void) => unknown;

function call<Req, Res>(client: grpc.Client, fn: Unary<Req, Res>, req: Req, deadlineMs: number): Promise<Res> {
  return new Promise((resolve, reject) => fn.call(client, req, new grpc.Metadata(), { deadline: Date.now() + deadlineMs }, (e, r) => (e ? reject(e) : resolve(r as Res))));
}

const isRefusal = (e: unknown) => {
  const code = (e as { code?: number }).code;
  return code === grpc.status.PERMISSION_DENIED || code === grpc.status.UNAUTHENTICATED || code === grpc.status.INVALID_ARGUMENT;
};

export async function joinCluster(o: { joinAddr: string; token: string; wantKek?: boolean; deadlineMs?: number }): Promise<JoinResult> {
  let pinned: string;
  try {
    pinned = parseJoinToken(o.token).caDigest;
  } catch (e) {
    throw new JoinError(`join refused: ${(e as Error).message}`, true);
  }
  const deadline = o.deadlineMs ?? JOIN_DEADLINE_MS;
  // (1) the CA, unverified.
  const open = nodeCaClient(o.joinAddr, { mode: 'join' });
  let ca: string;
  try {
    ca = (await call(open, open.GetRootCA as unknown as Unary<object, { caCert: string }>, {}, deadline)).caCert;
  } catch (e) {
    throw new JoinError(`cannot reach the join listener at ${o.joinAddr}: ${(e as grpc.ServiceError).details ?? (e as Error).message}`, false, e);
  } finally {
    open.close();
  }
  // (2) pinned by the token.
  let digest = '';
  try {
    digest = certDigest(ca);
  } catch {
    /* not a certificate: mismatch below */
  }
  if (digest !== pinned) throw new JoinError(`join refused: the manager at ${o.joinAddr} presents a CA (sha256 ${digest.slice(0, 12) || 'none'}…) that is not the one the join token pins (${pinned.slice(0, 12)}…): wrong cluster, or someone in the middle`, true);
  // (3) + (4) verified against it, then the secret.
  const { keyPem, csrPem } = await createKeyAndCsr();
  const security: ClientSecurity = { mode: 'join', ca };
  const c = nodeCaClient(o.joinAddr, security);
  try {
    const r = await call(c, c.Join as unknown as Unary<object, { nodeId: string; role: string; cert: string; caCert: string; notAfter: number; kek: string }>, { token: o.token, csr: csrPem, wantKek: !!o.wantKek }, deadline);
    return { nodeId: r.nodeId, role: r.role, bundle: { ca, cert: r.cert, key: keyPem }, notAfter: Number(r.notAfter), kek: r.kek || undefined };
  } catch (e) {
    if (isRefusal(e)) throw new JoinError(`join refused: ${(e as grpc.ServiceError).details || 'invalid join token'}`, true, e);
    throw new JoinError(`join failed at ${o.joinAddr}: ${(e as grpc.ServiceError).details ?? (e as Error).message}`, false, e);
  } finally {
    c.close();
  }
}

/** A new certificate for the caller's own identity, for a new key, over its current mutual-TLS credentials. */
export async function renewCertificate(addr: string, current: TlsBundle, deadlineMs = JOIN_DEADLINE_MS): Promise<{ bundle: TlsBundle; notAfter: number }> {
  const { keyPem, csrPem } = await createKeyAndCsr();
  const c = certRenewalClient(addr, { mode: 'mtls', ...current });
  try {
    const r = await call(c, c.Renew as unknown as Unary<object, { cert: string; caCert: string; notAfter: number }>, { csr: csrPem }, deadlineMs);
    return { bundle: { ca: r.caCert || current.ca, cert: r.cert, key: keyPem }, notAfter: Number(r.notAfter) };
  } finally {
    c.close();
  }
}

/**
 * When to renew a certificate valid from notBefore to notAfter: a random
 * point between 50% and 80% of its lifetime (so a fleet joined together
 * does not renew together). ms since the epoch.
 */
export function renewalTime(notBefore: number, notAfter: number, random = Math.random): number {
  const life = Math.max(0, notAfter - notBefore);
  return notBefore + life * (0.5 + 0.3 * random());
}

/** Longest delay setTimeout takes (2^31-1 ms, ~24.8 days); longer ones fire at once. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** Runs `fn` at `at` (ms since the epoch), however far ahead; unref'd. Returns the cancel. */
export function runAt(at: number, fn: () => void): () => void {
  let t: NodeJS.Timeout | undefined;
  let cancelled = false;
  const arm = () => {
    if (cancelled) return;
    const wait = at - Date.now();
    if (wait <= 0) return fn();
    t = setTimeout(wait > MAX_TIMER_MS ? arm : fn, Math.min(wait, MAX_TIMER_MS));
    t.unref();
  };
  arm();
  return () => {
    cancelled = true;
    if (t) clearTimeout(t);
  };
}
