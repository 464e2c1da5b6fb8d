// Placement constraints ("node.labels.zone == east", "node.role != manager")
// and platforms: the static half of the filter pipeline, also used by the
// global orchestrator (which nodes get a task) and by spec validation.
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

/** Parses "node.labels.zone == east"; throws ConstraintError with the reason when malformed. */
export function parseConstraint(expr: string): Constraint {
  const m = /^\s*([^\s=!]+)\s*(==|!=|=|<=|>=|<|>|~=)\s*(.*?)\s*$/.exec(expr);
  if (!m) throw new ConstraintError(`"${expr}" is not of the form KEY==VALUE or KEY!=VALUE`);
  const [, key, op, value] = m;
  if (op !== '==' && op !== '!=') throw new ConstraintError(`operator "${op}" is not supported (only == and !=)`);
  if (!(CONSTRAINT_KEYS as readonly string[]).includes(key) && !/^node\.labels\.[^.\s]/.test(key) && !/^engine\.labels\.[^.\s]/.test(key))
    throw new ConstraintError(`unknown constraint key "${key}" (known: ${CONSTRAINT_KEYS.join(', ')}, node.labels.<name>, engine.labels.<name>)`);
  if (!value) throw new ConstraintError(`"${expr}" has no value`);
  return { key, op, value };
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
  if (key.startsWith('node.labels.')) return node.spec?.labels?.[key.slice('node.labels.'.length)];
  if (key.startsWith('engine.labels.')) return node.description?.engineLabels?.[key.slice('engine.labels.'.length)];
  return undefined;
}

/** Case-insensitive as in swarmkit; a missing label matches != and never ==. */
export function constraintMatches(c: Constraint, node: Node): boolean {
  const v = nodeValue(node, c.key);
  const eq = v !== undefined && v.toLowerCase() === c.value.toLowerCase();
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

/** Go/OCI arch aliases a node may report. */
const ARCH_ALIASES: Record<string, string> = { x86_64: 'amd64', aarch64: 'arm64' };
const normArch = (a: string) => ARCH_ALIASES[a] ?? a;

export function platformMatches(platforms: readonly Platform[] | undefined, node: Node): boolean {
  if (!platforms || platforms.length === 0) return true;
  const os = node.description?.platform?.os ?? '';
  const arch = normArch(node.description?.platform?.arch ?? '');
  return platforms.some((p) => (!p.os || p.os === os) && (!p.arch || normArch(p.arch) === arch));
}
