// A compose file as a tree that remembers where every value came from: each
// node carries its file and line, so any refusal later on names
// "file:line: services.web.deploy.replicas: reason". Parsed with `yaml`
// (eemeli/yaml) in YAML 1.1 mode, as Docker's yaml.v2 reads compose files
// (`mode: 0440` is octal, `yes`/`no` are booleans), without 1.1's
// sexagesimal numbers and timestamps (`22:22` stays the string a port
// mapping is) and without its binary/set/omap/pairs types.
//
// Hostile input: the file size, the number of nodes (alias expansion
// included: a "billion laughs" file is refused, not expanded) and the
// nesting depth are bounded (STACK_LIMITS).
import { isAlias, isMap, isPair, isScalar, isSeq, LineCounter, parseDocument, type Document, type Node as YamlNode } from 'yaml';

export type YValue = null | boolean | number | string | YNode[] | Map<string, YNode>;

export interface YNode {
  v: YValue;
  file: string;
  line: number;
  /** Set on a string that interpolation changed (it may then stand for a number or a boolean, as Docker casts). */
  interpolated?: boolean;
}

export const STACK_LIMITS = {
  /** Bytes of one compose file (Docker has no limit; 1 MiB is far beyond any real stack file). */
  fileBytes: 1024 * 1024,
  /** Compose files merged by one deploy (-c ... -c ...). */
  files: 32,
  /** Nodes of one file after alias and merge-key expansion. */
  nodes: 200_000,
  /** Nesting depth of one file. */
  depth: 64,
  /** Services, networks, volumes, secrets and configs of one stack. */
  services: 500,
  objects: 500,
  /** Entries a port range may expand to ("8000-8999:8000-8999"). */
  portRange: 1000,
  /** Bytes of one env file or secret/config file read by the loader. */
  envFileBytes: 1024 * 1024,
  secretBytes: 500 * 1024,
  /** Stack name: the prefix of every object name (Docker's limit on service names is 63 in all). */
  nameChars: 63,
} as const;

/** A refusal: one line naming file, line, path and reason. */
export class StackError extends Error {
  override name = 'StackError';
}

export function where(n: { file: string; line: number } | undefined): string {
  return n ? `${n.file}:${n.line}` : '';
}

export function stackError(n: { file: string; line: number } | undefined, path: string, message: string): StackError {
  const at = where(n);
  return new StackError(`${at ? at + ': ' : ''}${path ? path + ': ' : ''}${message}`);
}

function yamlSchemaTags(tags: unknown[]): unknown[] {
  return tags.filter((t) => {
    const tag = t as { tag?: string; format?: string };
    if (tag.format === 'TIME') return false;
    return !/:(timestamp|binary|omap|pairs|set)$/.test(tag.tag ?? '');
  });
}

/** Parses one compose file's text into a tree; a syntax error names the file and line. */
export function parseCompose(text: string, file: string): YNode {
  if (Buffer.byteLength(text, 'utf8') > STACK_LIMITS.fileBytes) throw stackError({ file, line: 1 }, '', `larger than ${STACK_LIMITS.fileBytes / 1024} KiB`);
  const lc = new LineCounter();
  let doc: Document.Parsed;
  try {
    doc = parseDocument(text, {
      version: '1.1',
      customTags: yamlSchemaTags as never,
      lineCounter: lc,
      merge: true,
      uniqueKeys: true,
      prettyErrors: false,
    });
  } catch (e) {
    throw stackError({ file, line: 1 }, '', `invalid YAML: ${(e as Error).message.split('\n')[0]}`);
  }
  const bad = doc.errors[0];
  if (bad) {
    const line = bad.linePos?.[0]?.line ?? lc.linePos(bad.pos[0]).line;
    throw stackError({ file, line }, '', `invalid YAML: ${bad.message.split('\n')[0]}`);
  }
  const warn = doc.warnings[0];
  if (warn) {
    const line = warn.linePos?.[0]?.line ?? lc.linePos(warn.pos[0]).line;
    throw stackError({ file, line }, '', `invalid YAML: ${warn.message.split('\n')[0]}`);
  }
  let count = 0;
  const lineOf = (n: YamlNode | null | undefined, fallback: number) => (n?.range ? lc.linePos(n.range[0]).line : fallback);
  // keyLine: a mapping or list that is a key's value is reported at its key's line.
  const build = (n: unknown, depth: number, fallbackLine: number, path: string, keyLine?: number): YNode => {
    if (++count > STACK_LIMITS.nodes) throw stackError({ file, line: fallbackLine }, path, `more than ${STACK_LIMITS.nodes} values (after expanding aliases)`);
    if (depth > STACK_LIMITS.depth) throw stackError({ file, line: fallbackLine }, path, `nested deeper than ${STACK_LIMITS.depth} levels`);
    if (isAlias(n)) return build(n.resolve(doc), depth + 1, lineOf(n, fallbackLine), path, keyLine ?? lineOf(n, fallbackLine));
    const line = lineOf(n as YamlNode, fallbackLine);
    if (n === null || n === undefined) return { v: null, file, line };
    if (isScalar(n)) {
      const v = n.value;
      if (v === null || v === undefined) return { v: null, file, line };
      // YAML 1.1 reads y/n as booleans (yaml.v2 too); compose files mean the letter (`N: 5`, `y: 2`).
      if (typeof v === 'boolean' && /^[yYnN]$/.test(String((n as { source?: string }).source ?? ''))) return { v: String((n as { source?: string }).source), file, line };
      if (typeof v === 'boolean' || typeof v === 'string') return { v, file, line };
      if (typeof v === 'number') {
        if (!Number.isFinite(v)) {
          // YAML 1.1's float pattern takes "." and "._" for numbers: Docker's yaml.v2 reads them as strings.
          const src = (n as { source?: string }).source;
          if (typeof src === 'string' && !/^[-+]?\.(inf|nan)$/i.test(src)) return { v: src, file, line };
          throw stackError({ file, line }, path, `${String(v)} is not a usable number`);
        }
        return { v, file, line };
      }
      if (typeof v === 'bigint') throw stackError({ file, line }, path, 'number too large');
      throw stackError({ file, line }, path, `unsupported YAML value ${String(n.tag ?? typeof v)}`);
    }
    if (isSeq(n)) return { v: n.items.map((it, i) => build(it, depth + 1, line, `${path}[${i}]`)), file, line: keyLine ?? line };
    if (isMap(n)) {
      const m = new Map<string, YNode>();
      const mergeSources: YNode[] = [];
      for (const pair of n.items) {
        if (!isPair(pair)) continue;
        const k = pair.key;
        const kl = lineOf(k as YamlNode, line);
        // YAML merge keys (<<: *defaults): the referenced maps fill what this one does not set.
        const kv = isScalar(k) ? (k.value as unknown) : undefined;
        if ((kv === '<<' || (typeof kv === 'symbol' && kv.description === '<<')) && (isAlias(pair.value) || isMap(pair.value) || isSeq(pair.value))) {
          const src = build(pair.value, depth + 1, kl, path);
          for (const s of Array.isArray(src.v) ? src.v : [src]) {
            if (!(s.v instanceof Map)) throw stackError({ file, line: kl }, path, 'a merge key (<<) must refer to a mapping');
            mergeSources.push(s);
          }
          continue;
        }
        let key: string;
        // A key is its text: `on:`, `1.0:` or `N:` name things, they are not a boolean or a number.
        if (isScalar(k) && (typeof k.value === 'string' || typeof k.value === 'number' || typeof k.value === 'boolean')) key = typeof k.value === 'string' ? k.value : String((k as { source?: string }).source ?? k.value);
        else throw stackError({ file, line: kl }, path, 'mapping keys must be strings');
        const child = `${path ? path + '.' : ''}${key}`;
        m.set(key, build(pair.value, depth + 1, kl, child, kl));
      }
      for (const s of mergeSources) for (const [k, v] of s.v as Map<string, YNode>) if (!m.has(k)) m.set(k, v);
      return { v: m, file, line: keyLine ?? line };
    }
    throw stackError({ file, line }, path, 'unsupported YAML node');
  };
  const root = build(doc.contents, 0, 1, '');
  if (root.v === null) return { v: new Map(), file, line: 1 };
  if (!(root.v instanceof Map)) throw stackError(root, '', 'the top level must be a mapping (services:, networks:, ...)');
  return root;
}

/** The tree as plain JSON-like values (for `stack config` and comparisons). */
export function toPlain(n: YNode | undefined): unknown {
  if (!n) return undefined;
  if (n.v instanceof Map) {
    const o: Record<string, unknown> = {};
    for (const [k, v] of n.v) Object.defineProperty(o, k, { value: toPlain(v), enumerable: true, writable: true, configurable: true });
    return o;
  }
  if (Array.isArray(n.v)) return n.v.map(toPlain);
  return n.v;
}

export type MapNode = Omit<YNode, 'v'> & { v: Map<string, YNode> };
export type SeqNode = Omit<YNode, 'v'> & { v: YNode[] };
export const isMapNode = (n: YNode | undefined): n is MapNode => !!n && n.v instanceof Map;
export const isSeqNode = (n: YNode | undefined): n is SeqNode => !!n && Array.isArray(n.v);
