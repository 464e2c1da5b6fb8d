// Secrets and configs: their names and labels, their values' size, and the
// references a container spec makes to them (`--secret source=NAME,
// target=...,uid=,gid=,mode=`). Every refusal names the field. Whether a
// referenced secret exists is the Control API's check (it needs the cluster).
import * as path from 'node:path';
import type { FileReference } from '../../proto/mod';
import { quote, type FieldError } from './errors';
import * as L from './limits';

export type FileKind = 'secret' | 'config';

/** Docker's rule for secret and config names. */
export const FILE_NAME_RE = /^[a-zA-Z0-9](?:[a-zA-Z0-9_.-]{0,63})$/;
/** Where a secret is mounted when the reference names no target (a relative target is taken under it). */
export const SECRETS_DIR = '/run/secrets';
/** Mode of a mounted secret or config when the reference gives none (as Docker). */
export const DEFAULT_FILE_MODE = 0o444;
/** Trees the runtime mounts itself: a secret or config cannot go there. */
const RESERVED_TARGETS = ['/proc', '/sys', '/dev'];

export function checkFileName(field: string, kind: FileKind, name: string, errs: FieldError[]): boolean {
  if (!name) {
    errs.push({ field, message: `a ${kind} name must not be empty` });
    return false;
  }
  if (name.length > L.FILE_NAME_MAX_CHARS || !FILE_NAME_RE.test(name)) {
    errs.push({ field, message: `${quote(name)} is not a valid ${kind} name (letters, digits, '_', '.', '-', starting with a letter or digit, at most ${L.FILE_NAME_MAX_CHARS} characters)` });
    return false;
  }
  return true;
}

/** A value's size: present and at most FILE_VALUE_MAX_BYTES. */
export function checkFileValue(kind: FileKind, data: Buffer | Uint8Array | null | undefined): FieldError | undefined {
  if (!data || data.length === 0) return { field: 'data', message: `the ${kind} value is empty` };
  if (data.length > L.FILE_VALUE_MAX_BYTES) return { field: 'data', message: `the ${kind} value is ${data.length} bytes; at most ${L.FILE_VALUE_MAX_BYTES / 1024} KiB` };
  return undefined;
}

/** The default target of a reference: /run/secrets/NAME or /NAME; a relative target is taken under that directory. */
export function fileTarget(kind: FileKind, name: string, target: string): string {
  const dir = kind === 'secret' ? SECRETS_DIR : '/';
  if (!target) return path.posix.join(dir, name);
  return target.startsWith('/') ? target : path.posix.join(dir, target);
}

/**
 * Checks the references of one container spec (`spec.container.secrets` or
 * `.configs`) and returns them with targets and modes filled in. `taken`
 * holds the targets already used (mounts, the other kind's references).
 */
export function checkFileRefs(field: string, kind: FileKind, refs: readonly FileReference[], taken: Set<string>, errs: FieldError[]): FileReference[] {
  if (refs.length > L.FILE_REFS_MAX) {
    errs.push({ field, message: `at most ${L.FILE_REFS_MAX} entries (got ${refs.length})` });
    return [];
  }
  return refs.map((ref, i) => {
    const f = `${field}[${i}]`;
    const named = checkFileName(`${f}.name`, kind, ref.name, errs);
    let target = ref.target;
    const bounded = Buffer.byteLength(target) <= L.FILE_TARGET_MAX_BYTES && !target.includes('\0');
    if (!bounded) errs.push({ field: `${f}.target`, message: `longer than ${L.FILE_TARGET_MAX_BYTES} bytes or has a NUL byte` });
    else if (named) {
      target = fileTarget(kind, ref.name, target);
      const clean = path.posix.normalize(target);
      if (clean !== target || target.endsWith('/') || target.split('/').includes('..')) errs.push({ field: `${f}.target`, message: `${quote(target)} is not a clean absolute path (no '.', '..', '//' or trailing '/')` });
      else if (target === '/') errs.push({ field: `${f}.target`, message: 'cannot mount over /' });
      else if (RESERVED_TARGETS.some((d) => target === d || target.startsWith(`${d}/`))) errs.push({ field: `${f}.target`, message: `${quote(target)} is under ${RESERVED_TARGETS.join(', ')}, which the runtime mounts itself` });
      else if (taken.has(target)) errs.push({ field: `${f}.target`, message: `${quote(target)} is mounted twice` });
      taken.add(target);
    }
    for (const k of ['uid', 'gid'] as const) if (!Number.isInteger(ref[k]) || ref[k] < 0 || ref[k] > L.UINT32_MAX) errs.push({ field: `${f}.${k}`, message: `must be an integer from 0 to ${L.UINT32_MAX}` });
    const mode = ref.mode || DEFAULT_FILE_MODE;
    if (!Number.isInteger(ref.mode) || ref.mode < 0 || ref.mode > 0o777) errs.push({ field: `${f}.mode`, message: `must be permission bits from 0 to 0777 (got ${String(ref.mode)}; setuid, setgid and sticky bits are refused)` });
    return { id: ref.id, name: ref.name, target, uid: ref.uid, gid: ref.gid, mode };
  });
}

/** The registry host of an image reference, as the agent's puller reads it (agent/runtime/image/reference.ts): docker.io unless the first component has a '.' or ':' or is localhost. */
export function imageRegistry(image: string): string {
  const slash = image.indexOf('/');
  if (slash < 0) return 'docker.io';
  const first = image.slice(0, slash);
  return first.includes('.') || first.includes(':') || first === 'localhost' ? first : 'docker.io';
}

/** host[:port] of a registry (`registry login HOST`). */
export const REGISTRY_HOST_RE = /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*(?::[0-9]{1,5})?$/;
export const REGISTRY_USERNAME_MAX_BYTES = 256;
export const REGISTRY_PASSWORD_MAX_BYTES = 8 * 1024;
