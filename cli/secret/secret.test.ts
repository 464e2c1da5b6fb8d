// --secret / --config parsing (Docker's syntax), the -add/-rm edits of
// service update, and reading a value from a file or standard input with
// the limits checked before anything is sent.
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { applyServiceUpdate, buildServiceSpec, parseFileRef, type FlagEnv } from '../flags';
import { readValue, shown } from './noun';

const noFiles: FlagEnv = { env: {}, readFile: () => '' };

describe('cli secrets and configs', () => {
  it('parses the short and the long form, modes in octal as Docker does', () => {
    assert.deepEqual(parseFileRef('db', '--secret'), { id: '', name: 'db', target: '', uid: 0, gid: 0, mode: 0 });
    assert.deepEqual(parseFileRef('source=db,target=/etc/db.pw,uid=1000,gid=100,mode=0400', '--secret'), { id: '', name: 'db', target: '/etc/db.pw', uid: 1000, gid: 100, mode: 0o400 });
    assert.equal(parseFileRef('src=db,mode=0o640', '--secret').mode, 0o640);
    assert.equal(parseFileRef('src=db,mode=292', '--secret').mode, 0o444);
    assert.throws(() => parseFileRef('target=/x', '--secret'), /--secret: "target=\/x": source= \(the name\) is required/);
    assert.throws(() => parseFileRef('src=db,mode=rw', '--secret'), /mode must be a number/);
    assert.throws(() => parseFileRef('src=db,mode=04755', '--secret'), /mode must be permission bits/);
    assert.throws(() => parseFileRef('src=db,owner=me', '--config'), /--config: .*unknown field "owner"/);
  });

  it('service create --secret/--config and update --secret-add/--secret-rm', () => {
    const s = buildServiceSpec('img', [], { secret: ['db', 'source=tls,target=/tls/key'], config: ['app.conf'] }, noFiles);
    assert.deepEqual(s.container?.secrets.map((r) => [r.name, r.target]), [['db', ''], ['tls', '/tls/key']]);
    assert.deepEqual(s.container?.configs.map((r) => r.name), ['app.conf']);
    const u = applyServiceUpdate(s, { secretRm: ['db'], secretAdd: ['api'], configRm: ['app.conf'] }, noFiles);
    assert.deepEqual(u.container?.secrets.map((r) => r.name), ['tls', 'api']);
    assert.deepEqual(u.container?.configs, []);
    assert.throws(() => applyServiceUpdate(s, { secretRm: ['nope'] }, noFiles), /--secret-rm: the service has no secret "nope"/);
  });

  it('reads a value from a file or stdin; refuses empty, oversized and non-regular input before sending', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'convoy-secret-'));
    try {
      const f = path.join(dir, 'v');
      fs.writeFileSync(f, 'value');
      assert.equal((await readValue(f, 'secret')).toString(), 'value');
      assert.equal((await readValue('-', 'secret', Readable.from([Buffer.from('from-stdin')]))).toString(), 'from-stdin');
      fs.writeFileSync(f, '');
      await assert.rejects(readValue(f, 'secret'), /must not be empty/);
      fs.writeFileSync(f, Buffer.alloc(500 * 1024 + 1));
      await assert.rejects(readValue(f, 'secret'), /at most 500 KiB/);
      await assert.rejects(readValue(dir, 'secret'), /not a regular file/);
      await assert.rejects(readValue(path.join(dir, 'missing'), 'secret'), /cannot read .*ENOENT/);
      await assert.rejects(readValue('-', 'secret', Readable.from([Buffer.alloc(600 * 1024)])), /over 500 KiB/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('inspect shows no sealed part of a secret, and a config value only when the manager sent it', () => {
    const obj = { id: 'x', meta: null, spec: { name: 'n', labels: {} }, version: 1, dataKey: 'k', data: 'd', size: 1, digest: '' };
    const s = shown({ obj, services: ['web'] });
    assert.equal(s.dataKey, undefined);
    assert.equal(s.data, undefined);
    assert.equal(shown({ obj, services: [], data: Buffer.from('v') }).data, Buffer.from('v').toString('base64'));
  });
});
