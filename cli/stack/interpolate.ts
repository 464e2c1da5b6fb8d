// Variable interpolation in compose values, as the Compose Specification
// and Docker's loader do it: `$VAR`, `${VAR}`, `${VAR:-default}` (unset or
// empty), `${VAR-default}` (unset), `${VAR:?message}` / `${VAR?message}`
// (refused when unset/empty or unset), `${VAR:+alt}` / `${VAR+alt}`, `$$`
// for a literal `$`. Defaults may themselves hold variables
// (`${A:-${B:-x}}`). Only values are interpolated, never keys. An unset
// variable without default becomes "" with a warning, as Docker.
import { isMapNode, isSeqNode, stackError, StackError, type YNode } from './tree';

export type Lookup = (name: string) => string | undefined;

/** Interpolation of one string; throws a plain message (the caller adds file, line and path). */
export function interpolateString(s: string, lookup: Lookup, missing: (name: string) => void = () => undefined, depth = 0): string {
  if (!s.includes('$')) return s;
  if (depth > 10) throw new Error('variables nested more than 10 deep');
  let out = '';
  let i = 0;
  while (i < s.length) {
    const c = s[i];
    if (c !== '$') {
      out += c;
      i++;
      continue;
    }
    const next = s[i + 1];
    if (next === '$') {
      out += '$';
      i += 2;
      continue;
    }
    if (next !== undefined && /[A-Za-z_]/.test(next)) {
      const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(s.slice(i + 1))!;
      const v = lookup(m[0]);
      if (v === undefined) missing(m[0]);
      out += v ?? '';
      i += 1 + m[0].length;
      continue;
    }
    if (next === '{') {
      // Find the matching brace, counting nested ${...}.
      let j = i + 2;
      let level = 1;
      while (j < s.length && level > 0) {
        if (s[j] === '$' && s[j + 1] === '{') {
          level++;
          j += 2;
          continue;
        }
        if (s[j] === '}') level--;
        if (level > 0) j++;
      }
      if (level > 0) throw new Error(`invalid interpolation format in ${JSON.stringify(s)}: missing '}'`);
      const body = s.slice(i + 2, j);
      const m = /^([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])([\s\S]*))?$/.exec(body);
      if (!m) throw new Error(`invalid interpolation format in ${JSON.stringify(s)}: "\${${body}}" is not \${VAR}, \${VAR:-default} or \${VAR:?message}`);
      const [, name, op, rest = ''] = m;
      const v = lookup(name);
      const unsetOrEmpty = v === undefined || v === '';
      const sub = () => interpolateString(rest, lookup, missing, depth + 1);
      switch (op) {
        case undefined:
          if (v === undefined) missing(name);
          out += v ?? '';
          break;
        case ':-':
          out += unsetOrEmpty ? sub() : v;
          break;
        case '-':
          out += v === undefined ? sub() : v;
          break;
        case ':?':
          if (unsetOrEmpty) throw new Error(`required variable ${name} is missing a value${rest ? `: ${sub()}` : ''}`);
          out += v;
          break;
        case '?':
          if (v === undefined) throw new Error(`required variable ${name} is missing a value${rest ? `: ${sub()}` : ''}`);
          out += v;
          break;
        case ':+':
          out += unsetOrEmpty ? '' : sub();
          break;
        case '+':
          out += v === undefined ? '' : sub();
          break;
      }
      i = j + 1;
      continue;
    }
    throw new Error(`invalid interpolation format in ${JSON.stringify(s)}: a '$' must start $VAR or \${VAR} (write $$ for a literal $)`);
  }
  return out;
}

/** Interpolates every string value of a tree in place; `warn` hears each unset variable once. */
export function interpolateTree(root: YNode, lookup: Lookup, warn: (msg: string) => void): void {
  const warned = new Set<string>();
  const visit = (n: YNode, path: string) => {
    if (typeof n.v === 'string') {
      if (!n.v.includes('$')) return;
      try {
        const before = n.v;
        n.v = interpolateString(n.v, lookup, (name) => {
          if (warned.has(name)) return;
          warned.add(name);
          warn(`${n.file}:${n.line}: ${path}: variable ${name} is not set, using an empty string`);
        });
        if (n.v !== before) n.interpolated = true;
      } catch (e) {
        if (e instanceof StackError) throw e;
        throw stackError(n, path, (e as Error).message);
      }
    } else if (isSeqNode(n)) n.v.forEach((c, i) => visit(c, `${path}[${i}]`));
    else if (isMapNode(n)) for (const [k, c] of n.v) visit(c, path ? `${path}.${k}` : k);
  };
  visit(root, '');
}

/**
 * A `.env` / `--env-file` file: KEY=VALUE lines, `#` comments, blank lines,
 * an optional `export ` prefix; values in double quotes take \n, \t, \" and \\
 * escapes, in single quotes are literal; unquoted values end at " #".
 */
export function parseDotEnv(text: string, file: string): Map<string, string> {
  const out = new Map<string, string>();
  text.split(/\r?\n/).forEach((raw, idx) => {
    const line = raw.trim();
    if (!line || line.startsWith('#')) return;
    const m = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_.-]*)\s*=\s*(.*)$/.exec(line);
    if (!m) throw stackError({ file, line: idx + 1 }, '', `not KEY=VALUE: ${JSON.stringify(line.slice(0, 80))}`);
    let v = m[2];
    if (v.startsWith('"')) {
      const end = v.lastIndexOf('"');
      if (end <= 0) throw stackError({ file, line: idx + 1 }, m[1], 'unterminated double quote');
      v = v.slice(1, end).replace(/\\(.)/g, (_, ch: string) => ({ n: '\n', t: '\t', r: '\r' })[ch] ?? ch);
    } else if (v.startsWith("'")) {
      const end = v.lastIndexOf("'");
      if (end <= 0) throw stackError({ file, line: idx + 1 }, m[1], 'unterminated single quote');
      v = v.slice(1, end);
    } else v = v.replace(/\s+#.*$/, '').trim();
    out.set(m[1], v);
  });
  return out;
}
