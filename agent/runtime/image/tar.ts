// A small tar reader and writer for image layers (ustar, pax, GNU long names
// and GNU/PAX sparse files). Convoy keeps its own instead of an npm package
// because extracting a layer is more than untarring: whiteouts become overlay
// whiteouts, device nodes and xattrs need the native helper (Node can neither
// mknod nor setxattr), and a layer is hostile input: nothing it contains may
// write outside the directory it is unpacked into. See docs/runtime.md
// ("Unpacking layers safely").
//
// How paths stay inside the root: every entry's parent directory is opened
// component by component, each one relative to the previous directory's fd
// with O_DIRECTORY|O_NOFOLLOW (Node has no openat, so "relative to an fd" is
// the path /proc/self/fd/<fd>/<name>: the kernel resolves <name> inside that
// directory and O_NOFOLLOW refuses a symlink in its place). The leaf is then
// created or replaced by name inside that fd. What decides is the disk, not a
// list of what was unpacked: a symlink anywhere on the way is refused, `..`
// never reaches the kernel (cleanPath refuses it), and a hard link's target is
// resolved the same way.
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { DEFAULT_MAX_HEADER_BYTES, DEFAULT_MAX_LAYER_BYTES, DEFAULT_MAX_LAYER_ENTRIES, DEFAULT_MAX_METADATA_BYTES, type UnpackLimits } from './limits';

/** Work for the native helper (`convoy-init fixup`), in order. */
export type FixupOp =
  | { op: 'whiteout'; path: string }
  | { op: 'opaque'; path: string }
  | { op: 'mknod'; path: string; mode: number; major: number; minor: number; uid: number; gid: number }
  | { op: 'xattr'; path: string; name: string; value: Buffer }
  /** The archive's mtime (seconds) of what the helper made, or of a directory the helper wrote into. */
  | { op: 'mtime'; path: string; mtime: number };

/** Every refusal of a layer's content. The message names the entry. */
export class TarError extends Error {
  override name = 'TarError';
  constructor(
    message: string,
    /** The entry's name as the archive gives it, when the error is about one. */
    readonly entry?: string,
    override readonly cause?: unknown,
  ) {
    super(message);
  }
}

/** Linux PATH_MAX and NAME_MAX: longer names cannot be created anyway; refused early, with the entry's name. */
export const MAX_PATH_BYTES = 4096;
export const MAX_NAME_BYTES = 255;

/**
 * Extended attributes a layer may set. Everything else is dropped (and
 * reported through `onWarning`):
 * - `trusted.*`: overlayfs keeps its own state there (`trusted.overlay.opaque`,
 *   `.redirect`, `.metacopy`, `.origin`); an image setting them could redirect
 *   lookups to other layers' paths. Whiteouts and opaque dirs come from the
 *   `.wh.` entries only, made by the helper.
 * - `user.overlay.*`: the same for overlay's userxattr mode.
 * - `security.*` other than `security.capability`: SELinux/SMACK/IMA labels
 *   belong to the host's policy, not to an image.
 * Kept: `user.*` (application data), `security.capability` (file capabilities,
 * as Docker keeps them: `ping` needs cap_net_raw), POSIX ACLs.
 */
export function xattrAllowed(name: string): boolean {
  if (name.startsWith('user.')) return !name.startsWith('user.overlay.');
  return name === 'security.capability' || name === 'system.posix_acl_access' || name === 'system.posix_acl_default';
}

export interface ExtractOptions {
  limits?: UnpackLimits;
  /** Told about what was dropped (xattrs outside the allowlist). */
  onWarning?: (message: string, entry: string) => void;
  /**
   * Also return `mtime` operations: the archive's mtimes of the nodes the
   * helper makes and of the directories it makes them in (which its mknods
   * touch). The store asks for them; without, those keep the time of unpacking.
   */
  helperTimes?: boolean;
}

const BLOCK = 512;
const WHITEOUT_PREFIX = '.wh.';
const WHITEOUT_META_PREFIX = '.wh..wh.';
const OPAQUE = '.wh..wh..opq';
const S_IFIFO = 0o010000;
const S_IFCHR = 0o020000;
const S_IFBLK = 0o060000;
/** The largest uid/gid: (uid_t)-1 means "leave unchanged" to chown. */
const MAX_ID = 0xfffffffe;
/** Directory fds kept open between entries (most layers list a directory's children together). */
const DIR_CACHE_SIZE = 128;
const { O_RDONLY, O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW, O_DIRECTORY } = fs.constants;

const show = (name: string) => JSON.stringify(name.length > 200 ? `${name.slice(0, 200)}…` : name);

class ChunkReader {
  private buf: Buffer = Buffer.alloc(0);
  private ended = false;
  /** Bytes received from the source so far. */
  total = 0;
  /** Bytes handed out so far: the archive offset of what comes next. */
  offset = 0;
  constructor(
    private readonly it: AsyncIterator<Buffer>,
    private readonly maxBytes: number,
  ) {}

  private async more(): Promise<boolean> {
    if (this.ended) return false;
    const r = await this.it.next();
    if (r.done) {
      this.ended = true;
      return false;
    }
    this.total += r.value.length;
    if (this.total > this.maxBytes) throw new TarError(`layer is larger than ${this.maxBytes} bytes uncompressed (the limit)`);
    this.buf = this.buf.length ? Buffer.concat([this.buf, r.value]) : r.value;
    return true;
  }

  /** n bytes, or undefined at a clean end of input. */
  async take(n: number): Promise<Buffer | undefined> {
    while (this.buf.length < n && (await this.more()));
    if (this.buf.length < n) {
      if (this.buf.length === 0) return undefined;
      throw new TarError('truncated tar archive');
    }
    const out = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(n);
    this.offset += n;
    return out;
  }

  async *stream(n: number): AsyncGenerator<Buffer> {
    let left = n;
    while (left > 0) {
      if (this.buf.length === 0 && !(await this.more())) throw new TarError('truncated tar archive');
      const k = Math.min(left, this.buf.length);
      const out = this.buf.subarray(0, k);
      this.buf = this.buf.subarray(k);
      this.offset += k;
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
    while (await this.more()) this.buf = Buffer.alloc(0);
  }
}

function cstr(b: Buffer, off: number, len: number): string {
  const s = b.subarray(off, off + len);
  const z = s.indexOf(0);
  return (z >= 0 ? s.subarray(0, z) : s).toString('utf8');
}

/** A numeric header field (octal, or GNU base-256); NaN when malformed. */
function num(b: Buffer, off: number, len: number): number {
  if (b[off] & 0x80) {
    if (b[off] === 0xff) return NaN; // negative base-256: no field of ours may be negative
    let v = b[off] & 0x7f;
    for (let i = 1; i < len; i++) v = v * 256 + b[off + i];
    return Number.isSafeInteger(v) ? v : NaN;
  }
  const s = b.toString('latin1', off, off + len).replace(/[\0 ]+$/, '').replace(/^ +/, '');
  if (!/^[0-7]*$/.test(s)) return NaN;
  return s ? parseInt(s, 8) : 0;
}

/** Verifies the header checksum: unsigned sum with the field as spaces (signed sums are accepted, as old tars wrote them). */
function checksumOk(b: Buffer): boolean {
  const want = num(b, 148, 8);
  if (Number.isNaN(want)) return false;
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const x = i >= 148 && i < 156 ? 0x20 : b[i];
    unsigned += x;
    signed += x > 127 ? x - 256 : x;
  }
  return want === unsigned || want === signed;
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
  gnu: boolean;
  xattrs: [string, Buffer][];
  sparse?: Sparse;
}

interface Region {
  offset: number;
  length: number;
}

interface Sparse {
  realSize: number;
  /** Map known from the header (GNU old format, PAX 0.0/0.1); undefined: PAX 1.0, the map leads the data. */
  map?: Region[];
}

function parseHeader(b: Buffer): Header | undefined {
  if (b.every((x) => x === 0)) return undefined;
  const magic = b.toString('latin1', 257, 263);
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
    gnu: magic === 'ustar ' && b[263] === 0x20,
    xattrs: [],
  };
}

/** PAX records, in order (sparse 0.0 repeats keys). Strict: a malformed record refuses the layer. */
function parsePax(data: Buffer, entry: string): [string, Buffer][] {
  const out: [string, Buffer][] = [];
  let off = 0;
  const bad = () => new TarError(`malformed PAX record at byte ${off} of the header of ${show(entry)}`, entry);
  while (off < data.length) {
    const sp = data.indexOf(0x20, off);
    if (sp < 0 || sp - off > 12) throw bad();
    const lenStr = data.toString('latin1', off, sp);
    if (!/^[1-9][0-9]*$/.test(lenStr)) throw bad();
    const end = off + Number(lenStr);
    if (end > data.length || end <= sp + 2 || data[end - 1] !== 0x0a) throw bad();
    const rec = data.subarray(sp + 1, end - 1);
    const eq = rec.indexOf(0x3d);
    if (eq <= 0) throw bad();
    out.push([rec.toString('utf8', 0, eq), rec.subarray(eq + 1)]);
    off = end;
  }
  return out;
}

function paxInt(v: string, key: string, entry: string): number {
  if (!/^[0-9]{1,16}$/.test(v) || !Number.isSafeInteger(Number(v))) throw new TarError(`bad PAX ${key}=${JSON.stringify(v.slice(0, 40))} for ${show(entry)}`, entry);
  return Number(v);
}

function numberList(s: string, key: string, entry: string): number[] {
  return s === '' ? [] : s.split(',').map((x) => paxInt(x, key, entry));
}

function toRegions(nums: number[], entry: string): Region[] {
  if (nums.length % 2) throw new TarError(`sparse map of ${show(entry)} has an odd number of values`, entry);
  const out: Region[] = [];
  for (let i = 0; i < nums.length; i += 2) out.push({ offset: nums[i], length: nums[i + 1] });
  return out;
}

/** Refuses a map whose regions overlap, go backwards or past the real size, or do not add up to the stored data. */
function checkMap(map: Region[], realSize: number, stored: number, entry: string): void {
  let end = 0;
  let sum = 0;
  for (const r of map) {
    if (r.offset < end || r.offset + r.length > realSize) throw new TarError(`sparse map of ${show(entry)} is out of order or past its size ${realSize}`, entry);
    end = r.offset + r.length;
    sum += r.length;
  }
  if (sum !== stored) throw new TarError(`sparse map of ${show(entry)} covers ${sum} bytes but ${stored} are stored`, entry);
}

/** Normalises an archive path to "a/b/c" (a leading "/" is dropped, as GNU tar does); refuses anything climbing out. */
export function cleanPath(p: string): string {
  if (p.includes('\0')) throw new TarError(`tar entry ${show(p)} has a NUL byte in its name`, p);
  if (Buffer.byteLength(p) > MAX_PATH_BYTES) throw new TarError(`tar entry ${show(p)}: name longer than ${MAX_PATH_BYTES} bytes`, p);
  const parts: string[] = [];
  for (const c of p.split('/')) {
    if (c === '' || c === '.') continue;
    if (c === '..') throw new TarError(`tar entry ${show(p)} climbs out of the layer`, p);
    if (Buffer.byteLength(c) > MAX_NAME_BYTES) throw new TarError(`tar entry ${show(p)}: a component is longer than ${MAX_NAME_BYTES} bytes`, p);
    parts.push(c);
  }
  return parts.join('/');
}

const errno = (e: unknown) => (e as NodeJS.ErrnoException).code;
const at = (dirFd: number, name: string) => `/proc/self/fd/${dirFd}/${name}`;

function lstatAt(dirFd: number, name: string): fs.Stats | undefined {
  try {
    return fs.lstatSync(at(dirFd, name));
  } catch (e) {
    if (errno(e) === 'ENOENT') return undefined;
    throw e;
  }
}

/** Directory fds of the tree being unpacked, opened without following symlinks (see the top of the file). */
class Tree {
  private readonly dirs = new Map<string, number>();
  constructor(readonly rootFd: number) {}

  /** The fd of directory `rel` ("" is the root); creates missing directories when `create`. */
  dir(rel: string, entry: string, create: boolean): number {
    if (rel === '') return this.rootFd;
    const hit = this.dirs.get(rel);
    if (hit !== undefined) return hit;
    const slash = rel.lastIndexOf('/');
    const parent = this.dir(slash < 0 ? '' : rel.slice(0, slash), entry, create);
    const name = rel.slice(slash + 1);
    const p = at(parent, name);
    let fd: number;
    try {
      fd = fs.openSync(p, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
    } catch (e) {
      const code = errno(e);
      if (code === 'ENOENT' && create) {
        fs.mkdirSync(p, 0o755);
        fd = fs.openSync(p, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
      } else if (code === 'ENOENT') {
        throw new TarError(`tar entry ${show(entry)}: ${rel} does not exist in the layer`, entry);
      } else if (code === 'ELOOP' || code === 'ENOTDIR') {
        if (lstatAt(parent, name)?.isSymbolicLink()) throw new TarError(`tar entry ${show(entry)} goes through the symlink ${rel}`, entry);
        throw new TarError(`tar entry ${show(entry)}: ${rel} is not a directory`, entry);
      } else {
        throw e;
      }
    }
    this.dirs.set(rel, fd);
    return fd;
  }

  /** Closes the cached fds of `rel` and everything under it (it is being removed or replaced). */
  forget(rel: string): void {
    const prefix = `${rel}/`;
    for (const [k, fd] of this.dirs) {
      if (k === rel || k.startsWith(prefix)) {
        fs.closeSync(fd);
        this.dirs.delete(k);
      }
    }
  }

  /** Called between entries, never while an entry holds fds. */
  trim(): void {
    if (this.dirs.size < DIR_CACHE_SIZE) return;
    for (const fd of this.dirs.values()) fs.closeSync(fd);
    this.dirs.clear();
  }

  close(): void {
    for (const fd of this.dirs.values()) fs.closeSync(fd);
    this.dirs.clear();
    fs.closeSync(this.rootFd);
  }
}

/** Fixup operations with the ones of replaced entries dropped (the last entry of a name wins). */
class PendingOps {
  private readonly ops: (FixupOp | undefined)[] = [];
  private readonly byPath = new Map<string, number[]>();

  push(op: FixupOp): void {
    this.ops.push(op);
    if (op.op === 'mknod' || op.op === 'xattr' || op.op === 'mtime') {
      const l = this.byPath.get(op.path);
      if (l) l.push(this.ops.length - 1);
      else this.byPath.set(op.path, [this.ops.length - 1]);
    }
  }

  mknodAt(rel: string): Extract<FixupOp, { op: 'mknod' }> | undefined {
    for (const i of this.byPath.get(rel) ?? []) {
      const o = this.ops[i];
      if (o?.op === 'mknod') return o;
    }
    return undefined;
  }

  drop(rel: string, subtree: boolean): void {
    const kill = (k: string) => {
      for (const i of this.byPath.get(k) ?? []) this.ops[i] = undefined;
      this.byPath.delete(k);
    };
    kill(rel);
    if (!subtree || this.byPath.size === 0) return;
    const prefix = `${rel}/`;
    for (const k of [...this.byPath.keys()]) if (k.startsWith(prefix)) kill(k);
  }

  list(): FixupOp[] {
    return this.ops.filter((o): o is FixupOp => o !== undefined);
  }
}

/**
 * Extracts a layer tar (already decompressed) into the empty directory `dest`.
 * Returns what the native helper must still do (whiteouts, device nodes,
 * xattrs). Files are created with their owners and modes (the agent runs as
 * root). Refusals are TarErrors naming the entry; `dest` is then left
 * half-filled for the caller to remove.
 */
export async function extractLayer(source: AsyncIterable<Buffer>, dest: string, opts: ExtractOptions = {}): Promise<FixupOp[]> {
  const lim = opts.limits ?? {};
  const maxEntries = lim.maxEntries ?? DEFAULT_MAX_LAYER_ENTRIES;
  const maxHeader = lim.maxHeaderBytes ?? DEFAULT_MAX_HEADER_BYTES;
  const maxMeta = lim.maxMetadataBytes ?? DEFAULT_MAX_METADATA_BYTES;
  const maxLayer = lim.maxLayerBytes ?? DEFAULT_MAX_LAYER_BYTES;
  const reader = new ChunkReader(source[Symbol.asyncIterator](), maxLayer);
  const tree = new Tree(fs.openSync(dest, O_RDONLY | O_DIRECTORY));
  const ops = new PendingOps();
  const dirTimes = new Map<string, number>();
  let entries = 0;
  let meta = 0;
  let pax: [string, Buffer][] | undefined;
  let longName: string | undefined;
  let longLink: string | undefined;

  /** Counts `n` more bytes of metadata; `sizeSoFar` is the whole header's (or map's) size. */
  const metadata = (n: number, what: string, entry: string, sizeSoFar = n) => {
    if (sizeSoFar > maxHeader) throw new TarError(`${what} of ${show(entry)} is ${sizeSoFar} bytes, over the limit of ${maxHeader}`, entry);
    meta += n;
    if (meta > maxMeta) throw new TarError(`layer has more than ${maxMeta} bytes of PAX headers, long names and sparse maps (at ${show(entry)})`, entry);
  };

  /** Removes whatever is at `base` in `dirFd` (keeps a directory when `keepDir`); returns whether a directory is kept. */
  const replace = (dirFd: number, rel: string, base: string, keepDir: boolean): boolean => {
    const st = lstatAt(dirFd, base);
    if (!st) return false;
    if (st.isDirectory()) {
      if (keepDir) return true;
      tree.forget(rel);
      ops.drop(rel, true);
      for (const k of dirTimes.keys()) if (k === rel || k.startsWith(`${rel}/`)) dirTimes.delete(k);
      fs.rmSync(at(dirFd, base), { recursive: true, force: true });
      return false;
    }
    ops.drop(rel, false);
    fs.unlinkSync(at(dirFd, base));
    return false;
  };

  try {
    for (;;) {
      const block = await reader.take(BLOCK);
      if (!block) break;
      const h = parseHeader(block);
      if (!h) break; // end-of-archive marker
      const rawName = longName ?? h.name;
      if (!checksumOk(block)) throw new TarError(`bad header checksum at byte ${reader.offset - BLOCK} (entry ${show(rawName)})`, rawName);
      if (Number.isNaN(h.size)) throw new TarError(`bad size field in the header of ${show(rawName)}`, rawName);
      tree.trim();

      if (h.type === 'x' || h.type === 'g' || h.type === 'L' || h.type === 'K') {
        // the header block counts too: empty PAX headers cannot be repeated for free
        metadata(h.size + BLOCK, h.type === 'L' || h.type === 'K' ? 'GNU long name' : 'PAX header', rawName, h.size);
        const chunks: Buffer[] = [];
        for await (const c of reader.stream(h.size)) chunks.push(Buffer.from(c));
        await reader.skip(padding(h.size));
        const data = Buffer.concat(chunks);
        // PAX global headers ('g') are checked, then ignored: Convoy applies no archive-wide defaults.
        if (h.type === 'x') pax = parsePax(data, rawName);
        else if (h.type === 'g') parsePax(data, rawName);
        else if (h.type === 'L') longName = cstr(data, 0, data.length);
        else longLink = cstr(data, 0, data.length);
        continue;
      }

      if (++entries > maxEntries) throw new TarError(`layer has more than ${maxEntries} entries (at ${show(rawName)})`, rawName);
      if (longName !== undefined) h.name = longName;
      if (longLink !== undefined) h.linkname = longLink;
      if (h.type === 'S') h.sparse = await gnuSparse(block, h, reader, (n, soFar) => metadata(n, 'sparse map', h.name, soFar));
      if (pax) applyPax(h, pax);
      pax = undefined;
      longName = undefined;
      longLink = undefined;
      await extractEntry(h);
    }
    await reader.drain();
    for (const [rel, t] of dirTimes) {
      tree.trim();
      try {
        fs.futimesSync(tree.dir(rel, rel, false), t, t);
      } catch {
        // replaced by a later entry
      }
    }
  } finally {
    tree.close();
  }
  // the helper's mknods and whiteouts change their directories' mtimes: it sets them back after
  const list = ops.list().filter((o) => o.op !== 'mtime' || opts.helperTimes);
  if (!opts.helperTimes) return list;
  const touched = new Set<string>();
  for (const o of list) {
    if (o.op !== 'mknod' && o.op !== 'whiteout') continue;
    const slash = o.path.lastIndexOf('/');
    const parent = slash < 0 ? '' : o.path.slice(0, slash);
    const t = dirTimes.get(parent);
    if (t !== undefined) touched.add(parent);
  }
  for (const d of [...touched].sort().reverse()) list.push({ op: 'mtime', path: d, mtime: dirTimes.get(d) as number });
  return list;

  async function extractEntry(h: Header): Promise<void> {
    const entry = h.name;
    for (const [k, v] of [['mode', h.mode], ['uid', h.uid], ['gid', h.gid], ['mtime', h.mtime]] as const) {
      if (Number.isNaN(v)) throw new TarError(`bad ${k} field in the header of ${show(entry)}`, entry);
    }
    if (h.uid > MAX_ID || h.gid > MAX_ID) throw new TarError(`tar entry ${show(entry)}: uid/gid ${h.uid}/${h.gid} out of range`, entry);
    const dataPad = h.size + padding(h.size);
    const rel = cleanPath(entry);
    if (rel === '') {
      // "./": the layer root is Convoy's directory; its metadata is not taken from the image
      await reader.skip(dataPad);
      return;
    }
    const slash = rel.lastIndexOf('/');
    const parentRel = slash < 0 ? '' : rel.slice(0, slash);
    const base = rel.slice(slash + 1);
    try {
      const dirFd = tree.dir(parentRel, entry, true);
      if (base.startsWith(WHITEOUT_PREFIX)) {
        if (base === OPAQUE) ops.push({ op: 'opaque', path: parentRel });
        else if (!base.startsWith(WHITEOUT_META_PREFIX)) {
          // other ".wh..wh." names are aufs bookkeeping, never unpacked (as Docker and containerd do)
          const target = base.slice(WHITEOUT_PREFIX.length);
          if (target === '' || target === '.' || target === '..') throw new TarError(`whiteout ${show(entry)} names no entry of its directory`, entry);
          ops.push({ op: 'whiteout', path: parentRel ? `${parentRel}/${target}` : target });
        }
        await reader.skip(dataPad);
        return;
      }
      const mode = h.mode & 0o7777;
      const p = at(dirFd, base);
      let type = h.type;
      if ((type === '0' || type === '\0') && entry.endsWith('/') && !h.sparse) type = '5'; // pre-POSIX directories
      switch (type) {
        case '0':
        case '7':
        case '\0':
        case 'S': {
          replace(dirFd, rel, base, false);
          const fd = fs.openSync(p, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600);
          try {
            if (h.sparse) await writeSparse(fd, h, h.sparse, entry);
            else {
              for await (const c of reader.stream(h.size)) fs.writeSync(fd, c);
              await reader.skip(padding(h.size));
            }
            fs.fchownSync(fd, h.uid, h.gid);
            fs.fchmodSync(fd, mode); // after chown, which clears setuid bits
            fs.futimesSync(fd, h.mtime, h.mtime);
          } finally {
            fs.closeSync(fd);
          }
          break;
        }
        case '5': {
          if (!replace(dirFd, rel, base, true)) fs.mkdirSync(p, 0o700);
          const fd = tree.dir(rel, entry, false);
          fs.fchownSync(fd, h.uid, h.gid);
          fs.fchmodSync(fd, mode);
          dirTimes.set(rel, h.mtime); // applied once every entry is in: adding children changes it
          await reader.skip(dataPad);
          break;
        }
        case '2': {
          if (h.linkname === '' || h.linkname.includes('\0')) throw new TarError(`symlink ${show(entry)} has an empty or invalid target`, entry);
          replace(dirFd, rel, base, false);
          fs.symlinkSync(h.linkname, p);
          fs.lchownSync(p, h.uid, h.gid);
          fs.lutimesSync(p, h.mtime, h.mtime);
          await reader.skip(dataPad);
          break;
        }
        case '1': {
          const target = cleanPath(h.linkname);
          if (target === '' || target === rel) throw new TarError(`hard link ${show(entry)} points at ${show(h.linkname)}`, entry);
          // replaced first: were the target under the replaced entry, it is gone and the link refused
          replace(dirFd, rel, base, false);
          const ts = target.lastIndexOf('/');
          const tdir = tree.dir(ts < 0 ? '' : target.slice(0, ts), entry, false);
          const tbase = target.slice(ts + 1);
          const tst = lstatAt(tdir, tbase);
          if (!tst) throw new TarError(`hard link ${show(entry)}: its target ${show(h.linkname)} is not in the layer`, entry);
          if (tst.isDirectory()) throw new TarError(`hard link ${show(entry)}: its target ${show(h.linkname)} is a directory`, entry);
          const dev = ops.mknodAt(target);
          if (dev) {
            // the target is a device still to be made by the helper: make this one too
            fs.closeSync(fs.openSync(p, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600));
            ops.push({ ...dev, path: rel });
            ops.push({ op: 'mtime', path: rel, mtime: h.mtime });
          } else {
            fs.linkSync(at(tdir, tbase), p); // link(2) does not follow a symlink target: it links the symlink itself
          }
          await reader.skip(dataPad);
          break;
        }
        case '3':
        case '4':
        case '6': {
          if (Number.isNaN(h.devmajor) || Number.isNaN(h.devminor)) throw new TarError(`bad device numbers in the header of ${show(entry)}`, entry);
          const typeBits = type === '3' ? S_IFCHR : type === '4' ? S_IFBLK : S_IFIFO;
          replace(dirFd, rel, base, false);
          // a placeholder holds the name so that later entries see it on disk; the helper replaces it
          fs.closeSync(fs.openSync(p, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600));
          ops.push({ op: 'mknod', path: rel, mode: typeBits | mode, major: h.devmajor, minor: h.devminor, uid: h.uid, gid: h.gid });
          ops.push({ op: 'mtime', path: rel, mtime: h.mtime });
          await reader.skip(dataPad);
          break;
        }
        default:
          throw new TarError(`tar entry ${show(entry)} has the unsupported type ${JSON.stringify(h.type)}`, entry);
      }
      for (const [name, value] of h.xattrs) {
        if (xattrAllowed(name)) ops.push({ op: 'xattr', path: rel, name, value });
        else opts.onWarning?.(`extended attribute ${name} of ${show(entry)} dropped (not on the allowlist)`, entry);
      }
    } catch (e) {
      if (e instanceof TarError && e.entry !== undefined) throw e;
      throw new TarError(`tar entry ${show(entry)}: ${e instanceof Error ? e.message : String(e)}`, entry, e);
    }
  }

  async function writeSparse(fd: number, h: Header, sp: Sparse, entry: string): Promise<void> {
    if (sp.realSize > maxLayer) throw new TarError(`sparse file ${show(entry)} is ${sp.realSize} bytes, over the layer limit of ${maxLayer}`, entry);
    let stored = h.size;
    let map = sp.map;
    if (!map) {
      // PAX 1.0: decimal lines "count\n(offset\nlength\n)*", padded to a block, lead the data
      const nums: number[] = [];
      let text = '';
      let mapBytes = 0;
      while (nums.length === 0 || nums.length < 1 + 2 * nums[0]) {
        const b = stored >= BLOCK ? await reader.take(BLOCK) : undefined;
        if (!b) throw new TarError(`sparse map of ${show(entry)} runs past its data`, entry);
        mapBytes += BLOCK;
        metadata(BLOCK, 'sparse map', entry, mapBytes);
        stored -= BLOCK;
        const lines = (text + b.toString('latin1')).split('\n');
        text = lines.pop() ?? '';
        for (const l of lines) {
          if (nums.length > 0 && nums.length >= 1 + 2 * nums[0]) break;
          nums.push(paxInt(l, 'sparse map', entry));
        }
      }
      map = toRegions(nums.slice(1), entry);
    }
    checkMap(map, sp.realSize, stored, entry);
    fs.ftruncateSync(fd, sp.realSize);
    for (const r of map) {
      let pos = r.offset;
      for await (const c of reader.stream(r.length)) {
        fs.writeSync(fd, c, 0, c.length, pos);
        pos += c.length;
      }
    }
    await reader.skip(padding(h.size));
  }
}

function padding(n: number): number {
  return (BLOCK - (n % BLOCK)) % BLOCK;
}

/** Old GNU sparse ('S'): the map is in the header (4 regions) and in extension blocks (21 each). */
async function gnuSparse(block: Buffer, h: Header, reader: ChunkReader, account: (n: number, soFar: number) => void): Promise<Sparse> {
  const regions: Region[] = [];
  const read = (b: Buffer, off: number, count: number) => {
    for (let i = 0; i < count; i++) {
      const o = off + i * 24;
      if (b[o] === 0) break;
      const offset = num(b, o, 12);
      const length = num(b, o + 12, 12);
      if (Number.isNaN(offset) || Number.isNaN(length)) throw new TarError(`bad sparse map in the header of ${show(h.name)}`, h.name);
      regions.push({ offset, length });
    }
  };
  read(block, 386, 4);
  let extended = block[482] !== 0;
  const realSize = num(block, 483, 12);
  if (Number.isNaN(realSize)) throw new TarError(`bad real size in the header of sparse file ${show(h.name)}`, h.name);
  let mapBytes = 0;
  while (extended) {
    mapBytes += BLOCK;
    account(BLOCK, mapBytes);
    const ext = await reader.take(BLOCK);
    if (!ext) throw new TarError('truncated tar archive', h.name);
    read(ext, 0, 21);
    extended = ext[504] !== 0;
  }
  return { realSize, map: regions };
}

function applyPax(h: Header, pax: [string, Buffer][]): void {
  const e = h.name;
  const sparseNums: number[] = [];
  let major: string | undefined;
  let sparseSize: number | undefined;
  let sparseMap: number[] | undefined;
  for (const [k, v] of pax) {
    const s = v.toString('utf8');
    switch (k) {
      case 'path':
        h.name = s;
        break;
      case 'linkpath':
        h.linkname = s;
        break;
      case 'size':
        h.size = paxInt(s, k, e);
        break;
      case 'uid':
        h.uid = paxInt(s, k, e);
        break;
      case 'gid':
        h.gid = paxInt(s, k, e);
        break;
      case 'mtime':
        if (!/^-?[0-9]{1,16}(\.[0-9]{1,9})?$/.test(s)) throw new TarError(`bad PAX mtime for ${show(e)}`, e);
        h.mtime = parseFloat(s);
        break;
      case 'GNU.sparse.major':
        major = s;
        break;
      case 'GNU.sparse.name':
        h.name = s;
        break;
      case 'GNU.sparse.size':
      case 'GNU.sparse.realsize':
        sparseSize = paxInt(s, k, e);
        break;
      case 'GNU.sparse.offset':
      case 'GNU.sparse.numbytes':
        sparseNums.push(paxInt(s, k, e));
        break;
      case 'GNU.sparse.map':
        sparseMap = numberList(s, k, e);
        break;
      default:
        if (k.startsWith('SCHILY.xattr.')) h.xattrs.push([k.slice('SCHILY.xattr.'.length), v]);
      // other keys (atime, ctime, uname, gname, comment, charset, SCHILY.acl...) carry nothing Convoy applies
    }
  }
  if (sparseSize === undefined) return;
  if (h.type !== '0' && h.type !== '\0' && h.type !== '7') throw new TarError(`PAX sparse keys on ${show(h.name)}, which is not a regular file`, h.name);
  if (major === '1') h.sparse = { realSize: sparseSize };
  else if (major !== undefined) throw new TarError(`unsupported PAX sparse format ${major} of ${show(h.name)}`, h.name);
  else h.sparse = { realSize: sparseSize, map: toRegions(sparseMap ?? sparseNums, h.name) };
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
      case 'mtime': {
        const sec = Math.floor(o.mtime);
        out.push('mtime', o.path, String(sec), String(Math.min(999_999_999, Math.round((o.mtime - sec) * 1e9))));
        break;
      }
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
