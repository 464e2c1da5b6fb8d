// A listing of a directory tree (names, types, modes, owners, sizes, mtimes,
// contents, link targets), to prove that unpacking changed nothing outside
// its root, and to compare Convoy's extraction with GNU tar's.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';

export interface SnapshotOptions {
  /** Relative paths not descended into nor listed (the unpack root). */
  skip?: string[];
  /** Leave mtimes out (they differ for directories GNU tar creates implicitly). */
  mtimes?: boolean | ((rel: string, st: fs.Stats) => boolean);
}

function kind(st: fs.Stats): string {
  if (st.isFile()) return 'file';
  if (st.isDirectory()) return 'dir';
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isCharacterDevice()) return 'char';
  if (st.isBlockDevice()) return 'block';
  if (st.isFIFO()) return 'fifo';
  return 'other';
}

/** One line per entry of `root` (the root itself included), sorted. */
export function snapshot(root: string, opts: SnapshotOptions = {}): string[] {
  const skip = new Set(opts.skip ?? []);
  const out: string[] = [];
  const walk = (rel: string) => {
    const abs = rel ? path.join(root, rel) : root;
    const st = fs.lstatSync(abs);
    const k = kind(st);
    const keepTime = typeof opts.mtimes === 'function' ? opts.mtimes(rel, st) : opts.mtimes !== false;
    let detail = '';
    if (k === 'file') detail = `size=${st.size} sha=${createHash('sha256').update(fs.readFileSync(abs)).digest('hex').slice(0, 16)}`;
    else if (k === 'symlink') detail = `-> ${fs.readlinkSync(abs)}`;
    else if (k === 'char' || k === 'block') detail = `rdev=${st.rdev}`;
    out.push(`${rel || '.'} ${k} mode=${(st.mode & 0o7777).toString(8)} owner=${st.uid}:${st.gid} nlink=${k === 'dir' ? '-' : st.nlink}${keepTime && k !== 'symlink' ? ` mtime=${Math.floor(st.mtimeMs / 1000)}` : ''} ${detail}`);
    if (k === 'dir') {
      for (const name of fs.readdirSync(abs).sort()) {
        const r = rel ? `${rel}/${name}` : name;
        if (!skip.has(r)) walk(r);
      }
    }
  };
  walk('');
  return out.sort();
}
