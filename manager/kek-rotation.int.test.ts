// Rotating the key-encryption key on a real etcd, through a real manager
// restarted at each step of the runbook (docs/security.md, "Rotating the
// KEK"): the new key added first, the manager re-wraps what the old key
// sealed at start, and a manager joining meanwhile is handed both keys;
// then the old line dropped, and the manager still opens
// the CA key, the secret and the config; a manager restarted with the old
// key still first, or given only the old key, is refused; a file with a bad line names the line.
import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { nullLogger } from '../common/logger';
import { freePort } from '../common/net';
import { startEtcd, type TestEtcd } from '../lab/etcd';
import { adminSecurity } from '../e2e/support/security';
import { connectControl, type ControlConnection } from '../proto/client';
import type { Secret } from '../proto/mod';
import { KeyRing, kekId } from './crypto/kek';
import { openValue } from './crypto/values';
import { startManager, type ManagerHandle } from './manager';
import { key } from './store/store';

const execFileP = promisify(execFile);

describe('KEK rotation (integration, real etcd and manager)', function () {
  this.timeout(90_000);
  let dir = '';
  let etcd: TestEtcd | undefined;
  let manager: ManagerHandle | undefined;
  let api: ControlConnection | undefined;
  const [oldKey, newKey] = [crypto.randomBytes(32), crypto.randomBytes(32)];
  let kekFile = '';
  const writeKek = (...keys: Buffer[]) => fs.writeFileSync(kekFile, keys.map((k) => k.toString('base64') + '\n').join(''), { mode: 0o600 });

  const start = async () => {
    manager = await startManager({ id: 'm1', dataDir: path.join(dir, 'm1'), listen: `127.0.0.1:${await freePort()}`, etcdEndpoints: etcd!.endpoints, etcdTls: etcd!.tls, kekFile, natsUrl: '', logger: nullLogger });
    api = connectControl(manager.grpcAddr, { security: adminSecurity(manager) });
  };
  const stop = async () => {
    api?.close();
    api = undefined;
    await manager?.stop();
    manager = undefined;
  };
  /** The secret as etcd holds it (etcdctl, as an operator would read it). */
  const storedSecret = async (id: string): Promise<Secret> => {
    const t = etcd!.tlsFiles;
    const { stdout } = await execFileP('etcdctl', ['--endpoints', etcd!.endpoints[0], '--cacert', t.cacert, '--cert', t.cert, '--key', t.key, 'get', '--print-value-only', key('secrets', id)], { env: { ...process.env, ETCDCTL_API: '3' } });
    return JSON.parse(stdout) as Secret;
  };

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'convoy-kek-rotation-int-'));
    kekFile = path.join(dir, 'kek');
    etcd = await startEtcd({ dataDir: path.join(dir, 'etcd') });
  });
  after(async () => {
    await stop().catch(() => undefined);
    await etcd?.stop().catch(() => undefined);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('re-wraps at start under the new key, then runs with the new key alone; the old key alone is refused', async () => {
    writeKek(oldKey);
    await start();
    const secretId = (await api!.createSecret({ spec: { name: 'db-password', labels: {} }, data: Buffer.from('hunter2-rotated') })).secret!.id;
    await api!.createConfig({ spec: { name: 'app.conf', labels: {} }, data: Buffer.from('listen 8080\n') });
    let info = await api!.getClusterInfo({});
    assert.deepEqual([info.kekId, info.kekIds, Number(info.sealedKeys), Number(info.sealedKeysCurrent)], [kekId(oldKey), [kekId(oldKey)], 3, 3], 'the CA key, the secret and the config, all under the one key');
    const before = await storedSecret(secretId);
    assert.equal(openValue(new KeyRing([oldKey]), before, key('secrets', secretId)).toString(), 'hunter2-rotated');
    await stop();

    // Step 1 and 2 of the runbook on the only manager: the new key first, the old one still there.
    writeKek(newKey, oldKey);
    await start();
    info = await api!.getClusterInfo({});
    assert.deepEqual(
      [info.kekId, info.kekIds, Number(info.sealedKeys), Number(info.sealedKeysCurrent), Number(info.sealedKeysUnopenable), info.kekRetired],
      [kekId(newKey), [kekId(newKey), kekId(oldKey)], 3, 3, 0, [kekId(oldKey)]],
      'everything re-wrapped under the new key at start',
    );
    assert.equal((await api!.getVersion({})).kekId, kekId(newKey), 'GetVersion names the key this manager seals under (cluster ca asks every manager)');
    const after = await storedSecret(secretId);
    assert.equal(after.data, before.data, 'the value itself is not re-encrypted');
    assert.notEqual(after.dataKey, before.dataKey);
    assert.throws(() => openValue(new KeyRing([oldKey]), after, key('secrets', secretId)), /does not open/, 'the old key no longer opens it');
    assert.equal(openValue(new KeyRing([newKey]), after, key('secrets', secretId)).toString(), 'hunter2-rotated');
    // A manager that joins meanwhile is handed both keys, the current one first.
    const tokens = await api!.getJoinTokens({});
    const m2 = await startManager({ id: 'm2', dataDir: path.join(dir, 'm2'), listen: `127.0.0.1:${await freePort()}`, etcdEndpoints: etcd!.endpoints, etcdTls: etcd!.tls, natsUrl: '', logger: nullLogger, joinToken: tokens.manager, join: manager!.joinAddr });
    try {
      assert.equal(fs.readFileSync(path.join(dir, 'm2', 'kek'), 'utf8'), `${newKey.toString('base64')}\n${oldKey.toString('base64')}\n`);
      assert.equal(fs.statSync(path.join(dir, 'm2', 'kek')).mode & 0o777, 0o600);
    } finally {
      await m2.stop();
    }
    await stop();

    // Step 3: the old line dropped.
    writeKek(newKey);
    await start();
    assert.equal((await api!.getConfig({ config: 'app.conf' })).data.toString(), 'listen 8080\n', 'the config opens under the new key alone');
    info = await api!.getClusterInfo({});
    assert.deepEqual([info.kekIds, Number(info.sealedKeysCurrent), info.kekRetired], [[kekId(newKey)], 3, [kekId(oldKey)]]);
    await api!.rotateSecret({ secret: 'db-password', data: Buffer.from('hunter3') });
    const rotated = await storedSecret(secretId);
    assert.equal(openValue(new KeyRing([newKey]), rotated, key('secrets', secretId)).toString(), 'hunter3', 'new values are sealed under the new key');
    await api!.createSecret({ spec: { name: 'api-token', labels: {} }, data: Buffer.from('t0k3n') });
    info = await api!.getClusterInfo({});
    assert.deepEqual([Number(info.sealedKeys), Number(info.sealedKeysCurrent)], [4, 4], 'the count follows a new secret (it is not kept from the call before)');
    await stop();

    // A manager restarted with its file unedited (the old key still first) is refused: it would seal under a retired key.
    writeKek(oldKey, newKey);
    await assert.rejects(start(), new RegExp(`key-encryption key ${kekId(oldKey)} \\(the first line of its file\\) was retired by a rotation`));
    manager = undefined;
    // The old key alone opens nothing any more: the manager refuses to start, naming the key.
    writeKek(oldKey);
    await assert.rejects(start(), /does not open under this key-encryption key/);
    manager = undefined;
    // A bad line is named with the file and the line.
    fs.writeFileSync(kekFile, `${newKey.toString('base64')}\nnot-a-key\n`, { mode: 0o600 });
    await assert.rejects(start(), new RegExp(`${kekFile.replace(/[/.]/g, '\\$&')}:2: not a key-encryption key`));
    manager = undefined;
  });
});
