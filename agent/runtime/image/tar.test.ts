import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { cleanPath, encodeFixups, extractLayer, packDirectory, TarError } from './tar';

async function* once(b: Buffer): AsyncGenerator<Buffer> {
  // split into odd-sized chunks to exercise the reader's buffering
  for (let i = 0; i < b.length; i += 700) yield b.subarray(i, i + 700);
}

async function pack(dir: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of packDirectory(dir, { uid: 0, gid: 0, mtime: 0 })) chunks.push(c);
  return Buffer.concat(chunks);
}

/** A raw ustar header + data, for entries packDirectory does not make. */
function entry(name: string, type: string, data = '', linkname = ''): Buffer {
  const h = Buffer.alloc(512);
  h.write(name, 0);
  h.write('0000644\0', 100);
  h.write('0000000\0', 108);
  h.write('0000000\0', 116);
  h.write(Buffer.byteLength(data).toString(8).padStart(11, '0') + '\0', 124);
  h.write('00000000000\0', 136);
  h.write('        ', 148);
  h.write(type, 156);
  h.write(linkname, 157);
  h.write('ustar\0', 257);
  h.write('00', 263);
  let sum = 0;
  for (const x of h) sum += x;
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148);
  const body = Buffer.alloc(Math.ceil(Buffer.byteLength(data) / 512) * 512);
  body.write(data);
  return Buffer.concat([h, body]);
}

describe('layer tar', () => {
  let tmp: string;
  beforeEach(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'convoy-tar-test-'));
  });
  afterEach(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('round-trips files, directories, symlinks, modes and long names', async () => {
    const src = path.join(tmp, 'src');
    const long = 'd'.repeat(60) + '/' + 'f'.repeat(80);
    fs.mkdirSync(path.join(src, 'bin'), { recursive: true });
    fs.mkdirSync(path.join(src, path.dirname(long)), { recursive: true });
    fs.writeFileSync(path.join(src, 'bin', 'tool'), 'x'.repeat(1500));
    fs.chmodSync(path.join(src, 'bin', 'tool'), 0o4755);
    fs.symlinkSync('tool', path.join(src, 'bin', 'alias'));
    fs.writeFileSync(path.join(src, long), 'long');
    const dest = path.join(tmp, 'dest');
    fs.mkdirSync(dest);
    const ops = await extractLayer(once(await pack(src)), dest);
    assert.deepEqual(ops, []);
    assert.equal(fs.readFileSync(path.join(dest, 'bin', 'tool'), 'utf8'), 'x'.repeat(1500));
    assert.equal(fs.statSync(path.join(dest, 'bin', 'tool')).mode & 0o7777, 0o4755);
    assert.equal(fs.readlinkSync(path.join(dest, 'bin', 'alias')), 'tool');
    assert.equal(fs.readFileSync(path.join(dest, long), 'utf8'), 'long');
  });

  it('turns whiteouts and opaque markers into work for the native helper', async () => {
    const tar = Buffer.concat([entry('etc/', '5'), entry('etc/.wh.passwd', '0'), entry('var/cache/.wh..wh..opq', '0'), entry('.wh.tmp', '0'), Buffer.alloc(1024)]);
    const dest = path.join(tmp, 'dest');
    fs.mkdirSync(dest);
    const ops = await extractLayer(once(tar), dest);
    assert.deepEqual(ops, [
      { op: 'whiteout', path: 'etc/passwd' },
      { op: 'opaque', path: 'var/cache' },
      { op: 'whiteout', path: 'tmp' },
    ]);
    assert.ok(fs.statSync(path.join(dest, 'var', 'cache')).isDirectory());
    assert.ok(!fs.existsSync(path.join(dest, 'etc', '.wh.passwd')));
    assert.deepEqual(encodeFixups(ops), ['whiteout', 'etc/passwd', 'opaque', 'var/cache', 'whiteout', 'tmp']);
  });

  it('refuses entries climbing out of the layer or through one of its symlinks', async () => {
    assert.throws(() => cleanPath('../etc/passwd'), TarError);
    assert.equal(cleanPath('./a//b/./c'), 'a/b/c');
    const dest = path.join(tmp, 'dest');
    fs.mkdirSync(dest);
    const evil = Buffer.concat([entry('escape', '2', '', tmp), entry('escape/owned', '0', 'pwned'), Buffer.alloc(1024)]);
    await assert.rejects(extractLayer(once(evil), dest), /through the symlink escape/);
    assert.ok(!fs.existsSync(path.join(tmp, 'owned')));
    await assert.rejects(extractLayer(once(Buffer.concat([entry('../x', '0', 'x'), Buffer.alloc(1024)])), dest), TarError);
  });

  it('records device nodes for the helper instead of creating them', async () => {
    const dev = entry('dev/null', '3');
    dev.write('0000001\0', 329);
    dev.write('0000003\0', 337);
    let sum = 0;
    dev.write('        ', 148);
    for (const x of dev.subarray(0, 512)) sum += x;
    dev.write(sum.toString(8).padStart(6, '0') + '\0 ', 148);
    const dest = path.join(tmp, 'dest');
    fs.mkdirSync(dest);
    const ops = await extractLayer(once(Buffer.concat([dev, Buffer.alloc(1024)])), dest);
    assert.deepEqual(ops, [{ op: 'mknod', path: 'dev/null', mode: 0o020644, major: 1, minor: 3, uid: 0, gid: 0 }]);
  });
});
