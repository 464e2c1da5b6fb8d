// A small tar reader and writer for image layers (ustar, pax and GNU long
// names). Convoy keeps its own instead of an npm package because extracting a
// layer is more than untarring: whiteouts become overlay whiteouts, device
// nodes and xattrs need the native helper (Node can neither mknod nor
// setxattr), and nothing may be written through a symlink of the layer.
// See docs/runtime.md.
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';

/** Work for the native helper (`convoy-init fixup`), in order. */
export type FixupOp =
  | { op: 'whiteout'; path: string }
  | { op: 'opaque'; path: string }
  | { op: 'mknod'; path: string; mode: number; major: number; minor: number; uid: number; gid: number }
  | { op: 'xattr'; path: string; name: string; value: Buffer };

export class TarError extends Error {
  override name = 'TarError';
}

const BLOCK = 512;
const WHITEOUT_PREFIX = '.wh.';
const OPAQUE = '.wh..wh..opq';
const S_IFIFO = 0o010000;
const S_IFCHR = 0o020000;
const S_IFBLK = 0o060000;

class ChunkReader {
  private buf: Buffer = Buffer.alloc(0);
  private ended = false;
  constructor(private readonly it: AsyncIterator<Buffer>) {}

  private async fill(n: number): Promise<boolean> {
    while (this.buf.length < n && !this.ended) {
      const r = await this.it.next();
      if (r.done) this.ended = true;
      else this.buf = this.buf.length ? Buffer.concat([this.buf, r.value]) : r.value;
    }
    return this.buf.length >= n;
  }

  /** n bytes, or undefined at a clean end of input. */
  async take(n: number): Promise<Buffer | undefined> {
    if (!(await this.fill(n))) {
      if (this.buf.length === 0) return undefined;
      throw new TarError('truncated tar archive');
    }
    const out = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(n);
    return out;
  }

  async *stream(n: number): AsyncGenerator<Buffer> {
    let left = n;
    while (left > 0) {
      if (this.buf.length === 0 && !(await this.fill(1))) throw new TarError('truncated tar archive');
      const k = Math.min(left, this.buf.length);
      const out = this.buf.subarray(0, k);
      this.buf = this.buf.subarray(k);
      left -= k;
      yield out;
    }
  }

  async skip(n: number): Promise<void> {
    for await (const _ of this.stream(n)) void _;
  }

  /** Reads what is left so the producer (and its digest) sees the whole input. */
  async drain(): Promise<void> {
    this.buf = Buffer.alloc(0);
    while (!this.ended) {
      const r = await this.it.next();
      if (r.done) this.ended = true;
    }
  }
}

function cstr(b: Buffer, off: number, len: number): string {
  const s = b.subarray(off, off + len);
  const z = s.indexOf(0);
  return (z >= 0 ? s.subarray(0, z) : s).toString('utf8');
}

function num(b: Buffer, off: number, len: number): number {
  // GNU base-256 for big values
  if (b[off] & 0x80) {
    let v = b[off] & 0x7f;
    for (let i = 1; i < len; i++) v = v * 256 + b[off + i];
    return v;
  }
  const s = cstr(b, off, len).trim();
  return s ? parseInt(s, 8) : 0;
}

interface Header {
  name: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  type: string;
  linkname: string;
  devmajor: number;
  devminor: number;
  xattrs: Map<string, Buffer>;
}

function parseHeader(b: Buffer): Header | undefined {
  if (b.every((x) => x === 0)) return undefined;
  const magic = b.subarray(257, 263).toString('latin1');
  const ustar = magic === 'ustar\0';
  let name = cstr(b, 0, 100);
  if (ustar) {
    const prefix = cstr(b, 345, 155);
    if (prefix) name = `${prefix}/${name}`;
  }
  return {
    name,
    mode: num(b, 100, 8),
    uid: num(b, 108, 8),
    gid: num(b, 116, 8),
    size: num(b, 124, 12),
    mtime: num(b, 136, 12),
    type: String.fromCharCode(b[156] || 0x30),
    linkname: cstr(b, 157, 100),
    devmajor: num(b, 329, 8),
    devminor: num(b, 337, 8),
    xattrs: new Map(),
  };
}

function parsePax(data: Buffer): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  let off = 0;
  while (off < data.length) {
    const sp = data.indexOf(0x20, off);
    if (sp < 0) break;
    const len = parseInt(data.subarray(off, sp).toString('latin1'), 10);
    if (!(len > 0)) break;
    const rec = data.subarray(sp + 1, off + len - 1); // without trailing \n
    const eq = rec.indexOf(0x3d);
    if (eq > 0) out.set(rec.subarray(0, eq).toString('utf8'), rec.subarray(eq + 1));
    off += len;
  }
  return out;
}

/** Normalises an archive path to "a/b/c"; refuses anything climbing out. */
export function cleanPath(p: string): string {
  const parts: string[] = [];
  for (const c of p.split('/')) {
    if (c === '' || c === '.') continue;
    if (c === '..') throw new TarError(`tar entry ${JSON.stringify(p)} climbs out of the layer`);
    parts.push(c);
  }
  return parts.join('/');
}

async function removeExisting(p: string, keepDir: boolean): Promise<void> {
  let st: fs.Stats;
  try {
    st = await fsp.lstat(p);
  } catch {
    return;
  }
  if (keepDir && st.isDirectory()) return;
  await fsp.rm(p, { recursive: true, force: true });
}

/**
 * Extracts a layer tar (already decompressed) into the empty directory `dest`.
 * Returns what the native helper must still do (whiteouts, device nodes,
 * xattrs). Files are created with their owners and modes (the agent runs as root).
 */
export async function extractLayer(source: AsyncIterable<Buffer>, dest: string): Promise<FixupOp[]> {
  const reader = new ChunkReader(source[Symbol.asyncIterator]());
  const ops: FixupOp[] = [];
  const symlinks = new Set<string>();
  const dirTimes: [string, number][] = [];
  const made = new Set<string>(['']);
  let paxNext: Map<string, Buffer> | undefined;
  let longName: string | undefined;
  let longLink: string | undefined;

  const ensureParents = async (rel: string) => {
    const parts = rel.split('/');
    parts.pop();
    let cur = '';
    for (const c of parts) {
      cur = cur ? `${cur}/${c}` : c;
      if (symlinks.has(cur)) throw new TarError(`tar entry ${rel} goes through the symlink ${cur}`);
      if (made.has(cur)) continue;
      try {
        await fsp.mkdir(path.join(dest, cur), { mode: 0o755 });
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      }
      made.add(cur);
    }
  };

  for (;;) {
    const block = await reader.take(BLOCK);
    if (!block) break;
    const h = parseHeader(block);
    if (!h) break; // end-of-archive marker
    const padded = Math.ceil(h.size / BLOCK) * BLOCK;
    if (h.type === 'x' || h.type === 'g' || h.type === 'L' || h.type === 'K') {
      const chunks: Buffer[] = [];
      for await (const c of reader.stream(h.size)) chunks.push(Buffer.from(c));
      await reader.skip(padded - h.size);
      const data = Buffer.concat(chunks);
      if (h.type === 'x') paxNext = parsePax(data);
      else if (h.type === 'L') longName = cstr(data, 0, data.length);
      else if (h.type === 'K') longLink = cstr(data, 0, data.length);
      continue;
    }
    if (longName !== undefined) h.name = longName;
    if (longLink !== undefined) h.linkname = longLink;
    if (paxNext) {
      for (const [k, v] of paxNext) {
        const s = v.toString('utf8');
        if (k === 'path') h.name = s;
        else if (k === 'linkpath') h.linkname = s;
        else if (k === 'size') h.size = parseInt(s, 10);
        else if (k === 'uid') h.uid = parseInt(s, 10);
        else if (k === 'gid') h.gid = parseInt(s, 10);
        else if (k === 'mtime') h.mtime = parseFloat(s);
        else if (k.startsWith('SCHILY.xattr.')) h.xattrs.set(k.slice('SCHILY.xattr.'.length), v);
      }
    }
    paxNext = undefined;
    longName = undefined;
    longLink = undefined;
    const dataPad = Math.ceil(h.size / BLOCK) * BLOCK;

    const rel = cleanPath(h.name);
    if (rel === '') {
      await reader.skip(dataPad);
      continue;
    }
    await ensureParents(rel);
    const base = path.posix.basename(rel);
    const parent = path.posix.dirname(rel) === '.' ? '' : path.posix.dirname(rel);
    if (base === OPAQUE) {
      ops.push({ op: 'opaque', path: parent });
      await reader.skip(dataPad);
      continue;
    }
    if (base.startsWith(WHITEOUT_PREFIX)) {
      const target = parent ? `${parent}/${base.slice(WHITEOUT_PREFIX.length)}` : base.slice(WHITEOUT_PREFIX.length);
      ops.push({ op: 'whiteout', path: target });
      await reader.skip(dataPad);
      continue;
    }
    const abs = path.join(dest, rel);
    const mode = h.mode & 0o7777;
    symlinks.delete(rel);
    switch (h.type) {
      case '0':
      case '7':
      case '\0': {
        await removeExisting(abs, false);
        const fh = await fsp.open(abs, 'wx', 0o600);
        try {
          for await (const c of reader.stream(h.size)) await fh.write(c);
          await fh.chown(h.uid, h.gid);
          await fh.chmod(mode);
          await fh.utimes(h.mtime, h.mtime);
        } finally {
          await fh.close();
        }
        await reader.skip(dataPad - h.size);
        break;
      }
      case '5': {
        await removeExisting(abs, true);
        try {
          await fsp.mkdir(abs);
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
        }
        made.add(rel);
        await fsp.chown(abs, h.uid, h.gid);
        await fsp.chmod(abs, mode);
        dirTimes.push([abs, h.mtime]);
        await reader.skip(dataPad);
        break;
      }
      case '2': {
        await removeExisting(abs, false);
        await fsp.symlink(h.linkname, abs);
        await fsp.lchown(abs, h.uid, h.gid);
        await fsp.lutimes(abs, h.mtime, h.mtime);
        symlinks.add(rel);
        await reader.skip(dataPad);
        break;
      }
      case '1': {
        const target = cleanPath(h.linkname);
        const tparts = target.split('/');
        for (let i = 1; i < tparts.length; i++) {
          if (symlinks.has(tparts.slice(0, i).join('/'))) throw new TarError(`hard link ${rel} goes through a symlink`);
        }
        await removeExisting(abs, false);
        await fsp.link(path.join(dest, target), abs);
        if (symlinks.has(target)) symlinks.add(rel);
        await reader.skip(dataPad);
        break;
      }
      case '3':
      case '4':
      case '6': {
        const typeBits = h.type === '3' ? S_IFCHR : h.type === '4' ? S_IFBLK : S_IFIFO;
        ops.push({ op: 'mknod', path: rel, mode: typeBits | mode, major: h.devmajor, minor: h.devminor, uid: h.uid, gid: h.gid });
        await reader.skip(dataPad);
        break;
      }
      default:
        // unknown entry types (sparse files, ...) are skipped
        await reader.skip(dataPad);
    }
    for (const [name, value] of h.xattrs) ops.push({ op: 'xattr', path: rel, name, value });
  }
  await reader.drain();
  for (const [abs, t] of dirTimes.reverse()) await fsp.utimes(abs, t, t).catch(() => undefined);
  return ops;
}

/** Encodes fixup operations for `convoy-init fixup` (NUL-separated, fixed arity). */
export function encodeFixups(ops: FixupOp[]): string[] {
  const out: string[] = [];
  for (const o of ops) {
    switch (o.op) {
      case 'whiteout':
      case 'opaque':
        out.push(o.op, o.path);
        break;
      case 'mknod':
        out.push('mknod', o.path, o.mode.toString(8), String(o.major), String(o.minor), String(o.uid), String(o.gid));
        break;
      case 'xattr':
        out.push('xattr', o.path, o.name, o.value.toString('hex'));
        break;
    }
  }
  return out;
}

// ---------------------------------------------------------------- writer

export interface PackOptions {
  /** Force every entry's owner (e.g. 0 for images built by an unprivileged user). */
  uid?: number;
  gid?: number;
  /** Fixed mtime (seconds) for reproducible layers. */
  mtime?: number;
}

function octal(n: number, len: number): string {
  return n.toString(8).padStart(len - 1, '0') + '\0';
}

function header(name: string, opts: { mode: number; uid: number; gid: number; size: number; mtime: number; type: string; linkname?: string }): Buffer[] {
  const out: Buffer[] = [];
  const nameBytes = Buffer.byteLength(name);
  const linkBytes = Buffer.byteLength(opts.linkname ?? '');
  let ustarName = name;
  let prefix = '';
  if (nameBytes > 100 || linkBytes > 100) {
    // a pax header carries the long path; ustar fields get a truncated one
    const recs: string[] = [];
    const rec = (k: string, v: string) => {
      const body = ` ${k}=${v}\n`;
      let len = Buffer.byteLength(body) + 1;
      while (String(len).length + Buffer.byteLength(body) !== len) len = String(len).length + Buffer.byteLength(body);
      recs.push(`${len}${body}`);
    };
    if (nameBytes > 100) rec('path', name);
    if (linkBytes > 100) rec('linkpath', opts.linkname ?? '');
    const data = Buffer.from(recs.join(''));
    out.push(...header('PaxHeader', { mode: 0o644, uid: 0, gid: 0, size: data.length, mtime: opts.mtime, type: 'x' }));
    out.push(data, Buffer.alloc((BLOCK - (data.length % BLOCK)) % BLOCK));
    ustarName = name.slice(0, 99);
  }
  const b = Buffer.alloc(BLOCK);
  b.write(ustarName, 0, 100, 'utf8');
  b.write(octal(opts.mode & 0o7777, 8), 100, 'latin1');
  b.write(octal(opts.uid, 8), 108, 'latin1');
  b.write(octal(opts.gid, 8), 116, 'latin1');
  b.write(octal(opts.size, 12), 124, 'latin1');
  b.write(octal(Math.floor(opts.mtime), 12), 136, 'latin1');
  b.write('        ', 148, 'latin1');
  b.write(opts.type, 156, 'latin1');
  if (opts.linkname) b.write(opts.linkname.slice(0, 100), 157, 100, 'utf8');
  b.write('ustar\0', 257, 'latin1');
  b.write('00', 263, 'latin1');
  b.write(prefix, 345, 155, 'utf8');
  let sum = 0;
  for (const x of b) sum += x;
  b.write(octal(sum, 7) + ' ', 148, 'latin1');
  out.push(b);
  prefix = '';
  return out;
}

/** Produces a tar stream of `dir`'s contents (sorted, deterministic). */
export async function* packDirectory(dir: string, opts: PackOptions = {}): AsyncGenerator<Buffer> {
  async function* walk(rel: string): AsyncGenerator<Buffer> {
    const entries = (await fsp.readdir(path.join(dir, rel))).sort();
    for (const name of entries) {
      const r = rel ? `${rel}/${name}` : name;
      const abs = path.join(dir, r);
      const st = await fsp.lstat(abs);
      const common = {
        mode: st.mode,
        uid: opts.uid ?? st.uid,
        gid: opts.gid ?? st.gid,
        mtime: opts.mtime ?? Math.floor(st.mtimeMs / 1000),
      };
      if (st.isDirectory()) {
        yield* header(`${r}/`, { ...common, size: 0, type: '5' });
        yield* walk(r);
      } else if (st.isSymbolicLink()) {
        yield* header(r, { ...common, size: 0, type: '2', linkname: await fsp.readlink(abs) });
      } else if (st.isFile()) {
        yield* header(r, { ...common, size: st.size, type: '0' });
        let written = 0;
        for await (const c of fs.createReadStream(abs)) {
          const buf = c as Buffer;
          written += buf.length;
          yield buf;
        }
        if (written !== st.size) throw new TarError(`${abs} changed while it was packed`);
        const pad = (BLOCK - (st.size % BLOCK)) % BLOCK;
        if (pad) yield Buffer.alloc(pad);
      }
      // sockets, fifos and devices are not packed
    }
  }
  yield* walk('');
  yield Buffer.alloc(BLOCK * 2);
}
