// A fuzz target for the layer unpacker: mutates seed archives (the checked-in
// corpus/ made by GNU tar, and layers made by tar-writer.ts) and unpacks each
// mutant with the store's path (extractLayer + the native helper) into a
// fresh root beside a sentinel directory. Asserts, for every input:
//   - it is unpacked or refused with a TarError (nothing else is thrown),
//   - within INPUT_BUDGET_MS (no hang),
//   - the process's RSS stays under RSS_CAP_BYTES (no unbounded memory),
//   - nothing outside the root changed.
// `npm run fuzz:tar` runs it for CONVOY_FUZZ_SECONDS (default 60);
// CONVOY_FUZZ_SEED replays a run. A failing input is saved and its path printed.
// No fuzzing library: coverage guidance (jsfuzz, Jazzer.js) would find deeper
// paths, but the reader is small and structure-aware mutations of valid
// archives (header fields, sizes, types, checksums fixed up or not) reach its
// branches; see docs/runtime.md.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { findHelper } from '../../native';
import { unpackLayer } from '../store';
import { TarError } from '../tar';
import { snapshot } from './snapshot';
import { chunks, tarOf, type RawEntry } from './tar-writer';

/** One input may take this long (a clean refusal takes ~1 ms, an unpack of a seed ~10 ms). */
export const INPUT_BUDGET_MS = 5_000;
/** The whole process: the agent's baseline is ~100 MiB, one layer must not add more than a few. */
export const RSS_CAP_BYTES = 512 * 1024 * 1024;
/** Small caps, so that a mutated size field is refused fast instead of writing gigabytes. */
const FUZZ_LIMITS = { maxLayerBytes: 8 * 1024 * 1024, maxEntries: 2_000, maxHeaderBytes: 64 * 1024, maxMetadataBytes: 1024 * 1024 };
const BLOCK = 512;

export interface FuzzOptions {
  seconds: number;
  seed?: number;
  /** Where failing inputs are written (default: the OS temp dir). */
  crashDir?: string;
  log?: (line: string) => void;
}

export interface FuzzResult {
  inputs: number;
  unpacked: number;
  refused: number;
  maxRssBytes: number;
  seed: number;
  /** Empty when every input behaved. */
  failures: { reason: string; input: string }[];
}

/** mulberry32: small, seedable, good enough to pick mutations. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function corpusDir(): string {
  const candidates = [path.join(__dirname, 'corpus'), path.join(__dirname, '..', '..', '..', '..', '..', 'agent', 'runtime', 'image', 'testing', 'corpus')];
  for (const c of candidates) if (fs.existsSync(c)) return c;
  throw new Error(`tar fuzz corpus not found (looked in ${candidates.join(', ')})`);
}

/** Seeds made with the test writer: what GNU tar does not write (whiteouts, devices, xattrs, old GNU sparse with extensions). */
export function generatedSeeds(): Buffer[] {
  const f = (name: string, data = 'x', extra: Partial<RawEntry> = {}): RawEntry => ({ name, type: '0', data, ...extra });
  return [
    tarOf([{ name: 'etc/', type: '5' }, f('etc/.wh.passwd', ''), f('var/.wh..wh..opq', ''), f('etc/hosts', 'h')]),
    tarOf([{ name: 'dev/', type: '5' }, { name: 'dev/null', type: '3', devmajor: 1, devminor: 3 }, { name: 'dev/n2', type: '1', linkname: 'dev/null' }, { name: 'p', type: '6' }]),
    tarOf([f('x', 'data', { pax: [['SCHILY.xattr.user.a', 'b'], ['SCHILY.xattr.security.capability', Buffer.from([1, 0, 0, 2, 0, 32, 0, 0])], ['mtime', '1.5']] })]),
    tarOf([f('l'.repeat(150) + '/' + 'm'.repeat(120), 'long', { gnuLongNames: true }), { name: 's', type: '2', linkname: 't'.repeat(140), gnuLongNames: true }]),
    tarOf([{ name: 'sp', type: 'S', data: 'a'.repeat(700), gnuSparse: { realSize: 100_000, map: Array.from({ length: 7 }, (_, i) => [i * 10_000, 100] as [number, number]) } }]),
    tarOf([{ name: 'a', type: '2', linkname: '/tmp' }, f('a', 'replaced'), { name: 'd/', type: '5' }, f('d/x'), f('d', 'file over dir')]),
  ];
}

function loadSeeds(): Buffer[] {
  const dir = corpusDir();
  const files = fs.readdirSync(dir).filter((n) => n.endsWith('.tar')).sort();
  return [...files.map((n) => fs.readFileSync(path.join(dir, n))), ...generatedSeeds()];
}

/** Header field offsets and lengths (ustar), for structure-aware overwrites. */
const FIELDS: [number, number][] = [[0, 100], [100, 8], [108, 8], [116, 8], [124, 12], [136, 12], [148, 8], [156, 1], [157, 100], [257, 8], [329, 8], [337, 8], [345, 155], [386, 96], [482, 1], [483, 12]];
const INTERESTING = ['../', '/', '..', '.wh.', '.wh..wh..opq', '\0', '77777777777', '\x80\x00\x00\x00\x00\x00\x00\x00\x00\x00\x10\x00', '\xff\xff\xff\xff', 'x', '1', '2', '3', '5', 'S', 'L', 'K', 'g', 'Z', '99999 path=', ' ', '00000001000'];

function fixChecksum(b: Buffer, off: number): void {
  b.write('        ', off + 148, 'latin1');
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += b[off + i];
  b.write(sum.toString(8).padStart(6, '0') + '\0 ', off + 148, 'latin1');
}

/** Header block offsets of an archive (best effort: follows size fields). */
function headerOffsets(b: Buffer): number[] {
  const out: number[] = [];
  for (let off = 0; off + BLOCK <= b.length && out.length < 200; ) {
    if (b[off] === 0) break;
    out.push(off);
    const size = parseInt(b.toString('latin1', off + 124, off + 136).replace(/[\0 ]/g, ''), 8) || 0;
    off += BLOCK + Math.ceil(size / BLOCK) * BLOCK;
  }
  return out;
}

export function mutate(seed: Buffer, seeds: Buffer[], r: () => number): Buffer {
  let b = Buffer.from(seed);
  const pick = <T>(xs: T[]) => xs[Math.floor(r() * xs.length)];
  const n = 1 + Math.floor(r() * 4);
  for (let i = 0; i < n; i++) {
    const heads = headerOffsets(b);
    switch (Math.floor(r() * 8)) {
      case 0: // flip bits
        for (let k = 0; k < 1 + r() * 8; k++) b[Math.floor(r() * b.length)] ^= 1 << Math.floor(r() * 8);
        break;
      case 1: // truncate
        b = b.subarray(0, Math.floor(r() * b.length));
        break;
      case 2: // random bytes in a header field, checksum fixed or not
      case 3: {
        if (!heads.length) break;
        const h = pick(heads);
        const [off, len] = pick(FIELDS);
        const s = Buffer.from(pick(INTERESTING), 'latin1');
        const at = h + off + Math.floor(r() * Math.max(1, len - s.length));
        s.copy(b, at, 0, Math.min(s.length, b.length - at));
        if (r() < 0.8 && h + BLOCK <= b.length) fixChecksum(b, h);
        break;
      }
      case 4: {
        // a size field set to something else, checksum fixed
        if (!heads.length) break;
        const h = pick(heads);
        if (h + BLOCK > b.length) break;
        const v = pick([0, 1, 511, 512, 513, 100_000, 2 ** 33, Math.floor(r() * 4096)]);
        b.write(v.toString(8).padStart(11, '0').slice(-11) + '\0', h + 124, 'latin1');
        fixChecksum(b, h);
        break;
      }
      case 5: {
        // duplicate or drop a block
        const at = Math.floor(r() * (b.length / BLOCK)) * BLOCK;
        const blk = b.subarray(at, at + BLOCK);
        b = r() < 0.5 ? Buffer.concat([b.subarray(0, at), blk, b.subarray(at)]) : Buffer.concat([b.subarray(0, at), b.subarray(at + BLOCK)]);
        break;
      }
      case 6: {
        // splice: the head of this archive, the tail of another
        const other = pick(seeds);
        const cut = Math.floor((r() * b.length) / BLOCK) * BLOCK;
        const cut2 = Math.floor((r() * other.length) / BLOCK) * BLOCK;
        b = Buffer.concat([b.subarray(0, cut), other.subarray(cut2)]);
        break;
      }
      default: // random bytes anywhere
        for (let k = 0; k < 1 + r() * 16; k++) b[Math.floor(r() * b.length)] = Math.floor(r() * 256);
    }
  }
  return b;
}

export async function fuzzTar(opts: FuzzOptions): Promise<FuzzResult> {
  const seed = opts.seed ?? Math.floor(Math.random() * 2 ** 31);
  const r = rng(seed);
  const seeds = loadSeeds();
  const helperPath = findHelper();
  const arena = fs.mkdtempSync(path.join(os.tmpdir(), 'convoy-fuzz-tar-'));
  const outside = path.join(arena, 'outside');
  const root = path.join(arena, 'root');
  fs.mkdirSync(root);
  fs.mkdirSync(path.join(outside, 'sub'), { recursive: true });
  fs.writeFileSync(path.join(outside, 'victim'), 'victim');
  const before = snapshot(arena, { skip: ['root'] });
  const res: FuzzResult = { inputs: 0, unpacked: 0, refused: 0, maxRssBytes: 0, seed, failures: [] };
  const deadline = Date.now() + opts.seconds * 1000;
  const fail = (reason: string, input: Buffer) => {
    const dir = opts.crashDir ?? os.tmpdir();
    const file = path.join(dir, `convoy-fuzz-tar-crash-${seed}-${res.inputs}.tar`);
    fs.writeFileSync(file, input);
    res.failures.push({ reason, input: file });
    opts.log?.(`fuzz_tar failure: ${reason} (input saved as ${file})`);
  };
  try {
    while (Date.now() < deadline && res.failures.length === 0) {
      const input = mutate(seeds[res.inputs % seeds.length], seeds, r);
      res.inputs++;
      // emptied, not re-made: the arena's own listing must not change
      for (const name of fs.readdirSync(root)) fs.rmSync(path.join(root, name), { recursive: true, force: true });
      let timer: NodeJS.Timeout | undefined;
      const hang = new Promise<'hang'>((resolve) => (timer = setTimeout(() => resolve('hang'), INPUT_BUDGET_MS)));
      try {
        const out = await Promise.race([unpackLayer(chunks(input, 1 + Math.floor(r() * 4096)), root, { helperPath, limits: FUZZ_LIMITS }).then(() => 'ok' as const), hang]);
        if (out === 'hang') fail(`no answer within ${INPUT_BUDGET_MS} ms`, input);
        else res.unpacked++;
      } catch (e) {
        if (e instanceof TarError) res.refused++;
        else fail(`threw ${e instanceof Error ? `${e.name}: ${e.message}\n${e.stack}` : String(e)}`, input);
      } finally {
        clearTimeout(timer);
      }
      const rss = process.memoryUsage().rss;
      res.maxRssBytes = Math.max(res.maxRssBytes, rss);
      if (rss > RSS_CAP_BYTES) fail(`RSS ${rss} bytes, over ${RSS_CAP_BYTES}`, input);
      const after = snapshot(arena, { skip: ['root'] });
      if (after.join('\n') !== before.join('\n')) fail(`something outside the root changed:\n${after.filter((l) => !before.includes(l)).join('\n')}`, input);
    }
  } finally {
    fs.rmSync(arena, { recursive: true, force: true });
  }
  opts.log?.(`fuzz_tar inputs=${res.inputs} unpacked=${res.unpacked} refused=${res.refused} seconds=${opts.seconds} max_rss_mb=${Math.round(res.maxRssBytes / 2 ** 20)} seed=${seed} failures=${res.failures.length}`);
  return res;
}

if (require.main === module) {
  const seconds = Number(process.env.CONVOY_FUZZ_SECONDS ?? 60);
  const seed = process.env.CONVOY_FUZZ_SEED ? Number(process.env.CONVOY_FUZZ_SEED) : undefined;
  void fuzzTar({ seconds, seed, log: (l) => console.log(l) }).then((r) => {
    process.exitCode = r.failures.length ? 1 : 0;
  });
}
