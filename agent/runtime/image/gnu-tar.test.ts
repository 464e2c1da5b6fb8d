// Real-world formats: archives made by the system's GNU tar (gnu, pax, ustar;
// sparse files in GNU's old format and PAX 0.0, 0.1 and 1.0) unpacked by
// Convoy exactly as GNU tar itself unpacks them: same names, types, modes,
// owners, sizes, contents, link targets, hard link counts and mtimes.
import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { findHelper } from '../native';
import { unpackLayer } from './store';
import { snapshot } from './testing/snapshot';
import { chunks } from './testing/tar-writer';

const MiB = 1024 * 1024;

function hasGnuTar(): boolean {
  try {
    return execFileSync('tar', ['--version']).toString().includes('GNU tar');
  } catch {
    return false;
  }
}

/** A tree with what images hold: files of many sizes, dirs, symlinks, hard links, fifos, long and unicode names, setuid, odd owners, holes. */
function buildSource(src: string): void {
  const w = (rel: string, data: string | Buffer, mode = 0o644) => {
    fs.mkdirSync(path.dirname(path.join(src, rel)), { recursive: true });
    fs.writeFileSync(path.join(src, rel), data);
    fs.chmodSync(path.join(src, rel), mode);
  };
  w('empty', '');
  w('bin/tool', Buffer.alloc(70_000, 7), 0o4755);
  w('bin/group-tool', 'g', 0o2711);
  w('etc/conf', 'a=b\n', 0o600);
  w('unicode/héllo wörld ✓', 'ü');
  const long = `${'long-directory-name-'.repeat(6)}/${'f'.repeat(120)}`;
  w(long, 'long');
  w(`${'deep/'.repeat(60)}leaf`, 'deep');
  fs.symlinkSync('tool', path.join(src, 'bin/alias'));
  fs.symlinkSync('/nonexistent/absolute', path.join(src, 'dangling'));
  fs.symlinkSync('x'.repeat(150), path.join(src, 'long-link-target'));
  fs.linkSync(path.join(src, 'bin/tool'), path.join(src, 'bin/tool-hardlink'));
  execFileSync('mkfifo', [path.join(src, 'fifo')]);
  fs.mkdirSync(path.join(src, 'sticky'), { mode: 0o1777 });
  fs.chmodSync(path.join(src, 'sticky'), 0o1777);
  fs.chownSync(path.join(src, 'etc/conf'), 1234, 5678);
  fs.lchownSync(path.join(src, 'bin/alias'), 42, 43);
  // sparse: 10 MiB with two data regions, and one ending in a hole
  const sp = path.join(src, 'var/sparse.img');
  fs.mkdirSync(path.dirname(sp), { recursive: true });
  execFileSync('truncate', ['-s', String(10 * MiB), sp]);
  execFileSync('dd', ['if=/dev/urandom', `of=${sp}`, 'bs=4096', 'count=3', 'seek=100', 'conv=notrunc'], { stdio: 'ignore' });
  execFileSync('dd', ['if=/dev/urandom', `of=${sp}`, 'bs=4096', 'count=1', 'seek=2000', 'conv=notrunc'], { stdio: 'ignore' });
  execFileSync('truncate', ['-s', String(12 * MiB), path.join(src, 'var/hole-only.img')]);
  for (const [rel, t] of [['bin/tool', 1_600_000_000], ['etc', 1_500_000_000], ['.', 1_400_000_000]] as const) fs.utimesSync(path.join(src, rel), t, t);
}

describe('real-world tar formats (GNU tar)', function () {
  this.timeout(60_000);
  let tmp: string;
  let src: string;
  const helperPath = findHelper();

  before(function () {
    if (!hasGnuTar()) this.skip();
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'convoy-gnutar-'));
    src = path.join(tmp, 'src');
    fs.mkdirSync(src);
    buildSource(src);
  });
  after(() => {
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  const formats: [string, string[]][] = [
    ['gnu', ['--format=gnu']],
    ['pax', ['--format=pax']],
    ['gnu --sparse (old GNU sparse)', ['--format=gnu', '--sparse']],
    ['pax --sparse (PAX sparse 1.0)', ['--format=pax', '--sparse']],
    ['pax --sparse-version=0.0', ['--format=pax', '--sparse', '--sparse-version=0.0']],
    ['pax --sparse-version=0.1', ['--format=pax', '--sparse', '--sparse-version=0.1']],
  ];
  for (const [name, flags] of formats) {
    it(`unpacks ${name} as GNU tar does`, async () => {
      const slug = name.replace(/[^a-z0-9]+/g, '-');
      const archive = path.join(tmp, `${slug}.tar`);
      execFileSync('tar', [...flags, '--numeric-owner', '-C', src, '-cf', archive, '.']);
      const gnu = path.join(tmp, `${slug}-gnu`);
      const convoy = path.join(tmp, `${slug}-convoy`);
      fs.mkdirSync(gnu);
      fs.mkdirSync(convoy);
      execFileSync('tar', ['-x', '-p', '--same-owner', '--numeric-owner', '-f', archive, '-C', gnu]);
      await unpackLayer(chunks(fs.readFileSync(archive), 10_000), convoy, { helperPath });
      // the root's own entry ("./") is Convoy's directory, not the image's
      const list = (d: string) => snapshot(d).filter((l) => !l.startsWith('. '));
      const want = list(gnu);
      assert.ok(want.length >= 80, `the GNU tar tree has ${want.length} entries`);
      assert.deepEqual(list(convoy), want);
      if (flags.includes('--sparse')) {
        const st = fs.statSync(path.join(convoy, 'var/sparse.img'));
        assert.equal(st.size, 10 * MiB);
        assert.ok(st.blocks * 512 < MiB, `var/sparse.img takes ${st.blocks * 512} bytes on disk: holes were not kept`);
        assert.ok(fs.statSync(path.join(convoy, 'var/hole-only.img')).blocks * 512 < MiB);
      }
    });
  }
});
