// A fuzz target for the Control API's spec validation: valid seed specs
// (testing/corpus/*.json) mutated at random (fields deleted, types confused,
// huge strings, deep nesting, Unicode, "__proto__" keys, NaN, infinities,
// negative numbers, lists where objects belong) and fed to
// validateServiceSpec. Each input must come back as a validation result
// (never an exception), the same one twice, without the input changed, with
// bounded error messages; an accepted spec must be accepted again as itself,
// also after a trip through JSON (what etcd stores). The node, network and
// task-status validators get pieces of the same inputs.
//
//   npm run fuzz:spec                  # about a minute
//   FUZZ_SPEC_MS=600000 npm run fuzz:spec
//   FUZZ_SEED=1234 FUZZ_ITERATION=5678 npm run fuzz:spec   # replays one input
//
// Each iteration's input depends only on (seed, iteration), so a failure is
// replayed from the line that reports it.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import type { Network, Node, ServiceSpec } from '../../proto/mod';
import { boundTaskStatus, validateNetworkSpec, validateNodeDescription, validateNodeSpec } from './objects';
import { validateServiceSpec, type ValidationContext, type ValidationResult } from './validate';

/** Seeds checked in next to this file's source (the runner is started from dist/). */
export const CORPUS_DIR = path.resolve(__dirname, '../../../manager/spec/testing/corpus');
/** `npm run fuzz:spec` runs this long unless FUZZ_SPEC_MS says otherwise: a CI minute. */
export const DEFAULT_FUZZ_MS = 60_000;
/** One validation slower than this is reported as a hang (inputs are bounded; a linear pass takes milliseconds). */
export const DEFAULT_SLOW_MS = 2_000;
/** Longest string a mutation makes: past every per-field limit and the whole spec's, to prove they hold. */
const HUGE_MAX = 300_000;
/** Deepest nesting a mutation makes. */
const DEPTH_MAX = 5_000;
/** Longest error message accepted: messages quote user input cut short, never whole. */
const MESSAGE_MAX = 1_000;
const FIELD_MAX = 300;

export interface FuzzOptions {
  durationMs: number;
  seed: number;
  /** Stop after this many iterations (a replay runs one: `only`). */
  maxIterations?: number;
  /** Run only this iteration (replay). */
  only?: number;
  slowMs?: number;
  corpusDir?: string;
}

export interface FuzzFailure {
  iteration: number;
  reason: string;
  input: string;
}

export interface FuzzReport {
  seed: number;
  iterations: number;
  accepted: number;
  refused: number;
  slowestMs: number;
  failures: FuzzFailure[];
}

type Json = null | boolean | number | string | undefined | Json[] | { [k: string]: Json };
type Rng = () => number;

/** xorshift32 seeded per iteration: replayable, no dependency. */
function rngFor(seed: number, iteration: number): Rng {
  let x = (seed ^ Math.imul(iteration + 1, 0x9e3779b9)) >>> 0 || 0x1234567;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 2 ** 32;
  };
}
const pick = <T>(r: Rng, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)];
const int = (r: Rng, n: number) => Math.floor(r() * n);

const NASTY_STRINGS = [
  '',
  ' ',
  '\0',
  'a\0b',
  '\n',
  '\u001b[2J\u001b[31mred',
  '\ud800',
  '\udfff\ud800',
  '🚀',
  'e\u0301',
  '\u202eevil',
  '\ufeff',
  '__proto__',
  'constructor',
  'toString',
  '../../etc/passwd',
  '/',
  '//',
  'node.labels.__proto__==x',
  'node.id==',
  '==',
  '!=',
  'node.labels.a ==  b  ',
  'spread=node.labels.zone',
  'CMD',
  'CMD-SHELL',
  'NONE',
  'SIGKILL',
  'tcp',
  'udp',
  'GLOBAL',
  'REPLICATED',
  'REPLICATED_JOB',
  'GLOBAL_JOB',
  'CONCURRENCY_FORBID',
  '*/5 * * * *',
  '0 0 30 2 *',
  '@daily',
  'Europe/Paris',
  'Nowhere/City',
  'DNSRR',
  'HOST',
  'TMPFS',
  'VOLUME',
  'K=v',
  '=',
  'localhost:5000/a/b:c',
  'UPPER/x',
];
const NASTY_NUMBERS = [0, -0, 1, -1, 1.5, NaN, Infinity, -Infinity, 2 ** 31, 2 ** 31 - 1, 2 ** 32, 2 ** 53 + 2, -(2 ** 63), 1e308, Number.MIN_VALUE, 65535, 65536];
const KEYS = ['__proto__', 'constructor', 'prototype', 'toString', 'name', 'image', 'labels', 'container', 'env', 'mounts', 'ports', 'constraints', 'x', ''];

function hugeString(r: Rng): string {
  const n = 1 + int(r, HUGE_MAX);
  const unit = pick(r, ['a', ' ', '=', '!', '=!', ' =', 'é', '日', '🚀', '\ud800', '\\', '"', '\n', 'node.labels.']);
  return unit.repeat(Math.ceil(n / unit.length)).slice(0, n);
}

function deep(r: Rng): Json {
  let v: Json = pick(r, [null, 'x', 1, [], {}] as Json[]);
  const depth = 1 + int(r, DEPTH_MAX);
  const asList = r() < 0.5;
  for (let i = 0; i < depth; i++) v = asList ? [v] : { a: v };
  return v;
}

/** A value of any kind, often the wrong one for where it goes. */
function randomValue(r: Rng, like: Json): Json {
  switch (int(r, 12)) {
    case 0:
      return pick(r, NASTY_STRINGS);
    case 1:
      return pick(r, NASTY_NUMBERS);
    case 2:
      return hugeString(r);
    case 3:
      return deep(r);
    case 4:
      return JSON.parse('{"__proto__": {"polluted": "yes"}, "constructor": {"prototype": {"polluted": "yes"}}}') as Json;
    case 5:
      return pick(r, [null, undefined, true, false] as Json[]);
    case 6:
      return Array.isArray(like) ? {} : typeof like === 'object' && like !== null ? [like] : [like, like];
    case 7:
      // Many copies of something plausible: past every count limit.
      return Array.from({ length: 1 + int(r, 5000) }, () => (typeof like === 'string' ? like : pick(r, NASTY_STRINGS)));
    case 8:
      return Object.fromEntries(Array.from({ length: 1 + int(r, 300) }, (_, i) => [`${pick(r, KEYS)}${i}`, pick(r, NASTY_STRINGS)]));
    case 9:
      return typeof like === 'number' ? -like : typeof like === 'string' ? like + pick(r, NASTY_STRINGS) : typeof like === 'object' ? 'x' : String(like);
    case 10:
      // Repeated, but never past twice the largest huge string: repeating one
      // that an earlier edit already made huge ran out of memory (seed 15, iteration 401).
      return typeof like === 'string' ? like.repeat(Math.max(1, Math.min(1 + int(r, 2000), Math.floor((2 * HUGE_MAX) / Math.max(1, like.length))))) : 0;
    default:
      return typeof like === 'number' ? like * pick(r, [2 ** 20, -1, 0.5, 1e10]) : pick(r, NASTY_NUMBERS);
  }
}

/** Every container (object or list) in v, with the key or index that leads to each of its children. */
function containers(v: Json, out: (Json[] | { [k: string]: Json })[] = [], budget = { n: 2000 }): (Json[] | { [k: string]: Json })[] {
  if (v === null || typeof v !== 'object' || budget.n-- <= 0) return out;
  out.push(v);
  for (const x of Array.isArray(v) ? v : Object.values(v)) containers(x, out, budget);
  return out;
}

/** One to four random edits of a copy of the seed. */
function mutate(r: Rng, seed: Json): Json {
  const root = JSON.parse(JSON.stringify(seed)) as Json;
  const edits = 1 + int(r, 4);
  for (let e = 0; e < edits; e++) {
    const all = containers(root);
    if (!all.length) break;
    const c = pick(r, all);
    if (Array.isArray(c)) {
      const i = int(r, c.length + 1);
      const op = int(r, 4);
      if (op === 0 && c.length) c.splice(i, 1);
      else if (op === 1) c.splice(i, 0, randomValue(r, c[0] ?? null));
      else if (op === 2 && c.length) c[Math.min(i, c.length - 1)] = randomValue(r, c[Math.min(i, c.length - 1)]);
      // Copies of the first element, as values: pushing one object many times over
      // made inputs whose every level shares its children, which JSON (and so a
      // request) can never be, and whose text grows exponentially with depth.
      else c.push(...Array.from({ length: int(r, 100) }, () => (c[0] !== null && typeof c[0] === 'object' ? 'x' : (c[0] ?? 'x'))));
    } else {
      const keys = Object.keys(c);
      const op = int(r, 4);
      if (op === 0 && keys.length) delete c[pick(r, keys)];
      else if (op === 1) Object.defineProperty(c, pick(r, KEYS), { value: randomValue(r, null), enumerable: true, writable: true, configurable: true });
      else if (keys.length) {
        const k = pick(r, keys);
        c[k] = randomValue(r, c[k]);
      }
    }
  }
  return r() < 0.02 ? randomValue(r, root) : root;
}

export function loadCorpus(dir: string = CORPUS_DIR): Json[] {
  const files = fs.readdirSync(dir).filter((f) => f.endsWith('.json')).sort();
  if (!files.length) throw new Error(`no seed specs in ${dir}`);
  return files.map((f) => JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8')) as Json);
}

/** A cluster the seeds fit in: nodes big enough, the networks they name. */
function fuzzContext(): ValidationContext {
  const node = (id: string): Node => ({
    id,
    meta: { version: 1, createdAt: 0, updatedAt: 0 },
    spec: { role: 'WORKER', availability: 'ACTIVE', labels: { zone: 'east' } },
    description: { hostname: `host-${id}`, platform: { os: 'linux', arch: 'amd64' }, resources: { nanoCpus: 8e9, memoryBytes: 16 * 1024 ** 3, pids: 0 }, engineLabels: {}, listeningTcp: [22], listeningUdp: [], addresses: [] },
    status: { state: 'NODE_READY', message: '', addr: '10.0.0.1', updatedAt: 0 },
    subnet: '',
    sessionId: '',
    leaseId: 0,
    usage: null,
  });
  const net = (id: string, name: string): Network => ({ id, meta: null, spec: { name, subnet: '', labels: {}, internal: false }, vni: 1, subnet: '' });
  return { nodes: [node('a'), node('b')], services: [], networks: [net('n1', 'front'), net('n2', 'back')], bindAllow: ['/srv'] };
}

/** A printable, bounded picture of an input (NaN, undefined and -0 included) for the failure report. */
function show(v: unknown): string {
  let s: string;
  try {
    s = JSON.stringify(v, (_k, x: unknown) => (typeof x === 'number' && !Number.isFinite(x) ? String(x) : x === undefined ? '<undefined>' : x)) ?? String(v);
  } catch (e) {
    s = `<unprintable: ${String(e)}>`;
  }
  return s.length > 2000 ? `${s.slice(0, 2000)}… (${s.length} characters)` : s;
}

/**
 * Everything reachable in a value, flat: each key and each value (objects by
 * reference, primitives as themselves, NaN and -0 included). Two snapshots
 * compared with Object.is tell whether anything was changed in between.
 * Iterative, so any depth.
 */
function snapshot(v: unknown): unknown[] {
  const out: unknown[] = [];
  const stack: unknown[] = [v];
  while (stack.length) {
    const x = stack.pop();
    out.push(x);
    if (x === null || typeof x !== 'object') continue;
    const keys = Object.keys(x);
    out.push(Array.isArray(x), keys.length);
    for (let i = keys.length - 1; i >= 0; i--) stack.push((x as Record<string, unknown>)[keys[i]], keys[i]);
  }
  return out;
}

const sameSnapshot = (a: unknown[], b: unknown[]) => a.length === b.length && a.every((x, i) => Object.is(x, b[i]));

function checkResult(r: ValidationResult): string | undefined {
  if (typeof r !== 'object' || r === null || typeof r.ok !== 'boolean') return 'not a ValidationResult';
  if (r.ok) return undefined;
  if (!Array.isArray(r.errors) || !r.errors.length) return 'refused without errors';
  for (const e of r.errors) {
    if (typeof e.field !== 'string' || typeof e.message !== 'string') return 'an error without field or message';
    if (e.field.length > FIELD_MAX || e.message.length > MESSAGE_MAX) return `an unbounded error (${e.field.length}/${e.message.length} characters): ${e.field.slice(0, 80)}`;
  }
  return undefined;
}

/** One input through every property; the reason it fails, or undefined. */
function checkOne(input: Json, ctx: ValidationContext, slowMs: number, stats: { slowestMs: number; accepted: number; refused: number }): string | undefined {
  const before = snapshot(input);
  const t0 = performance.now();
  let r1: ValidationResult;
  let r2: ValidationResult;
  try {
    r1 = validateServiceSpec(input as unknown as ServiceSpec, ctx);
  } catch (e) {
    return `threw: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`;
  }
  const ms = performance.now() - t0;
  stats.slowestMs = Math.max(stats.slowestMs, ms);
  if (ms > slowMs) return `took ${ms.toFixed(0)} ms`;
  const bad = checkResult(r1);
  if (bad) return bad;
  try {
    r2 = validateServiceSpec(input as unknown as ServiceSpec, ctx);
  } catch (e) {
    return `threw the second time: ${String(e)}`;
  }
  if (!isDeepStrictEqual(r1, r2)) return 'not deterministic: two validations of one input differ';
  if (!sameSnapshot(before, snapshot(input))) return 'validation changed its input';
  if (r1.ok) {
    stats.accepted++;
    for (const [how, again] of [
      ['as returned', r1.spec],
      ['after JSON', JSON.parse(JSON.stringify(r1.spec)) as ServiceSpec],
    ] as const) {
      let r3: ValidationResult;
      try {
        r3 = validateServiceSpec(again, ctx);
      } catch (e) {
        return `threw on its own validated spec (${how}): ${String(e)}`;
      }
      if (!r3.ok) return `its validated spec (${how}) is refused: ${r3.errors.map((e) => `${e.field}: ${e.message}`).join('; ')}`;
      if (!isDeepStrictEqual(r3.spec, r1.spec)) return `validate(validated) differs from validated (${how})`;
    }
  } else stats.refused++;
  // The other validators, on pieces of the same input: results, never exceptions.
  const piece = (k: string): unknown => (input !== null && typeof input === 'object' && !Array.isArray(input) ? (input as Record<string, unknown>)[k] : input);
  for (const [name, fn] of [
    ['validateNetworkSpec', () => validateNetworkSpec({ name: piece('name'), labels: piece('labels') })],
    ['validateNodeSpec', () => validateNodeSpec({ role: piece('mode'), labels: piece('labels') })],
    ['validateNodeDescription', () => validateNodeDescription({ hostname: piece('name'), engineLabels: piece('labels'), resources: piece('resources') })],
    ['boundTaskStatus', () => boundTaskStatus({ state: 'FAILED', message: piece('name'), err: piece('container'), exitCode: piece('replicas'), health: piece('mode') })],
  ] as const) {
    try {
      const a = fn();
      if (!isDeepStrictEqual(a, fn())) return `${name} is not deterministic`;
    } catch (e) {
      return `${name} threw: ${String(e)}`;
    }
  }
  return undefined;
}

export function runSpecFuzz(opts: FuzzOptions): FuzzReport {
  const corpus = loadCorpus(opts.corpusDir);
  const ctx = fuzzContext();
  const slowMs = opts.slowMs ?? DEFAULT_SLOW_MS;
  const report: FuzzReport = { seed: opts.seed, iterations: 0, accepted: 0, refused: 0, slowestMs: 0, failures: [] };
  // The seeds themselves first: they must be valid, or the corpus tests nothing near the accept path.
  corpus.forEach((seed, i) => {
    const r = validateServiceSpec(seed as unknown as ServiceSpec, ctx);
    if (!r.ok) report.failures.push({ iteration: -1 - i, reason: `seed ${i} is refused: ${r.errors.map((e) => `${e.field}: ${e.message}`).join('; ')}`, input: show(seed) });
  });
  const deadline = performance.now() + opts.durationMs;
  const first = opts.only ?? 0;
  const last = opts.only !== undefined ? opts.only : (opts.maxIterations ?? Number.MAX_SAFE_INTEGER) - 1;
  for (let it = first; it <= last && (opts.only !== undefined || performance.now() < deadline); it++) {
    const r = rngFor(opts.seed, it);
    const input = mutate(r, pick(r, corpus));
    const reason = checkOne(input, ctx, slowMs, report);
    report.iterations++;
    if (reason) report.failures.push({ iteration: it, reason, input: show(input) });
    if (report.failures.length >= 20) break;
  }
  return report;
}

function main(): void {
  const envInt = (k: string): number | undefined => (process.env[k] !== undefined && process.env[k] !== '' ? Number(process.env[k]) : undefined);
  const seed = envInt('FUZZ_SEED') ?? Date.now() % 2 ** 31;
  const only = envInt('FUZZ_ITERATION');
  const report = runSpecFuzz({ durationMs: envInt('FUZZ_SPEC_MS') ?? DEFAULT_FUZZ_MS, seed, only, slowMs: envInt('FUZZ_SLOW_MS') });
  for (const f of report.failures) {
    console.log(`FAIL iteration=${f.iteration}: ${f.reason}`);
    console.log(`  replay: FUZZ_SEED=${report.seed} FUZZ_ITERATION=${f.iteration} npm run fuzz:spec`);
    console.log(`  input: ${f.input}`);
  }
  console.log(`fuzz:spec seed=${report.seed} iterations=${report.iterations} accepted=${report.accepted} refused=${report.refused} failures=${report.failures.length} slowest_ms=${report.slowestMs.toFixed(1)}`);
  process.exitCode = report.failures.length ? 1 : 0;
}

if (require.main === module) main();
