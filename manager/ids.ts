// Object ids: 25 hex characters (random), as short as Docker's task ids in tables.
import { randomBytes } from 'node:crypto';

/** The 12 characters tables show, and a task's default hostname (agent/runtime/hostname.ts). */
const SHOWN = 12;
/** All digits: glibc takes such a hostname for a numeric address and never reads /etc/hosts (as moby#3869). */
const ALL_DIGITS = new RegExp(`^[0-9]{${SHOWN}}`);

export function newId(): string {
  for (;;) {
    const id = randomBytes(13).toString('hex').slice(0, 25);
    if (!ALL_DIGITS.test(id)) return id;
  }
}
