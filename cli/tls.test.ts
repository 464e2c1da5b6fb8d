import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { writeBundle } from '../common/identity';
import { writeClientConfig } from '../common/client-config';
import { hostOf } from './client';
import { clientSecurity, tlsDirOf } from './tls';
import { natsBundleFor } from './events/nats';
import type { CliIO } from './client';

describe('cli: finding the client bundle', () => {
  let home: string;
  beforeEach(() => (home = fs.mkdtempSync(path.join(os.tmpdir(), 'convoy-cli-tls-'))));
  afterEach(() => fs.rmSync(home, { recursive: true, force: true }));
  const bundle = (dir: string) => writeBundle(dir, { ca: 'CA', cert: `CERT ${dir}`, key: 'KEY' });
  const root = (o: Record<string, unknown> = {}) => ({ opts: () => o, parent: null });

  it('--tls-dir, then CONVOY_TLS_DIR, then the config file, then ~/.convoy/tls', () => {
    const env: NodeJS.ProcessEnv = { HOME: home };
    assert.equal(tlsDirOf(undefined, env), undefined);
    assert.throws(() => clientSecurity(undefined, env), /no client certificate: give --tls-dir, set CONVOY_TLS_DIR, or set "tlsDir" in .*config\.json/);
    bundle(path.join(home, '.convoy', 'tls'));
    assert.equal(tlsDirOf(undefined, env), path.join(home, '.convoy', 'tls'));
    writeClientConfig({ host: '10.0.0.1:7420', tlsDir: path.join(home, 'cfg') }, env);
    assert.equal(fs.statSync(path.join(home, '.convoy', 'config.json')).mode & 0o777, 0o600);
    assert.equal(tlsDirOf(undefined, env), path.join(home, 'cfg'));
    assert.equal(tlsDirOf(undefined, { ...env, CONVOY_TLS_DIR: '/e' }), '/e');
    assert.equal(tlsDirOf('/flag', { ...env, CONVOY_TLS_DIR: '/e' }), '/flag');
    bundle(path.join(home, 'cfg'));
    const s = clientSecurity(undefined, env);
    assert.equal(s.mode, 'mtls');
    assert.equal(s.mode === 'mtls' && s.cert, `CERT ${path.join(home, 'cfg')}`);
    assert.throws(() => clientSecurity('/nonexistent-bundle', env), /\/nonexistent-bundle\/ca\.pem: missing/);
  });

  it('the config file names the host when neither --host nor CONVOY_HOST does; a broken one is named', () => {
    const env: NodeJS.ProcessEnv = { HOME: home };
    writeClientConfig({ host: '10.0.0.1' }, env);
    assert.equal(hostOf(root(), env), '10.0.0.1:7420');
    assert.equal(hostOf(root(), { ...env, CONVOY_HOST: '10.0.0.2:1' }), '10.0.0.2:1');
    assert.equal(hostOf(root({ host: '10.0.0.3:2' }), env), '10.0.0.3:2');
    fs.writeFileSync(path.join(home, 'broken.json'), '{');
    assert.throws(() => tlsDirOf(undefined, { ...env, CONVOY_CONFIG: path.join(home, 'broken.json') }), /broken\.json: not JSON/);
  });

  it('NATS verbs (events, logs) find the same bundle as the Control API: flag, environment, config, ~/.convoy/tls', () => {
    const io = (env: NodeJS.ProcessEnv) => ({ env }) as unknown as CliIO;
    const env: NodeJS.ProcessEnv = { HOME: home };
    assert.throws(() => natsBundleFor(io(env), root()), /NATS needs your client certificate: give --tls-dir, set CONVOY_TLS_DIR, or set "tlsDir" in .*config\.json/);
    bundle(path.join(home, '.convoy', 'tls'));
    assert.equal(natsBundleFor(io(env), root()).cert, `CERT ${path.join(home, '.convoy', 'tls')}`);
    bundle(path.join(home, 'cfg'));
    writeClientConfig({ host: '10.0.0.1:7420', tlsDir: path.join(home, 'cfg') }, env);
    assert.equal(natsBundleFor(io(env), root()).cert, `CERT ${path.join(home, 'cfg')}`);
    bundle(path.join(home, 'flag'));
    const verb = { opts: () => ({}), parent: root({ tlsDir: path.join(home, 'flag') }) };
    assert.equal(natsBundleFor(io(env), verb).cert, `CERT ${path.join(home, 'flag')}`);
    assert.throws(() => natsBundleFor(io({ ...env, CONVOY_TLS_DIR: path.join(home, 'none') }), root()), /client certificate for NATS \(.*none\): .*ca\.pem: missing/);
  });
});
