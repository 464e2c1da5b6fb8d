// The rule of a user name, shared by `convoy user create` (checked before
// anything is generated or sent) and the manager (CreateUser).
/** A user name: the certificate's CN, a file-name-safe word. */
export const USER_NAME_RE = /^[a-z0-9][a-z0-9._-]{0,62}$/;
/** Names no user may take (LOCAL_ROOT's id, the plaintext fallback's). */
const RESERVED = new Set(['local-root', 'anonymous']);

/** Why `name` is not a user name, or undefined when it is one. */
export function validateUserName(name: string): string | undefined {
  if (!USER_NAME_RE.test(name)) return `${JSON.stringify(name)} is not a user name (lower-case letters, digits, '.', '_', '-'; at most 63; starting with a letter or digit)`;
  if (RESERVED.has(name)) return `"${name}" is reserved`;
  return undefined;
}
