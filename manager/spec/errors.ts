// How validation reports: one FieldError per refusal, naming the field
// ("spec.container.env[3]") and saying why, so a client sees all of them at
// once. User-given text only appears quoted and cut.
import { QUOTE_MAX_CHARS } from './limits';

export interface FieldError {
  field: string;
  message: string;
}

/** Map keys in a field path ("spec.labels[\"team\"]") are cut to this many characters. */
export const KEY_IN_PATH_MAX_CHARS = 32;

/**
 * A user-given string in a message: JSON-quoted (no control character or
 * newline gets through) and cut at `max` characters of quoted text, saying
 * how long it was. Cut after escaping: a lone surrogate or a control
 * character quotes to six characters, so cutting the input first let a
 * message grow to six times the bound (found by fuzz:spec).
 */
export function quote(s: string, max: number = QUOTE_MAX_CHARS): string {
  let body = '';
  let used = 0;
  for (const ch of s) {
    const q = JSON.stringify(ch).slice(1, -1);
    if (body.length + q.length > max) break;
    body += q;
    used += ch.length;
  }
  return used < s.length ? `"${body}"… (${s.length} characters)` : `"${body}"`;
}

/** A map key as it appears in a field path: JSON-quoted, cut. */
export function keyPath(field: string, key: string): string {
  return `${field}[${JSON.stringify(key.slice(0, KEY_IN_PATH_MAX_CHARS))}]`;
}
