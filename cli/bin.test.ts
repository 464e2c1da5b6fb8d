// bin/convoy, the command on the PATH: runs the bundled CLI
// (dist/cli/convoy.bundle.js) with a V8 code cache, and says and exits
// exactly what the unbundled dist/cli/main.js does.
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

const ROOT = path.join(__dirname, '..', '..');
const BIN = path.join(ROOT, 'bin', 'convoy');
const MAIN = path.join(ROOT, 'dist', 'cli', 'main.js');
const BUNDLE = path.join(ROOT, 'dist', 'cli', 'convoy.bundle.js');

function run(file: string, args: string[], env: NodeJS.ProcessEnv = {}) {
  const r = spawnSync(process.execPath, [file, ...args], { encoding: 'utf8', timeout: 20_000, env: { ...process.env, CONVOY_HOST: '127.0.0.1:1', ...env } });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('bin/convoy', function () {
  this.timeout(60_000);
  before(function () {
    if (!fs.existsSync(BUNDLE)) throw new Error(`${BUNDLE} missing: npm run build makes it (build:cli)`);
  });

  for (const args of [['--version'], ['--help'], ['service', 'ls'], ['service', 'create'], ['no-such-verb']]) {
    it(`convoy ${args.join(' ')}: the same output and exit status as dist/cli/main.js`, () => {
      const a = run(BIN, args);
      const b = run(MAIN, args);
      assert.deepEqual(a, b);
    });
  }

  it('writes its code cache once and uses it (the next start is not rejected)', () => {
    const cache = `${BUNDLE}.cache`;
    fs.rmSync(cache, { force: true });
    assert.equal(run(BIN, ['--version']).status, 0);
    const st = fs.statSync(cache);
    assert.ok(st.size > 10_000, 'a V8 code cache was written');
    assert.equal(run(BIN, ['--version']).status, 0);
    assert.equal(fs.statSync(cache).mtimeMs, st.mtimeMs, 'accepted, so not written again');
  });
});
