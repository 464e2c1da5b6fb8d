// The progress view of the waiting verbs, on a real cluster (managers and
// hollow agents as child processes, e2e/support/cluster.ts) and in a real
// terminal: tmux on a private socket, 120x40, read back with capture-pane.
// What the screen shows is what is asserted: the converging lines redrawn in
// place, `verify: converged`, and for an update that fails and rolls back,
// the non-zero exit with its reason; piped, the same as plain lines.
import { strict as assert } from 'node:assert';
import { execFile, execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { TestCluster, eventually } from '../../e2e/support/cluster';

const MAIN = path.join(__dirname, '..', 'main.js');
/** A private tmux server (its socket file removed in after(), even on failure); sessions are named convoy-…. */
const SOCKET = path.join(os.tmpdir(), `convoy-progress-tmux-${process.pid}.sock`);
const SESSION = 'convoy-progress';

function tmux(...args: string[]): string {
  return execFileSync('tmux', ['-S', SOCKET, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** With CONVOY_TEST_ARTIFACTS=DIR, each screen is kept there as progress-N.txt (what the operator saw). */
function keepScreen(n: number, screen: string): void {
  const dir = process.env.CONVOY_TEST_ARTIFACTS;
  if (!dir) return;
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, `progress-${n}.txt`), screen);
}

const shq = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

describe('progress view in a terminal, on a cluster (tmux)', function () {
  this.timeout(180_000);
  const cluster = new TestCluster();
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'convoy-progress-home-'));
  let env: NodeJS.ProcessEnv;
  let n = 0;

  before(async function () {
    try {
      execFileSync('tmux', ['-V']);
    } catch {
      this.skip();
    }
    await cluster.start(1);
    await cluster.addAgent({ hostname: 'h1' });
    await cluster.addAgent({ hostname: 'h2' });
    await eventually(async () => (await cluster.api.listNodes({})).nodes.filter((x) => x.status?.state === 'NODE_READY').length === 2, 'two agents ready', 30_000);
    env = { PATH: process.env.PATH, HOME: home, CONVOY_HOST: cluster.managers[0].info.addr, CONVOY_TLS_DIR: cluster.managers[0].info.adminDir };
  });

  after(async () => {
    try {
      tmux('kill-server');
    } catch {
      /* no server left */
    }
    fs.rmSync(SOCKET, { force: true });
    await cluster.stop();
    fs.rmSync(home, { recursive: true, force: true });
  });

  /** Runs `convoy ARGS` in a fresh tmux window of 120x40; resolves to the screen once it has exited, and its exit status. */
  async function onTerminal(args: string[], interruptOn?: RegExp): Promise<{ screen: string; code: number }> {
    const name = `${SESSION}-${++n}`;
    const vars = Object.entries(env).map(([k, v]) => `${k}=${shq(v ?? '')}`).join(' ');
    const cmd = `env -i ${vars} TERM=xterm ${shq(process.execPath)} ${shq(MAIN)} ${args.map(shq).join(' ')}; echo "EXIT=$?"; sleep 600`;
    tmux('new-session', '-d', '-s', name, '-x', '120', '-y', '40', cmd);
    let screen = '';
    try {
      if (interruptOn) {
        await eventually(async () => interruptOn.test((screen = tmux('capture-pane', '-p', '-t', name))), `convoy ${args.join(' ')} to show ${interruptOn}`, { timeoutMs: 60_000, pollMs: 100 });
        tmux('send-keys', '-t', name, 'C-c');
      }
      await eventually(async () => /EXIT=\d+/.test((screen = tmux('capture-pane', '-p', '-t', name))), `convoy ${args.join(' ')} to exit`, { timeoutMs: 120_000, pollMs: 100 });
    } finally {
      keepScreen(n, screen);
      tmux('kill-session', '-t', name);
    }
    return { screen, code: Number(/EXIT=(\d+)/.exec(screen)![1]) };
  }

  it('Ctrl-C: stops watching, says the change goes on, exit status 130; the service stays', async () => {
    const { screen, code } = await onTerminal(['service', 'create', '--name', 'nowhere', '--constraint', 'node.hostname==nowhere', 'registry.local/web:1'], /1\/1: pending/);
    assert.equal(code, 130, screen);
    assert.match(screen, /^  1\/1: pending  no suitable node/m, screen);
    assert.match(screen, /^convoy: stopped watching; the change goes on \(convoy service ps nowhere\)$/m, screen);
    assert.ok((await cluster.api.getService({ service: 'nowhere' })).service);
  });

  function piped(args: string[]): Promise<{ out: string; err: string; code: number }> {
    return new Promise((resolve) => {
      execFile(process.execPath, [MAIN, ...args], { env, timeout: 120_000 }, (e, out, err) => resolve({ out, err, code: e ? ((e as { code?: number }).code ?? 1) : 0 }));
    });
  }

  it('service create: one line per slot, N/M, verify: converged, redrawn in place; exit status 0', async () => {
    const { screen, code } = await onTerminal(['service', 'create', '--name', 'web', '--replicas', '3', '--update-monitor', '1s', 'registry.local/web:1']);
    assert.equal(code, 0, screen);
    const lines = screen.split('\n');
    assert.match(lines[0], /^[0-9a-z]{10,}$/, 'the id first');
    assert.ok(lines.includes('web: overall progress: 3/3 tasks running'), screen);
    for (const i of [1, 2, 3]) assert.ok(lines.includes(`  ${i}/3: running`), screen);
    assert.ok(lines.includes('verify: converged'), screen);
    // Redrawn in place: one block on the screen, not one per poll; no escape code left visible.
    assert.equal(lines.filter((l) => l.includes('overall progress')).length, 1, screen);
    assert.doesNotMatch(screen, /\[\d*[AJ]/);
  });

  it('an update that fails and rolls back: the failure as it happens, then exit status 1 with "rolled back: <why>"', async () => {
    const { screen, code } = await onTerminal([
      'service', 'update',
      '--container-label-add', 'convoy.hollow.exit=1', '--container-label-add', 'convoy.hollow.exit-after-ms=200',
      '--update-failure-action', 'rollback', '--update-monitor', '1s', '--rollback-monitor', '1s', 'web',
    ]);
    assert.equal(code, 1, screen);
    assert.match(screen, /^web\.\d: task \w{12} failed: exit code 1$/m, screen);
    // "web: rolling back: …" appears too when a poll falls within the rollback (the unit tests assert it); on a loaded machine it may not.
    assert.match(screen, /^convoy: web: rolled back: update failed: task \w+ \(slot \d\) failed: exit code 1$/m, screen);
    const svc = (await cluster.api.getService({ service: 'web' })).service!;
    assert.equal(svc.updateStatus?.state, 'ROLLBACK_COMPLETED');
    assert.equal(svc.spec?.container?.labels?.['convoy.hollow.exit'], undefined, 'back to the spec before the update');
  });

  it('piped: one plain line per change and no escape codes; scale converges with exit status 0', async () => {
    const r = await piped(['service', 'scale', 'web=5']);
    assert.equal(r.code, 0, r.err);
    assert.doesNotMatch(r.out, /\x1b/);
    const lines = r.out.split('\n');
    assert.equal(lines[0], 'web scaled to 5');
    assert.ok(lines.includes('web: overall progress: 5/5 tasks running'), r.out);
    assert.ok(lines.includes('web: 5/5: running'), r.out);
    assert.ok(lines.includes('web: verify: converged'), r.out);
    assert.equal(new Set(lines).size, lines.length, 'each line once: a change, not a frame');
  });

  it('piped: every task rejected ends the wait with the reason, exit status 1; -d returns at once', async () => {
    const r = await piped(['service', 'create', '--name', 'bad', '--replicas', '2', '--container-label', 'convoy.hollow.prepare-error=pull access denied', 'registry.local/bad:1']);
    assert.equal(r.code, 1, r.out + r.err);
    assert.match(r.out, /^bad\.\d: task \w{12} rejected: pull access denied$/m);
    assert.match(r.err, /^convoy: bad: every task rejected: pull access denied\n$/);
    const d = await piped(['service', 'scale', '-d', 'bad=3']);
    assert.equal(d.code, 0, d.err);
    assert.equal(d.out, 'bad scaled to 3\n');
  });

  it('convoy version: client, manager and API versions', async () => {
    const r = await piped(['version']);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /^Client:\n Version: +\S+\n API version: +1\.\d+\nManager:\n Version: +\S+\n API version: +1\.\d+\n Manager: +m0 at 127\.0\.0\.1:\d+ \(leader\)\n$/);
  });
});
