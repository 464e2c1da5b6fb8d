// convoy context: named clusters in the per-user config file, chosen by
// `use`, --context or $CONVOY_CONTEXT; the verbs then reach that cluster.
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { run } from '../main';
import { fake } from '../testing/fake';
import { tlsDirOf } from '../tls';

describe('convoy context', () => {
  let home: string;
  let env: NodeJS.ProcessEnv;
  const cfgFile = () => path.join(home, 'config.json');
  const bundle = (name: string) => {
    const d = path.join(home, name);
    fs.mkdirSync(d, { recursive: true });
    for (const f of ['ca.pem', 'cert.pem', 'key.pem']) fs.writeFileSync(path.join(d, f), 'x');
    return d;
  };
  const cli = async (args: string[], e: NodeJS.ProcessEnv = env) => {
    const f = fake({ listServices: async () => ({ services: [] }) }, e);
    const code = await run(args, f.io);
    return { code, out: f.out(), err: f.err(), hosts: f.hosts, env: f.io.env };
  };

  beforeEach(() => {
    home = fs.mkdtempSync(path.join(os.tmpdir(), 'convoy-context-'));
    env = { HOME: home, CONVOY_CONFIG: path.join(home, 'config.json'), PWD: home };
    fs.writeFileSync(cfgFile(), JSON.stringify({ host: '10.0.0.1:7420', tlsDir: bundle('own') }));
  });
  afterEach(() => fs.rmSync(home, { recursive: true, force: true }));

  it('creates, lists, uses, inspects and removes contexts; the verbs reach the one in use', async () => {
    const prod = bundle('prod');
    assert.equal((await cli(['context', 'create', 'prod', '--host', '10.9.0.5', '--tls-dir', 'prod', '--description', 'the big one'])).code, 0);
    assert.equal((await cli(['context', 'create', 'stage', '-H', '10.8.0.5:7000', '--tls-dir', bundle('stage')])).code, 0);
    const saved = JSON.parse(fs.readFileSync(cfgFile(), 'utf8')) as { host: string; contexts: Record<string, unknown> };
    assert.equal(saved.host, '10.0.0.1:7420', "the file's own settings are kept");
    assert.deepEqual(saved.contexts.prod, { host: '10.9.0.5:7420', tlsDir: prod, description: 'the big one' });

    let ls = await cli(['context', 'ls']);
    assert.match(ls.out, /^NAME\s+DESCRIPTION\s+HOST\s+TLS DIR\n/);
    assert.match(ls.out, /\ndefault \*\s+.*10\.0\.0\.1:7420/);
    assert.match(ls.out, /\nprod\s+the big one\s+10\.9\.0\.5:7420\s+/);
    assert.equal((await cli(['service', 'ls'])).hosts[0], '10.0.0.1:7420', 'default: the file\'s own host');

    assert.equal((await cli(['context', 'use', 'prod'])).out, 'prod\n');
    ls = await cli(['context', 'ls', '-q']);
    assert.equal(ls.out, 'default\nprod\nstage\n');
    assert.match((await cli(['context', 'ls'])).out, /\nprod \*/);
    assert.equal((await cli(['context', 'show'])).out, 'prod\n');
    assert.equal((await cli(['service', 'ls'])).hosts[0], '10.9.0.5:7420');
    assert.equal(tlsDirOf(undefined, env), prod, "the context's bundle");
    // One command elsewhere: --context, or $CONVOY_CONTEXT; --host still wins over both.
    assert.equal((await cli(['--context', 'stage', 'service', 'ls'])).hosts[0], '10.8.0.5:7000');
    assert.equal((await cli(['service', 'ls'], { ...env, CONVOY_CONTEXT: 'default' })).hosts[0], '10.0.0.1:7420');
    assert.equal((await cli(['--context', 'stage', '--host', '10.7.0.1', 'service', 'ls'])).hosts[0], '10.7.0.1:7420');

    const inspect = JSON.parse((await cli(['context', 'inspect'])).out) as { name: string; host: string }[];
    assert.deepEqual(inspect.map((x) => [x.name, x.host]), [['prod', '10.9.0.5:7420']]);

    // The context in use is removed only with --force; then default is in use again.
    const busy = await cli(['context', 'rm', 'prod']);
    assert.equal(busy.code, 1);
    assert.match(busy.err, /^convoy: context "prod" is in use/);
    assert.equal((await cli(['context', 'rm', '-f', 'prod', 'stage'])).code, 0);
    assert.equal((await cli(['context', 'show'])).out, 'default\n');
    assert.equal((await cli(['context', 'ls', '-q'])).out, 'default\n');
  });

  it('refuses bad input with one line and writes nothing', async () => {
    const before = fs.readFileSync(cfgFile(), 'utf8');
    const refused = async (args: string[], re: RegExp) => {
      const r = await cli(args);
      assert.equal(r.code, 1, `${args.join(' ')} accepted`);
      assert.match(r.err, re);
      assert.equal(r.err.split('\n').filter(Boolean).length, 1, r.err);
      assert.equal(fs.readFileSync(cfgFile(), 'utf8'), before, 'nothing written');
    };
    await refused(['context', 'create', '-bad', '--host', 'h', '--tls-dir', 'own'], /unknown option|not a context name/);
    await refused(['context', 'create', 'a/b', '--host', 'h', '--tls-dir', 'own'], /NAME: "a\/b" is not a context name/);
    await refused(['context', 'create', 'default', '--host', 'h', '--tls-dir', 'own'], /"default" is the config file's own/);
    await refused(['context', 'create', 'x', '--host', 'h', '--tls-dir', 'nowhere'], /--tls-dir: .*nowhere\/ca\.pem does not exist/);
    await refused(['context', 'use', 'nope'], /context "nope" does not exist/);
    await refused(['context', 'rm', 'default'], /cannot be removed/);
    await refused(['--context', 'nope', 'service', 'ls'], /^convoy: context "nope" \(--context\/\$CONVOY_CONTEXT\) does not exist/);
    fs.writeFileSync(cfgFile(), JSON.stringify({ contexts: { x: { host: 1 } } }));
    const r = await cli(['context', 'ls']);
    assert.equal(r.code, 1);
    assert.match(r.err, /config\.json: contexts\.x: want/);
  });
});
