// Bind mount admission: allowed prefixes, the paths always refused and the
// paths that hold them, normalisation and `..`.
import { strict as assert } from 'node:assert';
import { checkAllowEntry, checkBindSource, normaliseBindPath } from './bind-policy';

const ok = (src: string, allow: string[], extra: string[] = []) => {
  const v = checkBindSource(src, allow, extra);
  assert.ok(v.ok, `${src} refused: ${v.ok ? '' : v.reason}`);
  return v.path;
};
const no = (src: string, allow: string[], re: RegExp, extra: string[] = []) => {
  const v = checkBindSource(src, allow, extra);
  assert.ok(!v.ok, `${src} admitted`);
  assert.match(v.reason, re);
};

describe('bind mount policy', () => {
  it('admits nothing while the allow list is empty (the default)', () => {
    no('/srv/data', [], /none yet: convoy cluster update --bind-allow/);
  });

  it('admits paths under an allowed prefix, and only those', () => {
    assert.equal(ok('/srv/data', ['/srv']), '/srv/data');
    assert.equal(ok('/srv', ['/srv']), '/srv');
    no('/srvx/data', ['/srv'], /not under a path the cluster allows \(\/srv/);
    no('/opt/x', ['/srv', '/data'], /not under/);
  });

  it('normalises, and refuses relative paths, `..` and NUL', () => {
    assert.equal(ok('/srv//data/./x/', ['/srv']), '/srv/data/x');
    no('/srv/../etc/shadow', ['/srv'], /'\.\.'/);
    no('/srv/..', ['/srv'], /'\.\.'/);
    no('srv/data', ['/srv'], /absolute/);
    no('/srv/a\0b', ['/srv'], /NUL/);
  });

  it("refuses the cluster's own state, credentials, kernel interfaces and sockets under any allow list", () => {
    for (const p of ['/etc', '/etc/shadow', '/proc/1/root', '/sys/fs/cgroup', '/dev/sda', '/root/.convoy', '/run/docker.sock', '/var/run/docker.sock', '/var/lib/convoy/manager/kek', '/var/lib/etcd', '/boot'])
      no(p, ['/'], /is never mounted/);
  });

  it('refuses a path that holds a refused one (/, /var), even when allowed', () => {
    no('/', ['/'], /it holds \/etc/);
    no('/var', ['/var'], /it holds \/var\/run/);
    no('/var/lib', ['/var'], /it holds \/var\/lib\/convoy/);
    assert.equal(ok('/var/log/app', ['/var']), '/var/log/app');
  });

  it("refuses a process's own state given at run time (a data dir flag) and what holds it", () => {
    no('/tmp/lab/m1', ['/tmp'], /cluster's own state/, ['/tmp/lab/m1']);
    no('/tmp/lab', ['/tmp'], /it holds \/tmp\/lab\/m1/, ['/tmp/lab/m1/']);
    assert.equal(ok('/tmp/other', ['/tmp'], ['/tmp/lab/m1']), '/tmp/other');
  });

  it('checks allow entries: absolute, normalised, never a refused path', () => {
    assert.deepEqual(checkAllowEntry('/srv/'), { ok: true, path: '/srv' });
    assert.deepEqual(checkAllowEntry('/'), { ok: true, path: '/' });
    assert.ok(!checkAllowEntry('/etc/ssl').ok);
    assert.ok(!checkAllowEntry('/var/lib/convoy').ok);
    assert.ok(!checkAllowEntry('relative').ok);
    assert.ok(!normaliseBindPath('/a/../b').ok);
  });
});
