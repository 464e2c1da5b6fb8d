// Loading a stack: read the -c files (bounded), build the interpolation
// environment (this shell, then --env-file, then the `.env` beside the first
// file; Swarm never reads `.env`, moby#29133), interpolate each file, merge
// them in order, then convert (convert.ts). Nothing here talks to a manager:
// every refusal happens before the first write.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { stringify } from 'yaml';
import { convertStack, type StackPlan } from './convert';
import { interpolateTree, parseDotEnv } from './interpolate';
import { mergeFiles } from './merge';
import { parseCompose, stackError, STACK_LIMITS, toPlain, type YNode } from './tree';

export interface LoadOptions {
  files: string[];
  envFiles?: string[];
  /** This process's environment (wins over --env-file and .env, as in Compose). */
  env: NodeJS.ProcessEnv;
  readFile?: (p: string) => Buffer;
  /** Where relative -c paths start (the CLI's cwd). */
  cwd?: string;
  /** false: `stack config --skip-interpolation`. */
  interpolate?: boolean;
}

export interface Loaded {
  root: YNode;
  lookup: (name: string) => string | undefined;
  workingDir: string;
  warnings: string[];
}

function readBounded(read: (p: string) => Buffer, p: string, max: number, what: string): Buffer {
  let st: fs.Stats | undefined;
  try {
    st = fs.statSync(p);
  } catch {
    /* readFile reports it */
  }
  if (st && st.size > max) throw stackError({ file: p, line: 1 }, '', `${what} larger than ${max / 1024} KiB`);
  let buf: Buffer;
  try {
    buf = read(p);
  } catch (e) {
    throw stackError(undefined, '', `cannot read ${what} ${p}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  if (buf.length > max) throw stackError({ file: p, line: 1 }, '', `${what} larger than ${max / 1024} KiB`);
  return buf;
}

export function loadCompose(o: LoadOptions): Loaded {
  const read = o.readFile ?? ((p: string) => fs.readFileSync(p));
  const cwd = o.cwd ?? process.cwd();
  if (!o.files.length) throw stackError(undefined, '', 'no compose file given (-c FILE)');
  if (o.files.length > STACK_LIMITS.files) throw stackError(undefined, '', `at most ${STACK_LIMITS.files} compose files`);
  const files = o.files.map((f) => (f === '-' ? f : path.resolve(cwd, f)));
  const workingDir = files[0] === '-' ? cwd : path.dirname(files[0]);
  const warnings: string[] = [];

  // .env beside the first file, then --env-file (later files win), then the environment.
  const vars = new Map<string, string>();
  const dotEnv = path.join(workingDir, '.env');
  if (fs.existsSync(dotEnv) && fs.statSync(dotEnv).isFile()) for (const [k, v] of parseDotEnv(readBounded(read, dotEnv, STACK_LIMITS.envFileBytes, 'env file').toString('utf8'), dotEnv)) vars.set(k, v);
  for (const f of o.envFiles ?? []) {
    const abs = path.resolve(cwd, f);
    for (const [k, v] of parseDotEnv(readBounded(read, abs, STACK_LIMITS.envFileBytes, 'env file').toString('utf8'), abs)) vars.set(k, v);
  }
  const lookup = (name: string) => (Object.prototype.hasOwnProperty.call(o.env, name) && o.env[name] !== undefined ? o.env[name] : vars.get(name));

  const roots = files.map((f) => {
    const text = f === '-' ? fs.readFileSync(0, 'utf8') : readBounded(read, f, STACK_LIMITS.fileBytes, 'compose file').toString('utf8');
    const shown = f === '-' ? '-' : path.relative(cwd, f) || f;
    const root = parseCompose(text, shown.startsWith('..') ? f : shown);
    if (o.interpolate !== false) interpolateTree(root, lookup, (w) => warnings.push(w));
    return root;
  });
  return { root: mergeFiles(roots), lookup, workingDir, warnings };
}

/** Loads and converts: the whole plan, or the first refusal. */
export function loadStack(stack: string, o: LoadOptions): StackPlan {
  const l = loadCompose(o);
  const read = o.readFile ?? ((p: string) => fs.readFileSync(p));
  const plan = convertStack(stack, l.root, { lookup: l.lookup, readFile: read, workingDir: l.workingDir, home: o.env.HOME });
  plan.warnings.unshift(...l.warnings);
  return plan;
}

/**
 * `stack config`: the merged, interpolated files as one YAML document. A '$'
 * left by interpolation is written `$$`, so the output deploys to the same
 * stack as the files it came from.
 */
export function renderConfig(l: Loaded): string {
  const escape = (v: unknown): unknown =>
    typeof v === 'string' ? v.replace(/\$/g, '$$$$') : Array.isArray(v) ? v.map(escape) : v && typeof v === 'object' ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, escape(x)])) : v;
  return stringify(escape(toPlain(l.root)), { lineWidth: 0 });
}
