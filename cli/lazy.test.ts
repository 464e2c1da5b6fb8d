// `convoy <verb>` loads only what the verb uses: the operator verbs never
// load the manager, the lab or the agent's runtime (those verbs import them
// when they run), so `convoy service ls` starts in a fraction of a second.
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createTestCa } from '../common/testing/test-ca';

/** dist/, the root of what the build compiled (this file is dist/cli/lazy.test.js). */
const DIST = path.join(__dirname, '..');

/** The modules of ours that `convoy ...args` loads, as paths under dist/ (all: every file, node_modules included). */
function loadedBy(args: string[], all = false, env: NodeJS.ProcessEnv = {}, status = 0): string[] {
  const script = [
    `const { processIO } = require(${JSON.stringify(path.join(DIST, 'cli', 'client.js'))});`,
    `require(${JSON.stringify(path.join(DIST, 'cli', 'main.js'))}).run(process.argv.slice(1), processIO())`,
    `  .then(() => process.stderr.write(JSON.stringify(Object.keys(require.cache))));`,
  ].join('\n');
  const r = spawnSync(process.execPath, ['-e', script, '--', ...args], { encoding: 'utf8', timeout: 20_000, env: { ...process.env, ...env } });
  assert.equal(r.status, status, r.stderr);
  const files = JSON.parse(r.stderr.slice(r.stderr.indexOf('['))) as string[];
  if (all) return files;
  return files.filter((f) => f.startsWith(DIST + path.sep)).map((f) => path.relative(DIST, f));
}

describe('convoy loads lazily', function () {
  this.timeout(30_000);

  for (const args of [['--help'], ['service', 'ls', '--help'], ['task', 'exec', '--help'], ['lab', 'up', '--help'], ['image', 'push', '--help'], ['user', 'create', '--help'], ['user', 'ls', '--help'], ['stack', 'deploy', '--help']]) {
    it(`convoy ${args.join(' ')} loads no manager/, lab/, or agent/ module but the agent's flag defaults`, () => {
      const loaded = loadedBy(args);
      assert.ok(loaded.includes(path.join('cli', 'main.js')), 'the CLI itself was loaded');
      assert.deepEqual(
        loaded.filter((f) => /^(manager|lab|agent)\//.test(f)),
        [path.join('agent', 'runtime', 'image', 'limits.js')],
      );
    });
  }

  for (const args of [['--help'], ['service', 'ls', '--help'], ['stack', 'ls', '--help']])
    it(`convoy ${args.join(' ')} loads neither the compose loader nor the yaml parser`, () => {
      const all = loadedBy(args, true);
      assert.deepEqual(all.filter((f) => /node_modules[\\/]yaml[\\/]|cli[\\/]stack[\\/](load|tree|convert|merge|interpolate|deploy)\.js$/.test(f)), []);
    });

  for (const args of [['service', 'ls', '--help'], ['user', 'create', '--help'], ['user', 'rm', '--help']])
    it(`convoy ${args.join(' ')} loads no certificate-issuing library (@peculiar/x509 is for user create when it runs)`, () => {
      const heavy = loadedBy(args, true).filter((f) => /@peculiar|reflect-metadata|[\\/]csr\.js$/.test(f));
      assert.deepEqual(heavy, []);
    });

  it('convoy service ls makes its call without grpc-js (proto/control-h2.ts: HTTP/2 of its own)', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'convoy-lazy-'));
    try {
      const b = await (await createTestCa()).bundle({ id: 'alice', role: 'admin' });
      for (const [f, v] of [['ca.pem', b.ca], ['cert.pem', b.cert], ['key.pem', b.key]]) fs.writeFileSync(path.join(dir, f), v, { mode: 0o600 });
      // Against a closed port: the call is made (the Control codecs load) and fails, exit status 1.
      const all = loadedBy(['service', 'ls'], true, { CONVOY_HOST: '127.0.0.1:1', CONVOY_TLS_DIR: dir }, 1);
      assert.ok(all.some((f) => /proto[\\/]generated[\\/]control-codec\.js$/.test(f)), 'the call was made');
      assert.ok(all.some((f) => /proto[\\/]control-h2\.js$/.test(f)));
      assert.deepEqual(all.filter((f) => /@grpc[\\/]/.test(f)), []);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
