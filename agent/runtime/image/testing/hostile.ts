// The hostile-layer corpus: layers that try to write outside the directory
// they are unpacked into, to exhaust the agent, or to smuggle what an image
// must not carry. Each is refused with an error naming the entry, or
// contained (unpacked, with everything inside the root). hostile.test.ts
// unpacks each into <tmp>/root beside <tmp>/outside (which the archives aim
// at) and checks that nothing outside <tmp>/root changed.
import { gzipSync } from 'node:zlib';
import type { UnpackLimits } from '../limits';
import type { FixupOp } from '../tar';
import { tarOf, type RawEntry } from './tar-writer';

export interface HostileCase {
  name: string;
  /** The archive; `outside` is the absolute path of a directory beside the root (with files `victim` and `secret`). */
  tar(outside: string): Buffer;
  /** The blob is gzip-compressed (the store's usual layers). */
  gzip?: boolean;
  limits?: UnpackLimits;
  /** Refused, with a message matching this; else contained. */
  refused?: RegExp;
  /** For contained cases: what the root must hold (paths relative to it). Throws if not. */
  check?(c: ContainedChecks, ops: FixupOp[], outside: string): void;
}

/** What checks of contained cases use (so this file needs no test framework). */
export interface ContainedChecks {
  read(rel: string): string;
  type(rel: string): 'file' | 'dir' | 'symlink' | 'char' | 'block' | 'fifo' | 'missing' | 'other';
  mode(rel: string): number;
  link(rel: string): string;
  equal<T>(got: T, want: T, what: string): void;
}

const file = (name: string, data: string | Buffer = 'x', extra: Partial<RawEntry> = {}): RawEntry => ({ name, type: '0', data, ...extra });
const dir = (name: string, extra: Partial<RawEntry> = {}): RawEntry => ({ name, type: '5', ...extra });
const symlink = (name: string, target: string): RawEntry => ({ name, type: '2', linkname: target });
const hardlink = (name: string, target: string): RawEntry => ({ name, type: '1', linkname: target });
const MiB = 1024 * 1024;

export const HOSTILE_CASES: HostileCase[] = [
  // ---- symlink swaps: a symlink to the outside, then an entry of each type through it
  { name: 'file through a symlink', tar: (out) => tarOf([symlink('a', out), file('a/evil', 'pwned')]), refused: /"a\/evil" goes through the symlink a/ },
  { name: 'directory through a symlink', tar: (out) => tarOf([symlink('a', out), dir('a/evil/')]), refused: /"a\/evil\/" goes through the symlink a/ },
  { name: 'symlink through a symlink', tar: (out) => tarOf([symlink('a', out), symlink('a/evil', '/etc/passwd')]), refused: /goes through the symlink a/ },
  { name: 'hard link through a symlink', tar: (out) => tarOf([file('f', 'data'), symlink('a', out), hardlink('a/evil', 'f')]), refused: /goes through the symlink a/ },
  { name: 'hard link to a file through a symlink', tar: (out) => tarOf([symlink('a', out), hardlink('stolen', 'a/secret')]), refused: /"stolen" goes through the symlink a/ },
  { name: 'device through a symlink', tar: (out) => tarOf([symlink('a', out), { name: 'a/null', type: '3', devmajor: 1, devminor: 3 }]), refused: /"a\/null" goes through the symlink a/ },
  { name: 'whiteout through a symlink', tar: (out) => tarOf([symlink('a', out), file('a/.wh.victim', '')]), refused: /"a\/.wh.victim" goes through the symlink a/ },
  { name: 'opaque marker through a symlink', tar: (out) => tarOf([symlink('a', out), file('a/.wh..wh..opq', '')]), refused: /goes through the symlink a/ },
  { name: 'symlink deep in the path', tar: (out) => tarOf([dir('d/'), dir('d/e/'), symlink('d/e/f', out), file('d/e/f/g/evil')]), refused: /goes through the symlink d\/e\/f/ },
  {
    name: 'symlink then a file of the same name replaces the symlink',
    tar: (out) => tarOf([symlink('a', `${out}/victim`), file('a', 'mine')]),
    check: (c) => {
      c.equal(c.type('a'), 'file', 'a');
      c.equal(c.read('a'), 'mine', 'content of a');
    },
  },
  {
    name: 'symlink then a directory of the same name replaces the symlink',
    tar: (out) => tarOf([symlink('a', out), dir('a/'), file('a/f', 'inside')]),
    check: (c) => {
      c.equal(c.type('a'), 'dir', 'a');
      c.equal(c.read('a/f'), 'inside', 'a/f');
    },
  },
  {
    name: 'hard link to a symlink links the symlink, never its target',
    tar: (out) => tarOf([symlink('s', `${out}/secret`), hardlink('h', 's')]),
    check: (c) => {
      c.equal(c.type('h'), 'symlink', 'h');
      c.equal(c.link('h').endsWith('/secret'), true, 'h points where s does');
    },
  },
  // ---- names
  { name: '".." component', tar: () => tarOf([file('../escape', 'pwned')]), refused: /"..\/escape" climbs out of the layer/ },
  { name: '".." in the middle', tar: () => tarOf([dir('a/'), file('a/../../escape', 'pwned')]), refused: /climbs out of the layer/ },
  {
    name: 'absolute name lands inside the root',
    tar: (out) => tarOf([file(`${out}/victim`, 'pwned', { pax: [['path', `${out}/victim`]] })]),
    check: (c, _ops, out) => c.equal(c.read(`${out.slice(1)}/victim`), 'pwned', 'the file, under the root'),
  },
  { name: 'name longer than PATH_MAX', tar: () => tarOf([file('x', 'x', { pax: [['path', 'd/'.repeat(2100) + 'f']] })]), refused: /name longer than 4096 bytes/ },
  { name: 'component longer than NAME_MAX (GNU long name)', tar: () => tarOf([file('n'.repeat(300), 'x', { gnuLongNames: true })]), refused: /component is longer than 255 bytes/ },
  { name: 'NUL byte in a PAX path', tar: () => tarOf([file('x', 'x', { pax: [['path', 'a\0b']] })]), refused: /NUL byte/ },
  // ---- links
  { name: 'hard link out of the tree with ".."', tar: () => tarOf([hardlink('h', '../../../etc/passwd')]), refused: /climbs out of the layer/ },
  { name: 'hard link to an absolute host path', tar: () => tarOf([hardlink('h', '/etc/passwd')]), refused: /"h": etc does not exist in the layer/ },
  { name: 'hard link to a directory', tar: () => tarOf([dir('d/'), hardlink('h', 'd')]), refused: /"h": its target "d" is a directory/ },
  // ---- whiteouts
  { name: 'whiteout of ".."', tar: () => tarOf([dir('a/'), file('a/.wh..', '')]), refused: /whiteout "a\/.wh.." names no entry/ },
  { name: 'whiteout of "." at the root', tar: () => tarOf([file('.wh..', '')]), refused: /names no entry/ },
  {
    name: 'whiteout of an entry of the same layer keeps the entry',
    tar: () => tarOf([file('keep', 'mine'), file('.wh.keep', '')]),
    check: (c, ops) => {
      c.equal(c.read('keep'), 'mine', 'keep');
      c.equal(ops.length, 1, 'one whiteout op');
    },
  },
  {
    name: 'whiteouts and opaque markers become overlay whiteouts inside the root',
    tar: () => tarOf([dir('etc/'), file('etc/.wh.gone', ''), dir('var/'), file('var/.wh..wh..opq', ''), file('.wh..wh.plnk', '')]),
    check: (c) => {
      c.equal(c.type('etc/gone'), 'char', 'etc/gone');
      c.equal(c.type('etc/.wh.gone'), 'missing', 'the marker itself');
      c.equal(c.type('.wh..wh.plnk'), 'missing', 'aufs bookkeeping is skipped');
    },
  },
  // ---- replacing entries of every type by every type
  {
    name: 'file replaces a directory with content in it',
    tar: () => tarOf([dir('d/'), dir('d/sub/'), file('d/sub/deep', 'old'), { name: 'd/dev', type: '3', devmajor: 1, devminor: 3 }, file('d', 'now a file')]),
    check: (c, ops) => {
      c.equal(c.read('d'), 'now a file', 'd');
      c.equal(ops.length, 0, 'the device under d is not made');
    },
  },
  {
    name: 'device replaced by a file, file by a device, directory by a symlink',
    tar: (out) => tarOf([{ name: 'x', type: '3', devmajor: 1, devminor: 3 }, file('x', 'file'), file('y'), { name: 'y', type: '6' }, dir('z/'), file('z/in'), symlink('z', out)]),
    check: (c) => {
      c.equal(c.type('x'), 'file', 'x');
      c.equal(c.type('y'), 'fifo', 'y');
      c.equal(c.type('z'), 'symlink', 'z');
    },
  },
  // ---- devices, setuid, xattrs: contained (the store is 0700, overlay mounts are nodev)
  {
    name: 'device nodes are made inside the root only',
    tar: () => tarOf([dir('dev/'), { name: 'dev/kmsg', type: '3', devmajor: 1, devminor: 11 }, { name: 'dev/sda', type: '4', devmajor: 8, devminor: 0 }, hardlink('dev/kmsg2', 'dev/kmsg')]),
    check: (c) => {
      c.equal(c.type('dev/kmsg'), 'char', 'dev/kmsg');
      c.equal(c.type('dev/sda'), 'block', 'dev/sda');
      c.equal(c.type('dev/kmsg2'), 'char', 'hard link to a device');
    },
  },
  {
    name: 'setuid root binary keeps its mode inside the root',
    tar: () => tarOf([file('bin/su', '#!/bin/sh\n', { mode: 0o4755, uid: 0 }), file('bin/sg', 'x', { mode: 0o2755, gid: 0 })]),
    check: (c) => {
      c.equal(c.mode('bin/su'), 0o4755, 'bin/su');
      c.equal(c.mode('bin/sg'), 0o2755, 'bin/sg');
    },
  },
  {
    name: 'xattrs outside the allowlist are dropped',
    tar: () =>
      tarOf([
        file('f', 'x', {
          pax: [
            ['SCHILY.xattr.trusted.overlay.redirect', '/etc'],
            ['SCHILY.xattr.trusted.overlay.opaque', 'y'],
            ['SCHILY.xattr.user.overlay.origin', 'x'],
            ['SCHILY.xattr.trusted.evil', 'x'],
            ['SCHILY.xattr.security.selinux', 'system_u:object_r:shadow_t:s0'],
            ['SCHILY.xattr.user.kept', 'yes'],
          ],
        }),
      ]),
    check: (c, ops) => c.equal(JSON.stringify(ops.map((o) => (o.op === 'xattr' ? o.name : o.op))), '["user.kept"]', 'xattr ops'),
  },
  // ---- malformed and oversized
  { name: 'bad header checksum', tar: () => tarOf([file('ok'), file('bad', 'x', { badChecksum: true })]), refused: /bad header checksum .*"bad"/ },
  { name: 'unknown entry type', tar: () => tarOf([{ name: 'weird', type: 'Z' }]), refused: /"weird" has the unsupported type "Z"/ },
  { name: 'size field past the end', tar: () => tarOf([file('big', 'x', { sizeField: 10 * MiB })], { end: false }), refused: /truncated tar archive/ },
  { name: 'huge PAX header', tar: () => tarOf([file('f', 'x', { pax: [['comment', 'p'.repeat(2 * MiB)]] })]), refused: /PAX header of .* is \d+ bytes, over the limit of 1048576/ },
  {
    name: 'PAX bomb: many PAX headers',
    limits: { maxMetadataBytes: MiB },
    tar: () => tarOf(Array.from({ length: 8 }, (_, i) => file(`f${i}`, 'x', { pax: [['comment', 'p'.repeat(200_000)]] }))),
    refused: /more than 1048576 bytes of PAX headers/,
  },
  { name: 'PAX bomb: many records', tar: () => tarOf([file('f', 'x', { pax: Array.from({ length: 50_000 }, (_, i) => ['comment', `record ${i}`] as [string, string]) })]), refused: /over the limit of 1048576/ },
  { name: 'malformed PAX record', tar: () => tarOf([file('f', 'x', { pax: [['path', 'ok']] })]).fill(0x39, 512, 514), refused: /malformed PAX record|bad header checksum/ },
  { name: 'too many entries', limits: { maxEntries: 100 }, tar: () => tarOf(Array.from({ length: 101 }, (_, i) => file(`f${i}`))), refused: /more than 100 entries \(at "f100"\)/ },
  {
    name: 'gzip bomb',
    gzip: true,
    limits: { maxLayerBytes: 4 * MiB },
    tar: () => tarOf([file('zeros', Buffer.alloc(16 * MiB))]),
    refused: /larger than 4194304 bytes uncompressed/,
  },
  { name: 'sparse map past the real size', tar: () => tarOf([{ name: 's', type: 'S', data: 'abc', gnuSparse: { realSize: 10, map: [[9, 3]] } }]), refused: /sparse map of "s" is out of order or past its size/ },
  { name: 'sparse file larger than the layer cap', limits: { maxLayerBytes: MiB }, tar: () => tarOf([{ name: 's', type: 'S', data: 'abc', gnuSparse: { realSize: 1024 * MiB, map: [[0, 3]] } }]), refused: /sparse file "s" is 1073741824 bytes, over the layer limit/ },
];

/** The archive of a case as the store would receive it. */
export function caseBlob(c: HostileCase, outside: string): Buffer {
  const tar = c.tar(outside);
  return c.gzip ? gzipSync(tar) : tar;
}
