// Placement constraints ("node.labels.zone == east", "node.role != manager")
// and platforms: the static half of the filter pipeline, also used by the
// global orchestrator (which nodes get a task) and by spec validation.
//
// The parser is one pass over the expression, by hand: a constraint is client
// input that the leader reads again on every tick, so its cost must be linear
// in its length whatever it holds. (The regex it replaces backtracked over
// trailing blanks: 120,000 characters took ~10 s per parse.) Validation bounds
// the length too (manager/spec/limits.ts: CONSTRAINT_MAX_BYTES).
import type { Node, Placement, Platform } from '../../proto/mod';

export interface Constraint {
  key: string;
  op: '==' | '!=';
  value: string;
}

/** Keys a constraint may use, besides node.labels.<x> and engine.labels.<x>. */
export const CONSTRAINT_KEYS = ['node.id', 'node.hostname', 'node.role', 'node.platform.os', 'node.platform.arch'] as const;

export class ConstraintError extends Error {
  override name = 'ConstraintError';
}

/** Counts the characters the parser looks at: lets a test show the work is linear without timing it. */
export interface ParseMeter {
  steps: number;
}

/** How much of a malformed expression an error message quotes. */
const QUOTE_MAX = 80;
const quote = (s: string) => JSON.stringify(s.length > QUOTE_MAX ? `${s.slice(0, QUOTE_MAX)}…` : s) + (s.length > QUOTE_MAX ? ` (${s.length} characters)` : '');

/** JavaScript's \s, which the grammar has always used for blanks. */
function isSpace(c: number): boolean {
  if (c === 0x20 || (c >= 0x09 && c <= 0x0d) || c === 0xa0) return true;
  if (c < 0x1680) return false;
  return c === 0x1680 || (c >= 0x2000 && c <= 0x200a) || c === 0x2028 || c === 0x2029 || c === 0x202f || c === 0x205f || c === 0x3000 || c === 0xfeff;
}
/** Line terminators: a value is one line (the old grammar's `.`). */
const isLineEnd = (c: number) => c === 0x0a || c === 0x0d || c === 0x2028 || c === 0x2029;
const EQ = 0x3d; // =
const BANG = 0x21; // !
const LT = 0x3c; // <
const GT = 0x3e; // >
const TILDE = 0x7e; // ~

/** Operators the grammar recognises (to name them in the error), longest first. */
function operatorAt(s: string, i: number): string | undefined {
  const a = s.charCodeAt(i);
  const b = s.charCodeAt(i + 1);
  if (a === EQ) return b === EQ ? '==' : '=';
  if (a === BANG) return b === EQ ? '!=' : undefined;
  if (a === LT || a === GT) return b === EQ ? s.slice(i, i + 2) : s[i];
  if (a === TILDE && b === EQ) return '~=';
  return undefined;
}

/**
 * Parses "node.labels.zone == east"; throws ConstraintError with the reason
 * when malformed. KEY is everything up to the first blank, '=' or '!'; the
 * value is the rest after the operator without surrounding blanks, on one
 * line. Each loop below moves one index forwards or backwards and no index is
 * visited twice by the same loop, so the work is at most a few times the
 * length; `meter` counts it.
 */
export function parseConstraint(expr: string, meter?: ParseMeter): Constraint {
  const s = String(expr);
  const n = s.length;
  let steps = 0;
  try {
    let i = 0;
    for (; i < n && isSpace(s.charCodeAt(i)); i++) steps++;
    const keyStart = i;
    for (; i < n; i++) {
      steps++;
      const c = s.charCodeAt(i);
      if (isSpace(c) || c === EQ || c === BANG) break;
    }
    const keyEnd = i;
    for (; i < n && isSpace(s.charCodeAt(i)); i++) steps++;
    if (keyEnd === keyStart) throw new ConstraintError(`${quote(s)} is not of the form KEY==VALUE or KEY!=VALUE`);
    const op = operatorAt(s, i);
    if (op === undefined) {
      // "zone<east": the old grammar split the key at its last '<' or '>' to name the operator.
      for (let j = keyEnd - 1; j > keyStart; j--) {
        steps++;
        const c = s.charCodeAt(j);
        if (c === LT || c === GT) throw new ConstraintError(`operator "${s[j]}" is not supported (only == and !=)`);
      }
      throw new ConstraintError(`${quote(s)} is not of the form KEY==VALUE or KEY!=VALUE`);
    }
    i += op.length;
    for (; i < n && isSpace(s.charCodeAt(i)); i++) steps++;
    const valueStart = i;
    let valueEnd = n;
    for (; valueEnd > valueStart && isSpace(s.charCodeAt(valueEnd - 1)); valueEnd--) steps++;
    for (let j = valueStart; j < valueEnd; j++) {
      steps++;
      if (isLineEnd(s.charCodeAt(j))) throw new ConstraintError(`${quote(s)} is not of the form KEY==VALUE or KEY!=VALUE (the value must be one line)`);
    }
    if (op !== '==' && op !== '!=') throw new ConstraintError(`operator "${op}" is not supported (only == and !=)`);
    const key = s.slice(keyStart, keyEnd);
    steps += key.length;
    if (!knownKey(key)) throw new ConstraintError(`unknown constraint key ${quote(key)} (known: ${CONSTRAINT_KEYS.join(', ')}, node.labels.<name>, engine.labels.<name>)`);
    if (valueEnd === valueStart) throw new ConstraintError(`${quote(s)} has no value`);
    steps += valueEnd - valueStart;
    return { key, op, value: s.slice(valueStart, valueEnd) };
  } finally {
    if (meter) meter.steps += steps;
  }
}

const LABEL_PREFIXES = ['node.labels.', 'engine.labels.'] as const;

/** node.id etc., or a label: "node.labels." / "engine.labels." and a name that does not start with '.'. */
function knownKey(key: string): boolean {
  if ((CONSTRAINT_KEYS as readonly string[]).includes(key)) return true;
  for (const prefix of LABEL_PREFIXES) if (key.length > prefix.length && key.startsWith(prefix)) return key.charCodeAt(prefix.length) !== 0x2e;
  return false;
}

/** A node's value for a constraint key; undefined when the node has no such label. */
export function nodeValue(node: Node, key: string): string | undefined {
  switch (key) {
    case 'node.id':
      return node.id;
    case 'node.hostname':
      return node.description?.hostname;
    case 'node.role':
      return (node.spec?.role ?? 'WORKER').toLowerCase();
    case 'node.platform.os':
      return node.description?.platform?.os;
    case 'node.platform.arch':
      return node.description?.platform?.arch;
  }
  if (key.startsWith('node.labels.')) return labelOf(node.spec?.labels, key.slice('node.labels.'.length));
  if (key.startsWith('engine.labels.')) return labelOf(node.description?.engineLabels, key.slice('engine.labels.'.length));
  return undefined;
}

/**
 * A label's own string value: "node.labels.constructor" or
 * "node.labels.__proto__" must not find what every object inherits (it is not
 * a string, and reading it threw in the leader's scheduler).
 */
function labelOf(labels: Record<string, string> | null | undefined, name: string): string | undefined {
  if (!labels || !Object.prototype.hasOwnProperty.call(labels, name)) return undefined;
  const v: unknown = labels[name];
  return typeof v === 'string' ? v : undefined;
}

/** A constraint's value in lower case, once per parsed constraint (it is compared against every node). */
const lowered = new WeakMap<Constraint, string>();
function lowerValue(c: Constraint): string {
  let v = lowered.get(c);
  if (v === undefined) lowered.set(c, (v = c.value.toLowerCase()));
  return v;
}

/** Case-insensitive as in swarmkit; a missing label matches != and never ==. */
export function constraintMatches(c: Constraint, node: Node): boolean {
  const v = nodeValue(node, c.key);
  const eq = v !== undefined && v.toLowerCase() === lowerValue(c);
  return c.op === '==' ? eq : !eq;
}

/** Parses every constraint of a placement, skipping malformed ones (validation refuses them before they are stored). */
export function parseConstraints(placement: Placement | null | undefined): Constraint[] {
  const out: Constraint[] = [];
  for (const e of placement?.constraints ?? []) {
    try {
      out.push(parseConstraint(e));
    } catch {
      // A stored malformed constraint cannot match anything safely: treat as never matching.
      out.push({ key: 'node.id', op: '==', value: '\u0000invalid' });
    }
  }
  return out;
}

/** How many services' parsed constraints a ConstraintCache keeps (a cluster has far fewer services than this). */
export const CONSTRAINT_CACHE_ENTRIES = 4096;

/**
 * parseConstraints memoised per service spec version, for the reconcilers
 * that read the same placement once per task per tick. A hit is checked
 * against the expressions themselves (string equality, no parse), so a
 * reused (service, version) pair with other constraints cannot return a stale
 * parse. Bounded: the oldest entry goes first. The arrays it returns are
 * shared between callers: read them, never change them.
 */
export class ConstraintCache {
  private readonly entries = new Map<string, { source: readonly string[]; parsed: Constraint[] }>();

  constructor(private readonly max = CONSTRAINT_CACHE_ENTRIES) {}

  get(serviceId: string, specVersion: number, placement: Placement | null | undefined): Constraint[] {
    const source = placement?.constraints ?? [];
    const k = `${serviceId}\u0000${specVersion}`;
    const hit = this.entries.get(k);
    if (hit && sameStrings(hit.source, source)) return hit.parsed;
    const parsed = parseConstraints(placement);
    this.entries.delete(k);
    this.entries.set(k, { source: [...source], parsed });
    if (this.entries.size > this.max) this.entries.delete(this.entries.keys().next().value!);
    return parsed;
  }

  get size(): number {
    return this.entries.size;
  }
}

/**
 * The one cache the reconcilers share: the scheduler (requirementsOf, per
 * pending task) and the global orchestrator (per service) read the same
 * placements. Safe to share: a hit is checked against the expressions.
 */
const shared = new ConstraintCache();

/** parseConstraints(placement), memoised per (service, spec version) in the shared cache. */
export function constraintsOf(serviceId: string, specVersion: number, placement: Placement | null | undefined): Constraint[] {
  return shared.get(serviceId, specVersion, placement);
}

function sameStrings(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Go/OCI arch aliases a node may report. */
const ARCH_ALIASES: Record<string, string> = { x86_64: 'amd64', aarch64: 'arm64' };
const normArch = (a: string) => ARCH_ALIASES[a] ?? a;

export function platformMatches(platforms: readonly Platform[] | undefined, node: Node): boolean {
  if (!platforms || platforms.length === 0) return true;
  const os = node.description?.platform?.os ?? '';
  const arch = normArch(node.description?.platform?.arch ?? '');
  return platforms.some((p) => (!p.os || p.os === os) && (!p.arch || normArch(p.arch) === arch));
}
