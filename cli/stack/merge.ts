// Several `-c` files merged as the Compose Specification merges them
// (docs/stacks.md): mappings merge key by key, later files winning;
// `command`, `entrypoint` and `healthcheck.test` are replaced;
// `environment`, `labels`, `sysctls`, `extra_hosts` merge as mappings
// whether written as lists or mappings; `depends_on` and service
// `networks` likewise (a list entry is `name: {}`); `ports`, `volumes`,
// `secrets` and `configs` merge by key (published+target+protocol, target,
// target or source), a later entry replacing an earlier one with the same
// key; any other sequence is appended without duplicates; `logging` is
// replaced when the driver changes. Positions stay with the values, so a
// refusal names the file that set the value.
import { isMapNode, isSeqNode, toPlain, type MapNode, type YNode } from './tree';

type Rule = 'replace' | 'mapping' | 'keyed' | 'append';

const LIST_OR_DICT = new Set(['environment', 'labels', 'sysctls', 'extra_hosts', 'deploy.labels', 'depends_on', 'networks']);
const REPLACED = new Set(['command', 'entrypoint', 'healthcheck.test']);
const KEYED = new Set(['ports', 'volumes', 'secrets', 'configs']);

function ruleFor(path: string): Rule {
  if (REPLACED.has(path)) return 'replace';
  if (LIST_OR_DICT.has(path)) return 'mapping';
  if (KEYED.has(path)) return 'keyed';
  return 'append';
}

/** A list-or-dict field as a mapping ("K=V" / "K" entries; extra_hosts also "host:ip"; depends_on/networks entries "name"). */
function asMapping(n: YNode, path: string): YNode {
  if (!isSeqNode(n)) return n;
  const m = new Map<string, YNode>();
  for (const e of n.v) {
    if (typeof e.v !== 'string') return n; // a wrong type: left for the validator to refuse
    if (path === 'depends_on') m.set(e.v, { v: new Map([['condition', { v: 'service_started', file: e.file, line: e.line }]]), file: e.file, line: e.line });
    else if (path === 'networks') m.set(e.v, { v: null, file: e.file, line: e.line });
    else {
      const sep = path === 'extra_hosts' ? /[=:]/.exec(e.v) : /=/.exec(e.v);
      if (!sep) m.set(e.v, { v: null, file: e.file, line: e.line });
      else m.set(e.v.slice(0, sep.index), { v: e.v.slice(sep.index + 1), file: e.file, line: e.line });
    }
  }
  return { v: m, file: n.file, line: n.line };
}

/** The key a ports/volumes/secrets/configs entry is merged by. */
function entryKey(field: string, e: YNode): string {
  const plain = toPlain(e) as unknown;
  if (field === 'ports') {
    if (typeof plain === 'number') return `${plain}/tcp`;
    if (typeof plain === 'string') return /\/(tcp|udp)$/.test(plain) ? plain : `${plain}/tcp`;
    const p = plain as Record<string, unknown>;
    if (p && typeof p === 'object') return `${p.published ?? ''}:${p.target ?? ''}/${p.protocol ?? 'tcp'}`;
  } else if (field === 'volumes') {
    if (typeof plain === 'string') {
      const parts = plain.split(':');
      return parts.length === 1 ? parts[0] : parts[1];
    }
    const p = plain as Record<string, unknown>;
    if (p && typeof p === 'object') return String(p.target ?? '');
  } else {
    if (typeof plain === 'string') return plain;
    const p = plain as Record<string, unknown>;
    if (p && typeof p === 'object') return String(p.target ?? p.source ?? '');
  }
  return JSON.stringify(plain);
}

function mergeNode(a: YNode | undefined, b: YNode, path: string): YNode {
  if (!a) return b;
  const rule = ruleFor(path);
  if (rule === 'replace') return b;
  if (rule === 'mapping') {
    const am = asMapping(a, path);
    const bm = asMapping(b, path);
    if (!isMapNode(am) || !isMapNode(bm)) return b;
    const m = new Map(am.v);
    for (const [k, v] of bm.v) {
      const prev = m.get(k);
      // depends_on / networks entries are mappings of their own: merged; env and labels values: replaced.
      m.set(k, prev && (path === 'depends_on' || path === 'networks') && isMapNode(prev) && isMapNode(v) ? mergeMaps(prev, v, `${path}.*`) : v.v === null && prev && (path === 'networks' || path === 'depends_on') ? prev : v);
    }
    return { v: m, file: bm.file, line: bm.line };
  }
  if (isMapNode(a) && isMapNode(b)) {
    if (path === 'logging') {
      const da = a.v.get('driver')?.v;
      const db = b.v.get('driver')?.v;
      if (db !== undefined && db !== da) return b;
    }
    return mergeMaps(a, b, path);
  }
  const seq = (n: YNode): YNode[] | undefined => (isSeqNode(n) ? n.v : typeof n.v === 'string' && /^(dns|dns_search|tmpfs|env_file)$/.test(path) ? [n] : undefined);
  const sa = seq(a);
  const sb = seq(b);
  if (sa && sb) {
    if (rule === 'keyed') {
      const byKey = new Map<string, YNode>();
      for (const e of sa) byKey.set(entryKey(path, e), e);
      for (const e of sb) {
        const k = entryKey(path, e);
        byKey.delete(k);
        byKey.set(k, e);
      }
      return { v: [...byKey.values()], file: b.file, line: b.line };
    }
    const seen = new Set(sa.map((e) => JSON.stringify(toPlain(e))));
    const out = [...sa];
    for (const e of sb) {
      const k = JSON.stringify(toPlain(e));
      if (!seen.has(k)) {
        seen.add(k);
        out.push(e);
      }
    }
    return { v: out, file: b.file, line: b.line };
  }
  return b;
}

function mergeMaps(a: MapNode, b: MapNode, path: string): YNode {
  const m = new Map(a.v);
  for (const [k, v] of b.v) m.set(k, mergeNode(a.v.get(k), v, path ? `${path}.${k}` : k));
  return { v: m, file: a.file, line: a.line };
}

/** Merges compose trees, later ones overriding earlier ones. */
export function mergeFiles(roots: YNode[]): YNode {
  let out = roots[0];
  for (const r of roots.slice(1)) {
    if (!isMapNode(out) || !isMapNode(r)) {
      out = r;
      continue;
    }
    const m = new Map(out.v);
    for (const [k, v] of r.v) {
      const prev = m.get(k);
      if (!prev || !isMapNode(prev) || !isMapNode(v) || !['services', 'networks', 'volumes', 'secrets', 'configs'].includes(k)) {
        m.set(k, v);
        continue;
      }
      const section = new Map(prev.v);
      for (const [name, def] of v.v) {
        const before = section.get(name);
        // Within a service, paths are relative to the service ("deploy.labels", "healthcheck.test").
        section.set(name, before && isMapNode(before) && isMapNode(def) ? mergeMaps(before, def, '') : def);
      }
      m.set(k, { v: section, file: prev.file, line: prev.line });
    }
    out = { v: m, file: out.file, line: out.line };
  }
  return out;
}
