// The agent's local exec socket (agent/exec/server.ts): 0600 and root's from
// the moment it exists (bound in a private directory, renamed into place), a
// non-root user (nobody, through setpriv) cannot connect, and a socket
// directory that another user could write to is refused at start.
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { startExecServer, type ExecServer } from './server';

describe('agent exec socket', function () {
  this.timeout(20_000);
  let dir: string;
  let srv: ExecServer | undefined;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'convoy-agent-sock-'));
    fs.chmodSync(dir, 0o755);
  });
  afterEach(async () => {
    await srv?.close();
    srv = undefined;
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('is 0600 and its directory holds nothing else; root connects, nobody gets EACCES', async () => {
    const old = process.umask(0); // the worst umask: a plain bind would make the socket 0777
    try {
      srv = await startExecServer({ socketPath: path.join(dir, 'agent-n1.sock'), target: undefined });
    } finally {
      process.umask(old);
    }
    const st = fs.statSync(srv.socketPath);
    assert.ok(st.isSocket());
    assert.equal(st.mode & 0o777, 0o600);
    assert.equal(st.uid, process.getuid?.());
    assert.deepEqual(fs.readdirSync(dir), ['agent-n1.sock'], 'the private bind directory is gone');
    const probe = `require('net').connect(${JSON.stringify(srv.socketPath)}).on('connect', () => { console.log('connected'); process.exit(0); }).on('error', (e) => { console.log(e.code); process.exit(0); })`;
    assert.equal(spawnSync(process.execPath, ['-e', probe], { encoding: 'utf8' }).stdout.trim(), 'connected', 'the probe works (as root)');
    const asNobody = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, '-e', probe], { encoding: 'utf8' });
    assert.equal(asNobody.status, 0, asNobody.stderr);
    assert.equal(asNobody.stdout.trim(), 'EACCES');
  });

  it('refuses a socket directory others can write to, or one that is a symlink, naming it', async () => {
    fs.chmodSync(dir, 0o777);
    await assert.rejects(startExecServer({ socketPath: path.join(dir, 'agent-n1.sock'), target: undefined }), /agent socket directory .*: must be owned by uid 0 and writable by no group or other user \(it is uid 0, mode 777\)/);
    assert.deepEqual(fs.readdirSync(dir), [], 'nothing made');
    fs.chmodSync(dir, 0o755);
    const link = path.join(dir, 'link');
    fs.mkdirSync(path.join(dir, 'real'), { mode: 0o755 });
    fs.symlinkSync(path.join(dir, 'real'), link);
    await assert.rejects(startExecServer({ socketPath: path.join(link, 'agent-n1.sock'), target: undefined }), /agent socket directory .*link: not a directory \(a symlink\?\)/);
  });
});
