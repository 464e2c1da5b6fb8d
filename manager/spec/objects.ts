// Validation of the other things clients and agents send a manager: network
// specs (CreateNetwork), node specs (UpdateNode, the labels a joining agent
// proposes), node descriptions (an agent's Session) and task statuses (an
// agent's UpdateTaskStatus). Same style as validate.ts: each refusal names its
// field; each check is linear and bounded (limits.ts, docs/limits.md).
//
// Refuse or cut? Specs and descriptions are refused: labels feed placement
// constraints, and a label silently cut would match the wrong nodes. A task
// status is cut instead: it carries a state change that must not be lost for
// the sake of an over-long message, and its text is only ever shown.
import type { NetworkSpec, NodeDescription, NodeSpec, TaskStateName, TaskStatus } from '../../proto/mod';
import { isIPv4 } from 'node:net';
import { TaskState } from '../../proto/mod';
import { quote, type FieldError } from './errors';
import * as L from './limits';
import { jsonSizeAtMost, NODE_AVAILABILITIES, NODE_ROLES, Shape } from './shape';
import { boundedList, boundedString, checkLabels, NAME_RE } from './validate';
import { checkFileName, type FileKind } from './files';

export type Checked<T> = { ok: true; spec: T } | { ok: false; errors: FieldError[] };

const tooBig = (field: string): FieldError => ({ field, message: `larger than ${L.SPEC_MAX_BYTES / 1024} KiB as JSON` });

/** A network spec as CreateNetwork takes it: the name is a DNS label (it is resolvable), labels as a service's. */
export function validateNetworkSpec(input: unknown): Checked<NetworkSpec> {
  if (input === null || input === undefined) return { ok: false, errors: [{ field: 'spec', message: 'missing' }] };
  if (jsonSizeAtMost(input, L.SPEC_MAX_BYTES) > L.SPEC_MAX_BYTES) return { ok: false, errors: [tooBig('spec')] };
  const r = new Shape();
  const m = r.message('spec', input) ?? {};
  const spec: NetworkSpec = { name: r.string('spec.name', m.name), subnet: r.string('spec.subnet', m.subnet), labels: r.stringMap('spec.labels', m.labels), internal: r.bool('spec.internal', m.internal) };
  if (r.errors.length) return { ok: false, errors: r.errors };
  const errs: FieldError[] = [];
  if (!spec.name) errs.push({ field: 'spec.name', message: 'must not be empty' });
  else if (!NAME_RE.test(spec.name)) errs.push({ field: 'spec.name', message: `${quote(spec.name)} is not a valid DNS label (lowercase letters, digits, '-' and '_' inside, at most ${L.NETWORK_NAME_MAX_CHARS} characters)` });
  boundedString('spec.subnet', spec.subnet, L.SUBNET_MAX_BYTES, errs);
  checkLabels('spec.labels', spec.labels, errs);
  return errs.length ? { ok: false, errors: errs } : { ok: true, spec };
}

/**
 * A node spec as UpdateNode would store it (call it on the merged spec), or
 * the labels a joining agent proposes ({ labels }). Role and availability
 * are the enum's names.
 */
export function validateNodeSpec(input: unknown): Checked<NodeSpec> {
  if (input === null || input === undefined) return { ok: false, errors: [{ field: 'spec', message: 'missing' }] };
  if (jsonSizeAtMost(input, L.SPEC_MAX_BYTES) > L.SPEC_MAX_BYTES) return { ok: false, errors: [tooBig('spec')] };
  const r = new Shape();
  const m = r.message('spec', input) ?? {};
  const spec: NodeSpec = {
    role: r.enumOf('spec.role', m.role, NODE_ROLES),
    availability: r.enumOf('spec.availability', m.availability, NODE_AVAILABILITIES),
    labels: r.stringMap('spec.labels', m.labels),
  };
  if (r.errors.length) return { ok: false, errors: r.errors };
  const errs: FieldError[] = [];
  checkLabels('spec.labels', spec.labels, errs);
  return errs.length ? { ok: false, errors: errs } : { ok: true, spec };
}

/** C0 and C1 control characters but tab and newline: terminal escapes in `convoy node ls` / `service ps`. */
const CONTROL_RE = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/;
const CONTROLS_RE = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g;

/**
 * What an agent says about its host at Session: refused when out of bounds
 * (the Dispatcher answers INVALID_ARGUMENT and the agent's log says why). Its
 * engine labels are matched by constraints, hence the same limits as labels.
 */
export function validateNodeDescription(input: unknown): Checked<NodeDescription> {
  if (input === null || input === undefined) return { ok: false, errors: [{ field: 'description', message: 'missing' }] };
  if (jsonSizeAtMost(input, L.SPEC_MAX_BYTES) > L.SPEC_MAX_BYTES) return { ok: false, errors: [tooBig('description')] };
  const r = new Shape();
  const m = r.message('description', input) ?? {};
  const p = r.message('description.platform', m.platform);
  const res = r.message('description.resources', m.resources);
  const desc: NodeDescription = {
    hostname: r.string('description.hostname', m.hostname),
    platform: p && { os: r.string('description.platform.os', p.os), arch: r.string('description.platform.arch', p.arch) },
    resources: res && {
      nanoCpus: r.number('description.resources.nanoCpus', res.nanoCpus),
      memoryBytes: r.number('description.resources.memoryBytes', res.memoryBytes),
      pids: r.number('description.resources.pids', res.pids),
    },
    engineLabels: r.stringMap('description.engineLabels', m.engineLabels),
    listeningTcp: r.list('description.listeningTcp', m.listeningTcp) as number[],
    listeningUdp: r.list('description.listeningUdp', m.listeningUdp) as number[],
    addresses: r.strings('description.addresses', m.addresses),
  };
  if (r.errors.length) return { ok: false, errors: r.errors };
  const errs: FieldError[] = [];
  if (boundedString('description.hostname', desc.hostname, L.HOSTNAME_MAX_BYTES, errs) && (CONTROL_RE.test(desc.hostname) || /\s/.test(desc.hostname)))
    errs.push({ field: 'description.hostname', message: `${quote(desc.hostname)} holds blanks or control characters` });
  if (desc.platform) {
    boundedString('description.platform.os', desc.platform.os, L.PLATFORM_FIELD_MAX_BYTES, errs);
    boundedString('description.platform.arch', desc.platform.arch, L.PLATFORM_FIELD_MAX_BYTES, errs);
  }
  if (desc.resources)
    for (const k of ['nanoCpus', 'memoryBytes', 'pids'] as const) {
      const v = desc.resources[k];
      if (!Number.isSafeInteger(v) || v < 0) errs.push({ field: `description.resources.${k}`, message: `must be an integer from 0 to ${Number.MAX_SAFE_INTEGER} (got ${String(v)})` });
    }
  checkLabels('description.engineLabels', desc.engineLabels, errs);
  if (boundedList('description.addresses', desc.addresses, L.NODE_ADDRESSES_MAX, errs)) {
    const bad = desc.addresses.findIndex((a) => !isIPv4(a));
    if (bad >= 0) errs.push({ field: `description.addresses[${bad}]`, message: `${quote(desc.addresses[bad])} is not an IPv4 address` });
  }
  for (const k of ['listeningTcp', 'listeningUdp'] as const) {
    const f = `description.${k}`;
    if (boundedList(f, desc[k], L.LISTENING_PORTS_MAX, errs)) {
      const bad = desc[k].findIndex((p) => !Number.isInteger(p) || p < 1 || p > 65535);
      if (bad >= 0) errs.push({ field: `${f}[${bad}]`, message: `must be a port 1..65535 (got ${quote(String(desc[k][bad]))})` });
    }
  }
  return errs.length ? { ok: false, errors: errs } : { ok: true, spec: desc };
}

const TASK_STATES = Object.keys(TaskState) as TaskStateName[];
/** The health values an agent reports (agent/runtime/health.ts), and '' for none reported. */
export const HEALTH_VALUES = ['', 'none', 'starting', 'healthy', 'unhealthy'] as const;
const INT32 = { min: -(2 ** 31), max: 2 ** 31 - 1 };

/** Cuts a string to at most `max` UTF-8 bytes on a character boundary, saying so. */
export function cutText(s: string, max: number): string {
  if (s.length <= max / 3 || Buffer.byteLength(s, 'utf8') <= max) return s;
  const note = (n: number) => `… [cut: ${n} bytes]`;
  const total = Buffer.byteLength(s, 'utf8');
  const room = max - Buffer.byteLength(note(total), 'utf8');
  // Walk forwards by code point, counting bytes; linear, and never splits a surrogate pair.
  let bytes = 0;
  let i = 0;
  while (i < s.length) {
    const c = s.codePointAt(i)!;
    const b = c < 0x80 ? 1 : c < 0x800 ? 2 : c < 0x10000 ? 3 : 4;
    if (bytes + b > room) break;
    bytes += b;
    i += c >= 0x10000 ? 2 : 1;
  }
  return s.slice(0, i) + note(total);
}

/**
 * A task status from an agent, made safe to store and show: message and err
 * cut to STATUS_MESSAGE_MAX_BYTES (with a note saying how long they were),
 * control characters but tab and newline replaced by U+FFFD, an unknown
 * health dropped, numbers out of their proto range zeroed. `cut` names each
 * field changed (for one warning log line). Refused only when there is no
 * status or its state is not a task state: there is nothing to apply then.
 */
export function boundTaskStatus(input: unknown): { ok: true; status: TaskStatus; cut: string[] } | { ok: false; errors: FieldError[] } {
  const r = new Shape();
  const m = r.message('status', input);
  if (!m) return { ok: false, errors: [{ field: 'status', message: r.errors[0]?.message ?? 'missing' }] };
  if (typeof m.state !== 'string' || !(TASK_STATES as string[]).includes(m.state))
    return { ok: false, errors: [{ field: 'status.state', message: `${typeof m.state === 'string' ? quote(m.state) : String(typeof m.state)} is not a task state` }] };
  const cut: string[] = [];
  const text = (field: 'message' | 'err'): string => {
    const raw = typeof m[field] === 'string' ? (m[field] as string) : '';
    if (m[field] !== undefined && m[field] !== null && typeof m[field] !== 'string') cut.push(`status.${field}`);
    // Replaced first: U+FFFD is 3 bytes where a control character was 1.
    const v = cutText(CONTROL_RE.test(raw) ? raw.replace(CONTROLS_RE, '\ufffd') : raw, L.STATUS_MESSAGE_MAX_BYTES);
    if (v !== raw && !cut.includes(`status.${field}`)) cut.push(`status.${field}`);
    return v;
  };
  const int = (field: 'timestamp' | 'exitCode' | 'pid', min: number, max: number): number => {
    const v = m[field];
    if (v === undefined || v === null) return 0;
    if (typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max) return v;
    cut.push(`status.${field}`);
    return 0;
  };
  const health = typeof m.health === 'string' && (HEALTH_VALUES as readonly string[]).includes(m.health) ? m.health : '';
  if (health !== (m.health ?? '')) cut.push('status.health');
  const status: TaskStatus = {
    state: m.state as TaskStateName,
    timestamp: int('timestamp', 0, Number.MAX_SAFE_INTEGER),
    message: text('message'),
    err: text('err'),
    exitCode: int('exitCode', INT32.min, INT32.max),
    pid: int('pid', INT32.min, INT32.max),
    health,
  };
  return { ok: true, status, cut };
}

export interface FileSpec {
  name: string;
  labels: Record<string, string>;
}

/** The spec of a secret or config (name, labels). */
export function validateFileSpec(kind: FileKind, input: unknown): { ok: true; spec: FileSpec } | { ok: false; errors: FieldError[] } {
  if (input === null || input === undefined) return { ok: false, errors: [{ field: 'spec', message: 'missing' }] };
  const r = new Shape();
  const m = r.message('spec', input) ?? {};
  const spec: FileSpec = { name: r.string('spec.name', m.name), labels: r.stringMap('spec.labels', m.labels) };
  if (r.errors.length) return { ok: false, errors: r.errors };
  const errs: FieldError[] = [];
  checkFileName('spec.name', kind, spec.name, errs);
  checkLabels('spec.labels', spec.labels, errs);
  return errs.length ? { ok: false, errors: errs } : { ok: true, spec };
}

