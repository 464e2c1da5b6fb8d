// Object ids: 25 hex characters (random), as short as Docker's task ids in tables.
import { randomBytes } from 'node:crypto';

export function newId(): string {
  return randomBytes(13).toString('hex').slice(0, 25);
}
