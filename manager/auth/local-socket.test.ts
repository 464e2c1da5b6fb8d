// The manager's root-only unix socket: its calls are LOCAL_ROOT (admin),
// the socket is 0600 and root's in a 0700 directory, a non-root user
// (nobody, through setpriv) cannot connect, the CLI reaches it through
// CONVOY_HOST=unix:///path, and it never replaces what is not a stale socket.
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { connectControl } from '../../cli/client';
import { LOCAL_ROOT } from '../../common/identity';
import type { AuditEvent } from '../../proto/events';
import { grpcPackages } from '../../proto/mod';
import { authorize, callerOf, type Caller } from './authorize';
import { startLocalSocket, type LocalSocket } from './local-socket';

describe('root-only unix socket', function () {
  this.timeout(20_000);
  let dir: string;
  let sock: LocalSocket | undefined;
  const seen: (Caller | undefined)[] = [];
  const records: AuditEvent[] = [];
  const service = grpcPackages().control.convoy.Control.service;
  const handlers = authorize(
    service,
    {
      GetClusterInfo: (call: object, cb: grpc.sendUnaryData<object>) => {
        seen.push(callerOf(call));
        cb(null, { nodes: 7 });
      },
      RotateJoinToken: (_call: object, cb: grpc.sendUnaryData<object>) => cb(null, { worker: 'w', manager: 'm' }),
    },
    { audit: { record: (r) => void records.push(r) }, source: 'manager/m1' },
  );

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'convoy-sock-'));
    fs.chmodSync(dir, 0o755); // a directory others may enter: the socket's own mode is what keeps them out
    seen.length = 0;
    records.length = 0;
  });
  afterEach(async () => {
    await sock?.close();
    sock = undefined;
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('serves the Control API to local root as LOCAL_ROOT, through CONVOY_HOST=unix://', async () => {
    sock = await startLocalSocket({ path: path.join(dir, 'run', 'convoy.sock'), service, handlers });
    const st = fs.statSync(sock.path);
    assert.ok(st.isSocket());
    assert.equal(st.mode & 0o777, 0o600);
    assert.equal(st.uid, 0);
    assert.equal(fs.statSync(path.dirname(sock.path)).mode & 0o777, 0o700, 'a directory it created is 0700');
    assert.deepEqual(fs.readdirSync(path.dirname(sock.path)), ['convoy.sock'], 'no private bind directory left');
    const c = connectControl(`unix://${sock.path}`, { mode: 'local' });
    try {
      const info = await c.api.getClusterInfo({});
      assert.equal(info.nodes, 7);
      await c.api.rotateJoinToken({ worker: true, manager: false });
    } finally {
      c.close();
    }
    assert.deepEqual(seen, [{ identity: LOCAL_ROOT, via: 'unix-socket' }]);
    assert.deepEqual(records.map((r) => [r.action, r.who.id, r.who.via]), [['RotateJoinToken', 'local-root', 'unix-socket']]);
  });

  it('refuses a non-root user at connect (nobody through setpriv)', async () => {
    sock = await startLocalSocket({ path: path.join(dir, 'convoy.sock'), service, handlers });
    const probe = `require('net').connect(${JSON.stringify(sock.path)}).on('connect', () => { console.log('connected'); process.exit(0); }).on('error', (e) => { console.log(e.code); process.exit(0); })`;
    const asRoot = spawnSync(process.execPath, ['-e', probe], { encoding: 'utf8' });
    assert.equal(asRoot.stdout.trim(), 'connected', 'the probe works (as root)');
    const asNobody = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, '-e', probe], { encoding: 'utf8' });
    assert.equal(asNobody.status, 0, asNobody.stderr);
    assert.equal(asNobody.stdout.trim(), 'EACCES');
    assert.deepEqual(seen, []);
  });

  it('makes the data dir 0700 when asked, replaces a stale socket, and refuses a live one or a file', async () => {
    const p = path.join(dir, 'convoy.sock');
    // A killed manager's socket: nobody listens.
    const stale = await startLocalSocket({ path: p, service, handlers });
    const ino = fs.lstatSync(p).ino;
    // (simulate the kill: close the server but leave the file)
    fs.renameSync(p, `${p}.keep`);
    await stale.close();
    fs.renameSync(`${p}.keep`, p);
    assert.equal(fs.lstatSync(p).ino, ino);
    sock = await startLocalSocket({ path: p, service, handlers, privateDir: true });
    assert.equal(fs.statSync(dir).mode & 0o777, 0o700);
    await assert.rejects(startLocalSocket({ path: p, service, handlers }), /another process serves it/);
    const file = path.join(dir, 'not-a-socket');
    fs.writeFileSync(file, 'keep me');
    await assert.rejects(startLocalSocket({ path: file, service, handlers }), /exists and is not a socket/);
    assert.equal(fs.readFileSync(file, 'utf8'), 'keep me');
    await assert.rejects(startLocalSocket({ path: path.join(dir, 'x'.repeat(120), 'convoy.sock'), service, handlers }), /too long for a unix socket/);
  });
});
