// What the rest of the manager needs of the cluster CA: sign a CSR for an
// identity it names (the subject comes from the caller, never from the CSR),
// revoke an identity, and tell whether a presented certificate is revoked.
// manager/ca/ implements it; users, join and renewal call it.
import type { Identity, Role } from '../../common/identity';

export interface IssuedCert {
  /** PEM of the new certificate. */
  cert: string;
  /** PEM of the cluster root CA, the bundle's ca.pem. */
  ca: string;
  /** Hex, upper case. */
  serial: string;
  /** ms since the epoch. */
  notAfter: number;
}

export interface CertIssuer {
  /** Signs `csrPem` (its signature checked) as O=<cluster>, OU=role, CN=id. */
  issue(csrPem: string, who: { id: string; role: Role }, ttlMs?: number): Promise<IssuedCert>;
  /** Revokes every certificate that names `id`, now and from then on. */
  revoke(id: string): Promise<void>;
  /** Whether this verified identity's certificate has been revoked. */
  isRevoked(who: Identity): boolean;
}
