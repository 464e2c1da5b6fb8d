// `convoy <verb>` loads only what the verb uses: the operator verbs never
// load the manager, the lab or the agent's runtime (those verbs import them
// when they run), so `convoy service ls` starts in a fraction of a second.
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';

/** dist/, the root of what the build compiled (this file is dist/cli/lazy.test.js). */
const DIST = path.join(__dirname, '..');

/** The modules of ours that `convoy ...args` loads, as paths under dist/. */
function loadedBy(args: string[]): string[] {
  const script = [
    `const { processIO } = require(${JSON.stringify(path.join(DIST, 'cli', 'client.js'))});`,
    `require(${JSON.stringify(path.join(DIST, 'cli', 'main.js'))}).run(process.argv.slice(1), processIO())`,
    `  .then(() => process.stderr.write(JSON.stringify(Object.keys(require.cache))));`,
  ].join('\n');
  const r = spawnSync(process.execPath, ['-e', script, '--', ...args], { encoding: 'utf8', timeout: 20_000 });
  assert.equal(r.status, 0, r.stderr);
  const all = JSON.parse(r.stderr.slice(r.stderr.indexOf('['))) as string[];
  return all.filter((f) => f.startsWith(DIST + path.sep)).map((f) => path.relative(DIST, f));
}

describe('convoy loads lazily', function () {
  this.timeout(30_000);

  for (const args of [['--help'], ['service', 'ls', '--help'], ['task', 'exec', '--help'], ['lab', 'up', '--help'], ['image', 'push', '--help']]) {
    it(`convoy ${args.join(' ')} loads no manager/, lab/, or agent/ module but the agent's flag defaults`, () => {
      const loaded = loadedBy(args);
      assert.ok(loaded.includes(path.join('cli', 'main.js')), 'the CLI itself was loaded');
      assert.deepEqual(
        loaded.filter((f) => /^(manager|lab|agent)\//.test(f)),
        [path.join('agent', 'runtime', 'image', 'limits.js')],
      );
    });
  }
});
