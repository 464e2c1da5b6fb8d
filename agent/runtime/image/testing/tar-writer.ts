// A tar writer for tests that can write what no honest tar does, with every entry type
// byte, any name (absolute, "..", 5,000 bytes), PAX records of any size, GNU
// long names, sparse maps, wrong checksums and size fields. The hostile-layer
// corpus (hostile.ts) and the fuzzer's seeds (fuzz.ts) are made with it.
const BLOCK = 512;

export interface RawEntry {
  name: string;
  /** Type byte: '0' file, '1' hard link, '2' symlink, '3' char, '4' block, '5' dir, '6' fifo, 'S' GNU sparse, anything else. */
  type?: string;
  data?: Buffer | string;
  linkname?: string;
  mode?: number;
  uid?: number;
  gid?: number;
  mtime?: number;
  devmajor?: number;
  devminor?: number;
  /** PAX records written in an 'x' header before this entry (order and duplicates kept). */
  pax?: [string, string | Buffer][];
  /** Write the name (and link name) as GNU 'L'/'K' headers instead of truncating them. */
  gnuLongNames?: boolean;
  /** Size field to write instead of the data's length. */
  sizeField?: number;
  /** Store a checksum off by one. */
  badChecksum?: boolean;
  /** GNU old sparse: regions in the header (up to 4) and extension blocks. `data` is the stored data. */
  gnuSparse?: { realSize: number; map: [number, number][] };
  /** GNU magic ("ustar  \0") instead of POSIX ("ustar\0" "00"). */
  gnu?: boolean;
}

function octal(n: number, len: number): string {
  return n.toString(8).padStart(len - 1, '0') + '\0';
}

function seal(b: Buffer, bad = false): Buffer {
  b.write('        ', 148, 'latin1');
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += b[i];
  b.write(octal(sum + (bad ? 1 : 0), 7) + ' ', 148, 'latin1');
  return b;
}

function pad(data: Buffer): Buffer[] {
  const p = (BLOCK - (data.length % BLOCK)) % BLOCK;
  return p ? [data, Buffer.alloc(p)] : [data];
}

/** One PAX record "<len> <key>=<value>\n" (the length counts itself). */
export function paxRecord(key: string, value: string | Buffer): Buffer {
  const body = Buffer.concat([Buffer.from(` ${key}=`), Buffer.from(value), Buffer.from('\n')]);
  let len = body.length + 1;
  while (String(len).length + body.length !== len) len = String(len).length + body.length;
  return Buffer.concat([Buffer.from(String(len)), body]);
}

/** A header block with the given fields (checksum computed unless asked otherwise). */
export function header(e: RawEntry & { size: number }): Buffer {
  const b = Buffer.alloc(BLOCK);
  b.write(e.name, 0, 100, 'utf8');
  b.write(octal(e.mode ?? (e.type === '5' ? 0o755 : 0o644), 8), 100, 'latin1');
  b.write(octal(e.uid ?? 0, 8), 108, 'latin1');
  b.write(octal(e.gid ?? 0, 8), 116, 'latin1');
  b.write(octal(e.size, 12), 124, 'latin1');
  b.write(octal(e.mtime ?? 1_700_000_000, 12), 136, 'latin1');
  b.write(e.type ?? '0', 156, 'latin1');
  if (e.linkname) b.write(e.linkname, 157, 100, 'utf8');
  if (e.gnu) b.write('ustar  \0', 257, 'latin1');
  else {
    b.write('ustar\0', 257, 'latin1');
    b.write('00', 263, 'latin1');
  }
  b.write(octal(e.devmajor ?? 0, 8), 329, 'latin1');
  b.write(octal(e.devminor ?? 0, 8), 337, 'latin1');
  return b;
}

/** The blocks of one entry (with its PAX / long-name headers before it). */
export function entryBlocks(e: RawEntry): Buffer[] {
  const out: Buffer[] = [];
  const data = Buffer.from(e.data ?? '');
  if (e.pax?.length) {
    const body = Buffer.concat(e.pax.map(([k, v]) => paxRecord(k, v)));
    out.push(seal(header({ name: 'PaxHeaders/x', type: 'x', size: body.length })), ...pad(body));
  }
  if (e.gnuLongNames) {
    for (const [t, v] of [['L', e.name], ['K', e.linkname]] as const) {
      if (!v || Buffer.byteLength(v) < 100) continue;
      const body = Buffer.from(v + '\0');
      out.push(seal(header({ name: '././@LongLink', type: t, size: body.length, gnu: true })), ...pad(body));
    }
  }
  const h = header({ ...e, size: e.sizeField ?? data.length });
  if (e.gnuSparse) {
    const { realSize, map } = e.gnuSparse;
    h.write('ustar  \0', 257, 'latin1');
    const put = (blk: Buffer, off: number, r: [number, number]) => {
      blk.write(octal(r[0], 12), off, 'latin1');
      blk.write(octal(r[1], 12), off + 12, 'latin1');
    };
    map.slice(0, 4).forEach((r, i) => put(h, 386 + i * 24, r));
    h.write(octal(realSize, 12), 483, 'latin1');
    const rest = map.slice(4);
    if (rest.length) h[482] = 1;
    out.push(seal(h, e.badChecksum));
    for (let i = 0; i < rest.length; i += 21) {
      const ext = Buffer.alloc(BLOCK);
      rest.slice(i, i + 21).forEach((r, k) => put(ext, k * 24, r));
      if (i + 21 < rest.length) ext[504] = 1;
      out.push(ext);
    }
  } else {
    out.push(seal(h, e.badChecksum));
  }
  out.push(...pad(data));
  return out;
}

/** A whole archive: the entries, then the two zero blocks of its end (unless `end` is false). */
export function tarOf(entries: RawEntry[], opts: { end?: boolean } = {}): Buffer {
  const out: Buffer[] = [];
  for (const e of entries) out.push(...entryBlocks(e));
  if (opts.end !== false) out.push(Buffer.alloc(2 * BLOCK));
  return Buffer.concat(out);
}

/** Feeds a buffer in odd-sized chunks, as a network stream would. */
export async function* chunks(b: Buffer, size = 700): AsyncGenerator<Buffer> {
  for (let i = 0; i < b.length; i += size) yield b.subarray(i, i + size);
}
