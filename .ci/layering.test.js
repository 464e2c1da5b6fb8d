// The layering rules of .dependency-cruiser.js (what `npm run lint` checks)
// on a tiny tree made for them: every rule reports its violation, and the
// imports the layering allows pass. The tree lives in a temp dir, removed
// afterwards, so no bad import is ever left in the repository.
const { strict: assert } = require('node:assert');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const config = require('../.dependency-cruiser.js');

/** file → its imports (relative specifiers); every file exports one constant. */
const TREE = {
  // Allowed: the layering from the bottom up.
  'common/log.ts': [],
  'proto/mod.ts': ['../common/log'],
  'manager/m.ts': ['../proto/mod', '../common/log'],
  'manager/testing/fake.ts': ['../m'],
  'manager/m.test.ts': ['./m', './testing/fake', '../lab/lab', '../e2e/support/h'],
  'agent/a.ts': ['../proto/mod'],
  'lab/lab.ts': ['../manager/m', '../agent/a'],
  'cli/main.ts': ['../lab/lab', '../manager/m', '../agent/a'],
  'e2e/support/h.ts': ['../../lab/lab', '../../manager/m'],
  'e2e/x.e2e.ts': ['./support/h'],
  'bench/b.ts': ['../e2e/support/h', '../manager/testing/fake', '../lab/lab'],
  // Violations, one (or two) per rule.
  'common/bad.ts': ['../proto/mod'],
  'proto/bad.ts': ['../manager/m'],
  'manager/bad.ts': ['../agent/a'],
  'agent/bad.int.test.ts': ['../manager/m'],
  'agent/tool.ts': ['../cli/main'],
  'lab/bad.ts': ['../cli/main'],
  'cli/bad.ts': ['../e2e/support/h', '../manager/testing/fake'],
  'lab/imports-test.ts': ['../manager/m.test'],
  'cli/imports-bench.ts': ['../bench/b'],
  'manager/store/s.ts': ['etcd3'],
  'manager/leaky.ts': ['etcd3'],
  'common/ping.ts': ['./pong'],
  'common/pong.ts': ['./ping'],
};

/** The folders `npm run lint` checks. */
const LINTED = ['common', 'proto', 'manager', 'agent', 'lab', 'cli', 'e2e', 'bench'];

const EXPECTED = [
  'agent-not-manager agent/bad.int.test.ts → manager/m.ts',
  'common-is-the-bottom common/bad.ts → proto/mod.ts',
  'lab-not-cli lab/bad.ts → cli/main.ts',
  'manager-not-agent manager/bad.ts → agent/a.ts',
  'no-bench-outside-bench cli/imports-bench.ts → bench/b.ts',
  'no-circular common/ping.ts → common/pong.ts', // a cycle is reported once
  'no-importing-tests lab/imports-test.ts → manager/m.test.ts',
  'only-tests-import-test-code cli/bad.ts → e2e/support/h.ts',
  'only-tests-import-test-code cli/bad.ts → manager/testing/fake.ts',
  'only-the-store-sees-etcd manager/leaky.ts → node_modules/etcd3/lib/index.js',
  'programs-not-tools agent/tool.ts → cli/main.ts',
  'proto-imports-only-common proto/bad.ts → manager/m.ts',
];

describe('layering rules (.dependency-cruiser.js)', function () {
  this.timeout(30_000);
  let dir;

  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'convoy-layering-'));
    for (const [file, imports] of Object.entries(TREE)) {
      fs.mkdirSync(path.join(dir, path.dirname(file)), { recursive: true });
      const body = imports.map((spec, i) => `import { x as x${i} } from '${spec}';\nvoid x${i};\n`).join('');
      fs.writeFileSync(path.join(dir, file), `${body}export const x = 1;\n`);
    }
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('fails the lint on the tree, reporting every violation and nothing the layering allows', () => {
    // What `npm run lint` runs, with the repository's config, from the tree's root (rule
    // paths match paths relative to it, as they match the repository's from its root).
    fs.writeFileSync(path.join(dir, 'tsconfig.json'), '{}\n');
    // The real packages, so a rule about a package (etcd3) sees it resolved.
    fs.symlinkSync(path.join(__dirname, '..', 'node_modules'), path.join(dir, 'node_modules'));
    const bin = path.join(__dirname, '..', 'node_modules', '.bin', 'depcruise');
    const r = spawnSync(bin, ['--config', path.join(__dirname, '..', '.dependency-cruiser.js'), ...LINTED], { cwd: dir, encoding: 'utf8' });
    assert.notEqual(r.status, 0, `depcruise exited 0: the lint would pass\n${r.stderr}`);
    // The "err" report: one "  error <rule>: <from> → <to>" line per violation.
    const reported = [...r.stdout.matchAll(/^\s*(\w+) ([\w-]+): (\S+) →\s+(\S+)/gm)];
    // A package is reported by its real path, which lies outside the tree (the symlink above).
    const target = (t) => t.replace(/^.*?(node_modules\/)/, '$1');
    assert.deepEqual(reported.map((m) => `${m[2]} ${m[3]} → ${target(m[4])}`).sort(), EXPECTED, r.stdout);
    assert.ok(reported.every((m) => m[1] === 'error'), 'every violation is an error');
  });
});
