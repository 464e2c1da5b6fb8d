// Secrets on a 2-host lab with 2 managers (one KEK file for both), end to
// end through the CLI (issue 11):
//
// - a secret created through the second manager is delivered by whichever
//   manager holds an agent's session (each opens what the other sealed);
// - a secret is readable inside its task at /run/secrets/NAME with the
//   mode and owner the reference gave, from a tmpfs of the task's;
// - its value is nowhere on disk: not in either agent's state dir, not in
//   the manager's data dir (embedded etcd included), not in the lab's logs;
//   and the whole etcd keyspace (`etcdctl get --prefix ""`) holds no value;
// - that keyspace holds no private key either: not the CA's (PEM, base64 or
//   hex of its DER; it is there only sealed, and the test opens the sealed
//   copy with the KEK to know what to look for), not a manager's nor the
//   admin bundle's, and not the KEK (its file's base64, hex, raw bytes);
// - the node with no task that uses it has none of it;
// - `secret rm` of a secret in use is refused naming the service;
// - `secret rotate` rolls the service: new task ids, the new value inside;
// - removing the service unmounts the task's tmpfs.
import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { eventually } from '../common/eventually';
import { DEFAULT_TASK_FILES_ROOT } from '../agent/runtime/task-files';
import type { Task } from '../proto/mod';
import { connectControl } from '../proto/client';
import { labSecurity } from '../lab/mod';
import { labManagerName } from '../lab/topology';
import { CA_KEY_AAD } from '../manager/ca/ca';
import { loadKek } from '../manager/crypto/kek';
import { labEtcdFlags } from './support/etcd';
import { startLab, TEST_LAB_DIR, type Lab } from './support/lab';

const execFileP = promisify(execFile);
const WAIT_MS = 120_000;

/** Files under dir whose bytes contain any needle. */
function filesContaining(dir: string, needles: string[]): string[] {
  const hits: string[] = [];
  const walk = (d: string) => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) {
        try {
          const b = fs.readFileSync(p);
          if (needles.some((n) => b.includes(n))) hits.push(p);
        } catch {
          /* vanished meanwhile */
        }
      }
    }
  };
  walk(dir);
  return hits;
}

const mountsUnder = (root: string) =>
  fs
    .readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter((l) => (l.split(' ')[4] ?? '').startsWith(`${root}/`));

describe('secrets on the lab (e2e)', function () {
  this.timeout(600_000);
  let lab: Lab | undefined;
  // Made in before(), not at describe time: a run that greps these tests out must leave no directory.
  let tmp = '';
  const v1 = `first-value-${crypto.randomBytes(16).toString('hex')}`;
  const v2 = `second-value-${crypto.randomBytes(16).toString('hex')}`;
  const needles = (v: string) => [v, Buffer.from(v).toString('base64').slice(0, 32)];

  const running = async (service: string): Promise<Task[]> =>
    (await lab!.api.listTasks({ service })).tasks.filter((t) => t.desiredState === 'RUNNING' && t.status?.state === 'RUNNING');
  /** The whole keyspace, keys and values, as etcdctl prints it (raw bytes: a binary KEK would show as itself). */
  const etcdKeyspaceRaw = async (): Promise<Buffer> => {
    const h1 = lab!.state.hosts[0].netns;
    const { stdout } = await execFileP('nsenter', [`--net=/run/netns/${h1}`, '--', 'etcdctl', ...labEtcdFlags(), 'get', '--prefix', ''], { env: { ...process.env, ETCDCTL_API: '3' }, maxBuffer: 256 * 1024 * 1024, encoding: 'buffer' });
    return stdout;
  };
  const etcdKeyspace = async () => (await etcdKeyspaceRaw()).toString('utf8');

  before(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'convoy-e2e-secret-'));
    lab = await startLab({ hosts: 2, managers: 2, heartbeat: '500ms' });
  });
  after(async () => {
    await lab?.stop();
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('delivers a secret to its task only, on tmpfs, never on disk nor in etcd; refuses rm in use; rotation rolls the service; rm of the service unmounts it', async () => {
    const file = path.join(tmp, 'v1');
    fs.writeFileSync(file, v1, { mode: 0o600 });
    // Through the second manager: the first one's dispatcher must open it.
    const m2 = connectControl(lab!.state.managers![1], { security: labSecurity(lab!.state) });
    try {
      await m2.createSecret({ spec: { name: 'db-pass', labels: {} }, data: fs.readFileSync(file) });
    } finally {
      m2.close();
    }
    fs.rmSync(file);
    const conf = path.join(tmp, 'app.conf');
    fs.writeFileSync(conf, 'listen 8080\n');
    await lab!.convoy('config', 'create', 'app.conf', conf);
    await lab!.convoy(
      'service', 'create', '-d', '--name', 'app', '--replicas', '1', '--constraint', 'node.hostname==lab-h1',
      '--secret', 'source=db-pass,target=db-pass,uid=1000,gid=1000,mode=0400', '--config', 'source=app.conf,target=/etc/app.conf', '--update-parallelism', '1',
      lab!.image, 'sleep', '1000000',
    );
    const [t1] = await eventually(async () => {
      const ts = await running('app');
      return ts.length === 1 ? ts : undefined;
    }, 'app running', WAIT_MS);

    // Inside the task: the value, its mode and owner, from a tmpfs bind mount.
    assert.equal(await lab!.execIn(t1.id, 'cat /run/secrets/db-pass'), v1);
    assert.equal((await lab!.execIn(t1.id, 'stat -c "%a %u %g" /run/secrets/db-pass')).trim(), '400 1000 1000');
    assert.match(await lab!.execIn(t1.id, 'grep " /run/secrets/db-pass " /proc/mounts'), /^tmpfs \/run\/secrets\/db-pass tmpfs ro,/);
    assert.match(await lab!.execIn(t1.id, 'echo x > /run/secrets/db-pass 2>&1 || echo refused'), /refused|Read-only/);
    assert.equal(await lab!.execIn(t1.id, 'cat /etc/app.conf'), 'listen 8080\n', 'the config');
    assert.equal((await lab!.execIn(t1.id, 'stat -c "%a" /etc/app.conf')).trim(), '444');

    // On lab-h1 the value is on the task's tmpfs only; lab-h2 has none of it.
    const taskDir = path.join(DEFAULT_TASK_FILES_ROOT, t1.id);
    assert.ok(mountsUnder(DEFAULT_TASK_FILES_ROOT).some((l) => l.split(' ')[4] === taskDir && / - tmpfs /.test(l)), `${taskDir} is a tmpfs`);
    // The search works: it finds the value on the task's tmpfs (the same mount namespace as the lab's agents).
    assert.equal(filesContaining(taskDir, needles(v1)).length, 1, 'the search finds the tmpfs copy');
    assert.deepEqual(filesContaining(TEST_LAB_DIR, needles(v1)), [], 'the value is on disk');
    const h2Tasks = (await lab!.api.listTasks({ node: 'lab-h2' })).tasks.map((t) => t.id);
    assert.ok(!mountsUnder(DEFAULT_TASK_FILES_ROOT).some((l) => h2Tasks.some((id) => l.includes(id))), 'lab-h2 mounts no secret');
    const keys = await etcdKeyspace();
    assert.match(keys, /\/convoy\/secrets\//);
    for (const n of needles(v1)) assert.ok(!keys.includes(n), 'the value is in etcd');
    // The API shows references only.
    for (const shown of [await lab!.convoy('secret', 'inspect', 'db-pass'), await lab!.convoy('service', 'inspect', 'app'), JSON.stringify(await lab!.api.listTasks({ service: 'app' }))])
      for (const n of needles(v1)) assert.ok(!shown.includes(n), 'the value came back from the API');

    // In use: refused, naming the service.
    await assert.rejects(lab!.convoy('secret', 'rm', 'db-pass'), /secret "db-pass" is in use by service\(s\) app/);

    // Rotation: a new version, the service rolls, the new task has the new value.
    const file2 = path.join(tmp, 'v2');
    fs.writeFileSync(file2, v2, { mode: 0o600 });
    assert.match(await lab!.convoy('secret', 'rotate', 'db-pass', file2), /db-pass version 2; rolling app/);
    fs.rmSync(file2);
    const t2 = await eventually(async () => (await running('app')).find((t) => t.id !== t1.id), 'app rolled to a new task', WAIT_MS);
    assert.equal(await lab!.execIn(t2.id, 'cat /run/secrets/db-pass'), v2);
    await eventually(async () => !mountsUnder(DEFAULT_TASK_FILES_ROOT).some((l) => l.includes(t1.id)), 'the old task tmpfs unmounted', WAIT_MS);
    const keys2 = await etcdKeyspace();
    for (const n of [...needles(v1), ...needles(v2)]) assert.ok(!keys2.includes(n), 'a value is in etcd');
    assert.deepEqual(filesContaining(TEST_LAB_DIR, [...needles(v1), ...needles(v2)]), [], 'a value is on disk');

    // The service gone: its tmpfs goes with its task; the secret can be removed.
    await lab!.convoy('service', 'rm', 'app');
    await eventually(async () => !mountsUnder(DEFAULT_TASK_FILES_ROOT).some((l) => l.includes(t2.id)), 'the task tmpfs unmounted', WAIT_MS);
    await lab!.convoy('secret', 'rm', 'db-pass');
    await lab!.convoy('config', 'rm', 'app.conf');
    assert.doesNotMatch(await lab!.convoy('secret', 'ls'), /db-pass/);
  });

  it('the whole etcd keyspace holds no private key (the CA\'s only sealed) and no KEK', async () => {
    const raw = await etcdKeyspaceRaw();
    const text = raw.toString('utf8');
    // The CA record is there, its key sealed: open it with the lab's KEK to learn what must not appear.
    const lines = text.split('\n');
    const at = lines.indexOf(CA_KEY_AAD);
    assert.ok(at >= 0, `${CA_KEY_AAD} in the keyspace`);
    const rec = JSON.parse(lines[at + 1]) as { cert: string; sealedKey: string };
    assert.match(rec.sealedKey, /^v1:/);
    const kekFile = path.join(lab!.state.dir, 'kek');
    const kek = loadKek(kekFile);
    const caKeyPem = kek.open(rec.sealedKey, CA_KEY_AAD).toString('utf8');
    assert.match(caKeyPem, /-----BEGIN PRIVATE KEY-----/, 'the sealed value is the CA key');
    const der = (pem: string) => crypto.createPrivateKey(pem).export({ type: 'pkcs8', format: 'der' });
    /** What a key looks like however it was stored: its DER's base64 (a 40-character run: any PEM line, any JSON string), hex, raw. */
    const forms = (d: Buffer) => [d.toString('base64').slice(20, 60), d.toString('hex').slice(40, 120), d.subarray(10, 40)];
    assert.ok(!text.includes('PRIVATE KEY'), 'a PEM private key in etcd');
    const keys: Array<[string, Buffer]> = [['the CA key', der(caKeyPem)]];
    for (const dir of [lab!.state.tlsDir!, ...lab!.state.managers!.map((_, i) => path.join(lab!.state.dir, labManagerName(i + 1), 'tls'))])
      if (fs.existsSync(path.join(dir, 'key.pem'))) keys.push([`${dir}/key.pem`, der(fs.readFileSync(path.join(dir, 'key.pem'), 'utf8'))]);
    assert.ok(keys.length >= 3, `the CA key, the admin bundle's and each manager's: ${keys.map(([n]) => n).join(', ')}`);
    for (const [name, d] of keys) for (const f of forms(d)) assert.ok(!raw.includes(f), `${name} is in etcd`);
    // The KEK: as its file holds it (base64), as hex, as raw bytes.
    const kekText = fs.readFileSync(kekFile, 'utf8').trim();
    for (const f of [kekText, kek.current.toString('hex'), kek.current]) assert.ok(!raw.includes(f), 'the KEK is in etcd');
    // The search is not vacuous: the CA certificate (public) is found the same way.
    const certDer = new crypto.X509Certificate(rec.cert).raw;
    assert.ok(text.includes(certDer.toString('base64').slice(20, 60)), 'the CA certificate is found');
  });
});
