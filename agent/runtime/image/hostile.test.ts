// The hostile-layer corpus (testing/hostile.ts) against the whole unpack path
// of the store (extractLayer + the native helper's fixup), and the helper
// alone against operations the agent would never send. Each case runs in a
// fresh temp dir holding the unpack root and, beside it, the directory the
// archives aim at; the listing of everything but the root must not change.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { findHelper, runFixup } from '../native';
import { unpackLayer } from './store';
import { TarError, type FixupOp } from './tar';
import { caseBlob, HOSTILE_CASES, type ContainedChecks } from './testing/hostile';
import { snapshot } from './testing/snapshot';
import { chunks } from './testing/tar-writer';

function checks(root: string): ContainedChecks {
  const abs = (rel: string) => path.join(root, rel);
  return {
    read: (rel) => fs.readFileSync(abs(rel), 'utf8'),
    type: (rel) => {
      let st: fs.Stats;
      try {
        st = fs.lstatSync(abs(rel));
      } catch {
        return 'missing';
      }
      if (st.isFile()) return 'file';
      if (st.isDirectory()) return 'dir';
      if (st.isSymbolicLink()) return 'symlink';
      if (st.isCharacterDevice()) return 'char';
      if (st.isBlockDevice()) return 'block';
      if (st.isFIFO()) return 'fifo';
      return 'other';
    },
    mode: (rel) => fs.lstatSync(abs(rel)).mode & 0o7777,
    link: (rel) => fs.readlinkSync(abs(rel)),
    equal: (got, want, what) => assert.deepEqual(got, want, what),
  };
}

/** A temp dir with root/ (empty) and outside/ (victim, secret, sub/). */
function arena(): { tmp: string; root: string; outside: string } {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'convoy-hostile-'));
  const root = path.join(tmp, 'root');
  const outside = path.join(tmp, 'outside');
  fs.mkdirSync(root);
  fs.mkdirSync(path.join(outside, 'sub'), { recursive: true });
  fs.writeFileSync(path.join(outside, 'victim'), 'victim');
  fs.writeFileSync(path.join(outside, 'secret'), 'secret');
  return { tmp, root, outside };
}

describe('hostile layers', function () {
  this.timeout(30_000);
  const helperPath = findHelper();
  const dirs: string[] = [];
  after(() => {
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  });

  it('has at least 15 cases', () => assert.ok(HOSTILE_CASES.length >= 15, String(HOSTILE_CASES.length)));

  for (const c of HOSTILE_CASES) {
    it(`${c.refused ? 'refuses' : 'contains'}: ${c.name}`, async () => {
      const { tmp, root, outside } = arena();
      dirs.push(tmp);
      const before = snapshot(tmp, { skip: ['root'] });
      const blob = caseBlob(c, outside);
      let ops: FixupOp[] = [];
      const run = async () => {
        const opts = { helperPath, limits: c.limits };
        if (c.gzip) {
          await pipeline(Readable.from(chunks(blob, 4096)), createGunzip(), async (source: AsyncIterable<Buffer>) => {
            ops = await unpackLayer(source, root, opts);
          });
        } else {
          ops = await unpackLayer(chunks(blob), root, opts);
        }
      };
      if (c.refused) {
        await assert.rejects(run(), (e: unknown) => {
          assert.ok(e instanceof TarError, `not a TarError: ${String(e)}`);
          assert.match(e.message, c.refused as RegExp);
          return true;
        });
      } else {
        await run();
        c.check?.(checks(root), ops, outside);
      }
      assert.deepEqual(snapshot(tmp, { skip: ['root'] }), before, 'something outside the root changed');
    });
  }

  describe('the helper alone (operations the agent never sends)', () => {
    const hostileOps: [string, string[], RegExp][] = [
      ['whiteout through a symlink', ['whiteout', 'link/victim'], /cannot open the directory of link\/victim beneath the layer root/],
      ['opaque marker on a symlink', ['opaque', 'link'], /opaque link: cannot open it beneath the layer root/],
      ['device through a symlink', ['mknod', 'link/null', '20644', '1', '3', '0', '0'], /beneath the layer root/],
      ['device over a symlink', ['mknod', 'link', '20644', '1', '3', '0', '0'], /something other than the placeholder/],
      ['whiteout of ".."', ['whiteout', 'd/..'], /does not name an entry/],
      ['device through ".."', ['mknod', '../null', '20644', '1', '3', '0', '0'], /beneath the layer root/],
      ['absolute path', ['whiteout', '/tmp/x'], /beneath the layer root/],
      ['overlay xattr', ['xattr', 'f', 'trusted.overlay.redirect', '2f657463'], /not on the allowlist/],
      ['xattr through a symlink', ['xattr', 'link/victim', 'user.x', '78'], /beneath the layer root/],
    ];
    for (const [name, op, err] of hostileOps) {
      it(`refuses: ${name}`, async () => {
        const { tmp, root, outside } = arena();
        dirs.push(tmp);
        fs.symlinkSync(outside, path.join(root, 'link'));
        fs.mkdirSync(path.join(root, 'd'));
        fs.writeFileSync(path.join(root, 'f'), '');
        const before = snapshot(tmp, { skip: ['root'] });
        await assert.rejects(runFixup(helperPath, root, op), err);
        assert.deepEqual(snapshot(tmp, { skip: ['root'] }), before);
      });
    }
  });
});
