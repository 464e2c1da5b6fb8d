// Join tokens, Swarm's SWMTKN-1 idea:
//
//   CVYTKN-1-<sha256 of the cluster root CA certificate, 64 hex>-<secret, 32 hex>
//
// The digest lets a joining node check the manager's certificate chain
// before it sends anything (it pins the CA); the secret proves it may join.
// A worker and a manager token differ in their secret; etcd keeps only a
// hash of each secret. A token is needed once per node, to get its
// certificate: rotating one never touches a node that has joined.
import * as crypto from 'node:crypto';

export const TOKEN_PREFIX = 'CVYTKN-1';
const TOKEN_RE = /^CVYTKN-1-([0-9a-f]{64})-([0-9a-f]{32})$/;

export interface ParsedToken {
  caDigest: string;
  secret: string;
}

export function makeJoinToken(caDigest: string): string {
  if (!/^[0-9a-f]{64}$/.test(caDigest)) throw new Error('CA digest: not a sha256 hex digest');
  return `${TOKEN_PREFIX}-${caDigest}-${crypto.randomBytes(16).toString('hex')}`;
}

/** The token's parts; throws one line naming what is wrong. */
export function parseJoinToken(token: string): ParsedToken {
  const m = TOKEN_RE.exec(token.trim());
  if (!m) throw new Error(`join token: not a Convoy join token (want ${TOKEN_PREFIX}-<64 hex CA digest>-<32 hex secret>; get one with \`convoy cluster join-token worker\`)`);
  return { caDigest: m[1], secret: m[2] };
}

/** What etcd keeps of a token: the hash of its secret. */
export function tokenSecretHash(token: string): string {
  return crypto.createHash('sha256').update(parseJoinToken(token).secret).digest('hex');
}
