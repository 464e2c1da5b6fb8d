// Credentials tests use against a real manager: the admin bundle it wrote
// into its data dir (docs/security.md).
import { readBundle } from '../../common/identity';
import { mtls, type ClientSecurity } from '../../proto/client';

export function adminSecurity(m: { adminDir: string }): ClientSecurity {
  return mtls(readBundle(m.adminDir));
}
