// Completion: the words a TAB completes (verbs, flags, flag values, names
// from the cluster), __complete against a fake manager, silence on failure,
// and the bash script itself run by bash with COMP_WORDS set.
import { strict as assert } from 'node:assert';
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { buildProgram, run } from './main';
import { completeWords, type NameKind } from './completion';
import { fake, fakeNode, fakeTask } from './testing/fake';

const names = async (k: NameKind) => ({ service: ['web', 'worker', 'db'], node: ['h1', 'h2'], task: ['abc123'], network: ['front', 'back'], context: ['default', 'prod'], secret: [], config: [] })[k];

describe('completion', () => {
  const program = buildProgram(fake({}).io);
  const c = (...words: string[]) => completeWords(program, words, names);

  it('completes verbs, flags and fixed flag values from the command tree', async () => {
    assert.deepEqual(await c('se'), ['secret', 'service']);
    assert.deepEqual(await c('service', 'r'), ['rm', 'rollback']);
    assert.ok(!(await c('')).includes('__complete'), 'the hidden verb is not offered');
    assert.deepEqual(await c('service', 'create', '--placement-s'), ['--placement-strategy']);
    assert.deepEqual(await c('service', 'create', '--placement-strategy', ''), ['binpack', 'spread']);
    assert.deepEqual(await c('--host', 'x', 'node', 'ls', '--format', 'j'), ['json'], 'a root flag value is skipped');
    assert.deepEqual(await c('completion', ''), ['bash', 'zsh']);
  });

  it('completes the names a positional or a flag takes', async () => {
    assert.deepEqual(await c('service', 'rm', 'w'), ['web', 'worker']);
    assert.deepEqual(await c('service', 'rm', 'web', ''), ['db', 'web', 'worker'], 'rm takes many');
    assert.deepEqual(await c('node', 'ps', ''), ['h1', 'h2']);
    assert.deepEqual(await c('task', 'exec', ''), ['abc123']);
    assert.deepEqual(await c('task', 'exec', 'abc123', ''), [], 'then the command line: nothing');
    assert.deepEqual(await c('service', 'create', '--network', 'f'), ['front']);
    assert.deepEqual(await c('--context', ''), ['default', 'prod']);
    assert.deepEqual(await c('service', 'create', 'img:1', ''), [], 'an image is not a name we know');
  });

  it('__complete asks the manager and prints one candidate a line; prints nothing when it fails', async function () {
    this.timeout(30_000);
    const f = fake({ listNodes: async () => ({ nodes: [fakeNode('aa', 'lab-1'), fakeNode('bb', 'lab-2')], leader: '' }), listTasks: async () => ({ tasks: [fakeTask('0123456789abcdef0123', 'web', 1, 'aa', 'RUNNING')] }) });
    assert.equal(await run(['__complete', 'node', 'inspect', 'lab'], f.io), 0);
    assert.equal(f.out(), 'lab-1\nlab-2\n');
    const t = fake({ listTasks: async () => ({ tasks: [fakeTask('0123456789abcdef0123', 'web', 1, 'aa', 'RUNNING')] }) });
    assert.equal(await run(['__complete', 'task', 'logs', ''], t.io), 0);
    assert.equal(t.out(), '0123456789ab\n');
    const broken = fake({
      listServices: async () => {
        throw new Error('UNAVAILABLE');
      },
    });
    assert.equal(await run(['__complete', 'service', 'ps', ''], broken.io), 0);
    assert.equal(broken.out() + broken.err(), '');
    const slow = fake({ listNetworks: () => new Promise(() => undefined) });
    const started = Date.now();
    assert.equal(await run(['__complete', 'network', 'rm', ''], slow.io), 0);
    assert.equal(slow.out() + slow.err(), '', 'a manager that does not answer: nothing, after the deadline');
    assert.ok(Date.now() - started < 60_000);
    // Flags among the words are taken as given (not as __complete's own).
    const h = fake({ listNodes: async () => ({ nodes: [], leader: '' }) });
    assert.equal(await run(['__complete', '--host', '10.1.2.3', 'node', 'ps', ''], h.io), 0);
    assert.deepEqual(h.hosts, ['10.1.2.3:7420']);
    const unknown = fake({});
    assert.equal(await run(['completion', 'fish'], unknown.io), 1);
    assert.match(unknown.err(), /^convoy: shell: "fish" is not bash or zsh\n$/);
  });

  it('the bash script completes through `convoy __complete` (bash run with COMP_WORDS set)', function () {
    this.timeout(60_000);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'convoy-completion-'));
    try {
      const main = path.join(__dirname, 'main.js');
      fs.writeFileSync(path.join(dir, 'convoy'), `#!/bin/sh\nexec "${process.execPath}" "${main}" "$@"\n`, { mode: 0o755 });
      const script = execFileSync(process.execPath, [main, 'completion', 'bash'], { encoding: 'utf8' });
      fs.writeFileSync(path.join(dir, 'script.bash'), script);
      const probe = (words: string[]) =>
        execFileSync('bash', ['-c', `source "${dir}/script.bash"; COMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length - 1}; _convoy_complete; printf '%s\\n' "\${COMPREPLY[@]}"; complete -p convoy`], {
          encoding: 'utf8',
          env: { PATH: `${dir}:${process.env.PATH}`, HOME: dir, CONVOY_CONFIG: path.join(dir, 'none.json'), CONVOY_HOST: '127.0.0.1:1' },
        });
      assert.equal(probe(['convoy', 'service', 'sc']), 'scale\ncomplete -o default -F _convoy_complete convoy\n');
      assert.equal(probe(['convoy', 'node', 'p']), 'promote\nps\ncomplete -o default -F _convoy_complete convoy\n');
      // No manager reachable: names complete to nothing, and nothing reaches the terminal.
      assert.equal(probe(['convoy', 'service', 'rm', '']), '\ncomplete -o default -F _convoy_complete convoy\n');
      assert.match(execFileSync(process.execPath, [main, 'completion', 'zsh'], { encoding: 'utf8' }), /compdef _convoy_complete convoy\n$/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('the zsh script completes through `convoy __complete` (zsh run with words and CURRENT set, compadd recorded)', function () {
    this.timeout(60_000);
    // .ci/setup installs zsh; a machine without it cannot run this case.
    if (spawnSync('zsh', ['-c', 'true']).error) this.skip();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'convoy-completion-'));
    try {
      const main = path.join(__dirname, 'main.js');
      fs.writeFileSync(path.join(dir, 'convoy'), `#!/bin/sh\nexec "${process.execPath}" "${main}" "$@"\n`, { mode: 0o755 });
      fs.writeFileSync(path.join(dir, 'script.zsh'), execFileSync(process.execPath, [main, 'completion', 'zsh'], { encoding: 'utf8' }));
      // compdef and compadd exist only inside zsh's completion system: stand-ins record what the script gives them.
      const probe = (words: string[]) =>
        execFileSync('zsh', ['-f', '-c', `compdef() { print -r -- "compdef $*" }; compadd() { shift; (( $# )) && print -rl -- "$@"; true }; source "${dir}/script.zsh"; words=(${words.map((w) => `'${w}'`).join(' ')}); CURRENT=${words.length}; _convoy_complete`], {
          encoding: 'utf8',
          env: { PATH: `${dir}:${process.env.PATH}`, HOME: dir, CONVOY_CONFIG: path.join(dir, 'none.json'), CONVOY_HOST: '127.0.0.1:1' },
        });
      assert.equal(probe(['convoy', 'service', 'sc']), 'compdef _convoy_complete convoy\nscale\n');
      assert.equal(probe(['convoy', 'node', 'p']), 'compdef _convoy_complete convoy\npromote\nps\n');
      assert.equal(probe(['convoy', 'service', 'rm', '']), 'compdef _convoy_complete convoy\n', 'no manager: nothing offered, nothing printed');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
