// Secrets and configs on a real etcd, through a real manager: after create,
// rotate and a service using them, the whole etcd keyspace (`etcdctl get
// --prefix ""`) and etcd's files on disk hold no value, plain or base64;
// GetService and ListTasks carry references only.
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
import { startManager, type ManagerHandle } from './manager';

const execFileP = promisify(execFile);

/** Every file under dir (etcd's WAL and db), searched for any of the needles. */
function filesContaining(dir: string, needles: Buffer[]): string[] {
  const hits: string[] = [];
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) {
        const b = fs.readFileSync(p);
        if (needles.some((n) => b.includes(n))) hits.push(p);
      }
    }
  };
  walk(dir);
  return hits;
}

describe('secrets and configs in etcd (integration, real etcd and manager)', function () {
  this.timeout(60_000);
  let dir = '';
  let etcd: TestEtcd | undefined;
  let manager: ManagerHandle | undefined;
  let api: ControlConnection | undefined;
  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'convoy-secrets-int-'));
    etcd = await startEtcd({ dataDir: path.join(dir, 'etcd') });
    manager = await startManager({ dataDir: path.join(dir, 'manager'), listen: `127.0.0.1:${await freePort()}`, etcdEndpoints: etcd.endpoints, etcdTls: etcd.tls, natsUrl: '', logger: nullLogger });
    api = connectControl(manager.grpcAddr, { security: adminSecurity(manager) });
  });
  after(async () => {
    api?.close();
    await manager?.stop().catch(() => undefined);
    await etcd?.stop().catch(() => undefined);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('keeps no value in the etcd keyspace or its files; the KEK file is 0600 in the data dir', async () => {
    const values = ['s3cr3t-one-', 's3cr3t-two-', 'c0nfig-one-', 'c0nfig-two-'].map((p) => p + crypto.randomBytes(12).toString('hex'));
    await api!.createSecret({ spec: { name: 'db-password', labels: {} }, data: Buffer.from(values[0]) });
    await api!.createConfig({ spec: { name: 'app.conf', labels: {} }, data: Buffer.from(values[2]) });
    await api!.createService({
      spec: {
        name: 'web',
        replicas: 1,
        container: { image: 'registry.local/web:1', secrets: [{ name: 'db-password' }], configs: [{ name: 'app.conf', target: '/etc/app.conf' }] },
      },
    });
    await api!.rotateSecret({ secret: 'db-password', data: Buffer.from(values[1]) });
    await api!.rotateConfig({ config: 'app.conf', data: Buffer.from(values[3]) });

    const needles = values.flatMap((v) => [Buffer.from(v), Buffer.from(Buffer.from(v).toString('base64').slice(0, 24))]);
    const { stdout } = await execFileP('etcdctl', ['--endpoints', etcd!.endpoints[0], '--cacert', etcd!.tlsFiles.cacert, '--cert', etcd!.tlsFiles.cert, '--key', etcd!.tlsFiles.key, 'get', '--prefix', ''], { env: { ...process.env, ETCDCTL_API: '3' }, maxBuffer: 64 * 1024 * 1024 });
    assert.match(stdout, /\/convoy\/secrets\//, 'the secret is in etcd');
    assert.match(stdout, /\/convoy\/configs\//, 'the config is in etcd');
    for (const n of needles) assert.ok(!stdout.includes(n.toString()), `etcd keyspace holds ${n.toString()}`);
    assert.deepEqual(filesContaining(path.join(dir, 'etcd'), needles), [], "etcd's files hold a value");

    // What the API returns: references, never the secret's value.
    const svc = await api!.getService({ service: 'web' });
    const tasks = await api!.listTasks({ service: 'web' });
    const secret = await api!.getSecret({ secret: 'db-password' });
    for (const shown of [JSON.stringify(svc), JSON.stringify(tasks), JSON.stringify(secret), JSON.stringify(await api!.listSecrets({}))]) {
      for (const v of values.slice(0, 2)) assert.ok(!shown.includes(v) && !shown.includes(Buffer.from(v).toString('base64')), 'a secret value came back');
    }
    assert.equal(Number(secret.secret?.version), 2);
    assert.equal((await api!.getConfig({ config: 'app.conf' })).data.toString(), values[3], 'config inspect shows the current value');
    assert.equal(fs.statSync(path.join(dir, 'manager', 'kek')).mode & 0o777, 0o600);
  });
});
