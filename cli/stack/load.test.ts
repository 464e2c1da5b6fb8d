// The compose loader: every listed key accepted and converted with Docker's
// meaning, warned and refused keys, interpolation, merges of several files,
// and bad files refused with file, line, path and reason.
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { ServiceSpec } from '../../proto/mod';
import { NAMESPACE_LABEL, type StackPlan } from './convert';
import { interpolateString } from './interpolate';
import { loadCompose, loadStack, renderConfig } from './load';
import { parseCompose } from './tree';

let dir: string;

function write(name: string, text: string): string {
  const p = path.join(dir, name);
  fs.mkdirSync(path.dirname(p), { recursive: true });
  fs.writeFileSync(p, text);
  return p;
}

function plan(text: string | string[], env: NodeJS.ProcessEnv = {}, envFiles?: string[]): StackPlan {
  const texts = Array.isArray(text) ? text : [text];
  const files = texts.map((t, i) => write(`c${i}.yml`, t));
  return loadStack('app', { files, env, envFiles, cwd: dir });
}

function svc(p: StackPlan, key: string): ServiceSpec {
  const s = p.services.find((x) => x.key === key);
  assert.ok(s, `service ${key} planned`);
  return s.spec;
}

/** Asserts a refusal: its message names the file, line, path and reason. */
function refused(text: string | string[], re: RegExp, env: NodeJS.ProcessEnv = {}): void {
  assert.throws(() => plan(text, env), (e: Error) => {
    assert.equal(e.name, 'StackError');
    assert.match(e.message, re);
    assert.doesNotMatch(e.message, /\n/, 'one line');
    return true;
  });
}

const S = (body: string) => `services:\n  web:\n    image: reg.local/web:1\n${body}`;

describe('stack loader', () => {
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'convoy-stack-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  describe('interpolation', () => {
    const env: Record<string, string> = { A: 'a', EMPTY: '' };
    const look = (n: string) => env[n];
    const cases: [string, string][] = [
      ['$A', 'a'],
      ['${A}', 'a'],
      ['x${A}y', 'xay'],
      ['${UNSET:-d}', 'd'],
      ['${EMPTY:-d}', 'd'],
      ['${EMPTY-d}', ''],
      ['${UNSET-d}', 'd'],
      ['${A:-d}', 'a'],
      ['${A:?need A}', 'a'],
      ['${EMPTY?m}', ''],
      ['$$A', '$A'],
      ['$${A}', '${A}'],
      ['${UNSET:-${A}}', 'a'],
      ['${UNSET:-${ALSO:-deep}}', 'deep'],
      ['${A:+alt}', 'alt'],
      ['${UNSET:+alt}', ''],
      ['${A+alt}', 'alt'],
      ['${UNSET}', ''],
      ['100%', '100%'],
    ];
    for (const [input, want] of cases) it(`${input} → ${JSON.stringify(want)}`, () => assert.equal(interpolateString(input, look), want));

    it('refuses ${VAR:?message} and ${VAR?message} with the message', () => {
      assert.throws(() => interpolateString('${UNSET:?set UNSET please}', look), /required variable UNSET is missing a value: set UNSET please/);
      assert.throws(() => interpolateString('${EMPTY:?no}', look), /required variable EMPTY/);
      assert.throws(() => interpolateString('${UNSET?no}', look), /required variable UNSET/);
    });

    it('refuses malformed templates', () => {
      assert.throws(() => interpolateString('${A', look), /missing '}'/);
      assert.throws(() => interpolateString('${1A}', look), /invalid interpolation/);
      assert.throws(() => interpolateString('a $ b', look), /\$\$ for a literal/);
    });

    it('takes values from the environment, then --env-file, then .env beside the first file; warns about unset ones', () => {
      write('.env', 'TAG=from-dotenv\nPORT=1111\nONLY_DOT=d # comment\n');
      const ef = write('other.env', 'PORT=2222\nexport QUOTED="a b"\n');
      const p = plan(S(`    environment: ["T=\${TAG}", "P=\${PORT}", "D=\${ONLY_DOT}", "Q=\${QUOTED}", "U=\${NOPE}"]\n`), { TAG: 'from-shell' }, [ef]);
      assert.deepEqual(svc(p, 'web').container!.env, ['D=d', 'P=2222', 'Q=a b', 'T=from-shell', 'U=']);
      assert.ok(p.warnings.some((w) => /variable NOPE is not set/.test(w)), p.warnings.join('\n'));
    });

    it('interpolates values, not keys, and casts interpolated numbers and booleans as Docker does', () => {
      const p = plan(S(`    read_only: \${RO}\n    deploy:\n      replicas: \${N}\n    labels:\n      \${K}: v\n`), { N: '3', RO: 'true', K: 'x' });
      assert.equal(svc(p, 'web').replicas, 3);
      assert.equal(svc(p, 'web').container!.readOnly, true);
      assert.equal(svc(p, 'web').container!.labels['${K}'], 'v');
    });

    it('an interpolation error names file, line and path', () => refused('services:\n  web:\n    image: ${IMG:?set IMG}\n', /c0\.yml:3: services\.web\.image: required variable IMG is missing a value: set IMG/));
  });

  describe('service keys (converted)', () => {
    it('image, command (string: shell words), entrypoint (list), hostname, user, working_dir', () => {
      const s = svc(plan(S(`    command: sh -c 'echo "hi there"' x\\ y\n    entrypoint: ["/init", "--"]\n    hostname: web1\n    user: "1000:1000"\n    working_dir: /srv\n`)), 'web');
      assert.equal(s.container!.image, 'reg.local/web:1');
      assert.deepEqual(s.container!.args, ['sh', '-c', 'echo "hi there"', 'x y']);
      assert.deepEqual(s.container!.command, ['/init', '--']);
      assert.equal(s.container!.hostname, 'web1');
      assert.equal(s.container!.user, '1000:1000');
      assert.equal(s.container!.dir, '/srv');
    });

    it('environment as a map and a list, env_file first, a bare key from the environment', () => {
      write('web.env', 'FROM_FILE=1\nOVER=file\n# c\n');
      const m = svc(plan(S('    env_file: web.env\n    environment:\n      OVER: map\n      N: 5\n      SHELL_VAR:\n')), 'web');
      assert.deepEqual(m.container!.env, ['FROM_FILE=1', 'N=5', 'OVER=map']);
      const l = svc(plan(S('    environment: ["A=1", "B=x=y", "HOME"]\n'), { HOME: '/root' }), 'web');
      assert.deepEqual(l.container!.env, ['A=1', 'B=x=y', 'HOME=/root']);
    });

    it('ports: short forms, ranges, udp, long form with mode host|ingress', () => {
      const s = svc(plan(S('    ports:\n      - 80\n      - "8080:81"\n      - "5353:53/udp"\n      - "9000-9001:90-91"\n      - target: 443\n        published: 8443\n        mode: host\n        protocol: tcp\n')), 'web');
      assert.deepEqual(
        s.endpoint!.ports.map((p) => [p.publishedPort, p.targetPort, p.protocol, p.publishMode]),
        [[0, 80, 'tcp', 'INGRESS'], [8080, 81, 'tcp', 'INGRESS'], [5353, 53, 'udp', 'INGRESS'], [9000, 90, 'tcp', 'INGRESS'], [9001, 91, 'tcp', 'INGRESS'], [8443, 443, 'tcp', 'HOST']],
      );
    });

    it('networks with aliases; every network gets the short name; no networks = STACK_default', () => {
      const p = plan('services:\n  web:\n    image: r/w:1\n    networks:\n      front:\n        aliases: [www]\n      back:\n  db:\n    image: r/d:1\nnetworks:\n  front:\n  back:\n    internal: true\n');
      const web = svc(p, 'web');
      assert.deepEqual(web.networks, ['app_front', 'app_back']);
      assert.deepEqual(web.networkAliases, [{ network: 'app_front', aliases: ['www', 'web'] }, { network: 'app_back', aliases: ['web'] }]);
      assert.deepEqual(svc(p, 'db').networks, ['app_default']);
      assert.deepEqual(p.networks.map((n) => [n.name, n.spec.internal, n.spec.labels[NAMESPACE_LABEL]]), [['app_front', false, 'app'], ['app_back', true, 'app'], ['app_default', false, 'app']]);
    });

    it('volumes: named (scoped), anonymous, relative and absolute binds, long bind/volume/tmpfs, and tmpfs', () => {
      const p = plan(S('    volumes:\n      - data:/data\n      - /cache\n      - ./conf:/etc/conf:ro\n      - /abs:/abs\n      - {type: volume, source: data, target: /d2, read_only: true, volume: {nocopy: true}}\n      - {type: bind, source: ./x, target: /x}\n      - {type: tmpfs, target: /t, tmpfs: {size: 1048576}}\n    tmpfs: ["/run:size=64m", /tmp]\nvolumes:\n  data:\n    labels: {a: b}\n'));
      const m = svc(p, 'web').container!.mounts.map((x) => [x.type, x.source, x.target, x.readOnly, x.tmpfsSizeBytes]);
      assert.deepEqual(m, [
        ['VOLUME', 'app_data', '/data', false, 0],
        ['VOLUME', '', '/cache', false, 0],
        ['BIND', path.join(dir, 'conf'), '/etc/conf', true, 0],
        ['BIND', '/abs', '/abs', false, 0],
        ['VOLUME', 'app_data', '/d2', true, 0],
        ['BIND', path.join(dir, 'x'), '/x', false, 0],
        ['TMPFS', '', '/t', false, 1048576],
        ['TMPFS', '', '/run', false, 64 * 1024 * 1024],
        ['TMPFS', '', '/tmp', false, 0],
      ]);
      assert.deepEqual(p.volumes, [{ key: 'data', name: 'app_data', external: false }]);
    });

    it('external and named volumes keep their names', () => {
      const p = plan(S('    volumes: ["e:/e", "n:/n"]\nvolumes:\n  e:\n    external: true\n  n:\n    name: shared-n\n'));
      assert.deepEqual(svc(p, 'web').container!.mounts.map((m) => m.source), ['e', 'shared-n']);
    });

    it('secrets and configs: short and long references, file, environment and external objects', () => {
      write('s.txt', 'hunter2');
      const p = plan(S('    secrets:\n      - db_pw\n      - {source: ext, target: other, uid: "10", gid: "20", mode: 0400}\n    configs:\n      - cfg\n      - {source: cfg, target: /etc/app.conf}\nsecrets:\n  db_pw:\n    file: ./s.txt\n  ext:\n    external: true\nconfigs:\n  cfg:\n    environment: CFG\n'), { CFG: 'k=v' });
      const web = p.services[0];
      assert.deepEqual(web.secrets, [
        { name: 'app_db_pw', target: '/run/secrets/db_pw', uid: 0, gid: 0, mode: 0o444 },
        { name: 'ext', target: '/run/secrets/other', uid: 10, gid: 20, mode: 0o400 },
      ]);
      assert.deepEqual(web.configs, [
        { name: 'app_cfg', target: '/cfg', uid: 0, gid: 0, mode: 0o444 },
        { name: 'app_cfg', target: '/etc/app.conf', uid: 0, gid: 0, mode: 0o444 },
      ]);
      assert.equal(p.secrets[0].data?.toString(), 'hunter2');
      assert.equal(p.secrets[0].labels[NAMESPACE_LABEL], 'app');
      assert.equal(p.secrets[1].external, true);
      assert.equal(p.configs[0].data?.toString(), 'k=v');
    });

    it('healthcheck: string test, list test, durations, retries, start_period, disable', () => {
      const a = svc(plan(S('    healthcheck:\n      test: curl -f http://localhost\n      interval: 1m30s\n      timeout: 500ms\n      retries: 3\n      start_period: 40s\n')), 'web');
      assert.deepEqual(a.container!.healthcheck, { test: ['CMD-SHELL', 'curl -f http://localhost'], intervalMs: 90_000, timeoutMs: 500, retries: 3, startPeriodMs: 40_000 });
      const b = svc(plan(S('    healthcheck:\n      test: ["CMD", "true"]\n')), 'web');
      assert.deepEqual(b.container!.healthcheck!.test, ['CMD', 'true']);
      const c = svc(plan(S('    healthcheck:\n      disable: true\n')), 'web');
      assert.deepEqual(c.container!.healthcheck!.test, ['NONE']);
    });

    it('labels (container) and deploy.labels (service), both with the namespace label', () => {
      const s = svc(plan(S('    labels: ["a=1", "b"]\n    deploy:\n      labels: {team: x, n: 1}\n')), 'web');
      assert.deepEqual(s.container!.labels, { a: '1', b: '', [NAMESPACE_LABEL]: 'app' });
      assert.deepEqual(s.labels, { team: 'x', n: '1', [NAMESPACE_LABEL]: 'app' });
    });

    it('stop_grace_period, stop_signal, read_only, cap_add, cap_drop, logging (local)', () => {
      const s = svc(plan(S('    stop_grace_period: 1m\n    stop_signal: SIGINT\n    read_only: true\n    cap_add: [net_admin]\n    cap_drop: [ALL]\n    logging:\n      driver: local\n')), 'web');
      assert.equal(s.container!.stopGracePeriodMs, 60_000);
      assert.equal(s.container!.stopSignal, 'SIGINT');
      assert.equal(s.container!.readOnly, true);
      assert.deepEqual(s.container!.capAdd, ['CAP_NET_ADMIN']);
      assert.deepEqual(s.container!.capDrop, ['ALL']);
    });

    it('deploy: mode, replicas, endpoint_mode, placement, resources, restart_policy, update_config, rollback_config', () => {
      const s = svc(
        plan(
          S(`    deploy:
      mode: replicated
      replicas: 4
      endpoint_mode: dnsrr
      placement:
        constraints: ["node.role == manager"]
        preferences: [{spread: node.labels.zone}]
        max_replicas_per_node: 2
        x-convoy-placement-strategy: binpack
      resources:
        limits: {cpus: "1.5", memory: 128M, pids: 100}
        reservations: {cpus: 0.25, memory: 64M}
      restart_policy: {condition: on-failure, delay: 2s, max_attempts: 3, window: 1m}
      update_config: {parallelism: 2, delay: 10s, failure_action: rollback, monitor: 30s, max_failure_ratio: 0.5, order: start-first}
      rollback_config: {parallelism: 0, failure_action: continue, order: stop-first}
`),
        ),
        'web',
      );
      assert.equal(s.mode, 'REPLICATED');
      assert.equal(s.replicas, 4);
      assert.equal(s.endpoint!.mode, 'DNSRR');
      assert.deepEqual(s.placement, { constraints: ['node.role == manager'], preferences: ['node.labels.zone'], maxReplicasPerNode: 2, platforms: [], strategy: 'BINPACK' });
      refused(S(`    deploy:\n      placement:\n        x-convoy-placement-strategy: tightly\n`), /c0\.yml:\d+.*services\.web\.deploy\.placement\.x-convoy-placement-strategy.*"tightly" is not one of spread, binpack/);
      assert.deepEqual(s.resources, { limits: { nanoCpus: 1.5e9, memoryBytes: 128 * 2 ** 20, pids: 100 }, reservations: { nanoCpus: 0.25e9, memoryBytes: 64 * 2 ** 20, pids: 0 } });
      assert.deepEqual(s.restart, { condition: 'RESTART_ON_FAILURE', delayMs: 2000, maxAttempts: 3, windowMs: 60_000 });
      assert.deepEqual(s.update, { parallelism: 2, delayMs: 10_000, failureAction: 'FAILURE_ROLLBACK', monitorMs: 30_000, maxFailureRatio: 0.5, order: 'START_FIRST' });
      assert.equal(s.rollback!.parallelism, 0);
      assert.equal(s.rollback!.failureAction, 'FAILURE_CONTINUE');
    });

    it('deploy.mode global takes no replicas', () => {
      assert.equal(svc(plan(S('    deploy: {mode: global}\n')), 'web').mode, 'GLOBAL');
      refused(S('    deploy: {mode: global, replicas: 2}\n'), /c0\.yml:4: services\.web\.deploy\.replicas: replicas can only be used with replicated mode/);
    });

    it('depends_on: short form = service_started, long form conditions, dependency order', () => {
      const p = plan('services:\n  web:\n    image: r/w:1\n    depends_on:\n      api: {condition: service_healthy}\n      init: {condition: service_completed_successfully}\n  api:\n    image: r/a:1\n    depends_on: [db]\n  db:\n    image: r/d:1\n  init:\n    image: r/i:1\n');
      assert.deepEqual(p.services.map((s) => s.key), ['db', 'api', 'init', 'web']);
      assert.deepEqual(p.services[1].dependsOn, [{ service: 'db', condition: 'service_started' }]);
      assert.deepEqual(p.services[3].dependsOn, [{ service: 'api', condition: 'service_healthy' }, { service: 'init', condition: 'service_completed_successfully' }]);
    });

    it('top-level networks: driver overlay, internal, attachable, external, name, labels, ipam subnet', () => {
      const p = plan(S('    networks: [a, b, c]\nnetworks:\n  unused: {external: true}\n  a: {driver: overlay, attachable: true, labels: {x: y}, ipam: {config: [{subnet: 10.9.0.0/24}]}}\n  b: {external: true}\n  c: {name: plain-c}\n'));
      assert.deepEqual(p.networks.map((n) => [n.name, n.external, n.spec.subnet, n.spec.labels.x]), [['app_a', false, '10.9.0.0/24', 'y'], ['b', true, '', undefined], ['plain-c', false, '', undefined]]);
    });

    it('version is accepted and ignored; x- extensions anywhere they are allowed; YAML anchors and merge keys', () => {
      const p = plan('version: "3.8"\nx-common: &c\n  image: r/w:1\n  environment: [A=1]\nservices:\n  web:\n    <<: *c\n    x-note: hi\n    hostname: h\n');
      assert.equal(svc(p, 'web').container!.image, 'r/w:1');
      assert.deepEqual(svc(p, 'web').container!.env, ['A=1']);
    });
  });

  describe('jobs: deploy.mode replicated-job|global-job and x-convoy-job (docs/jobs.md)', () => {
    it('replicated-job: replicas completions, all at once unless max_concurrent', () => {
      const s = svc(plan(S('    deploy: {mode: replicated-job, replicas: 4}\n')), 'web');
      assert.equal(s.mode, 'REPLICATED_JOB');
      assert.equal(s.replicas, 4);
      assert.equal(s.job, null, 'the manager fills the job defaults');
    });
    it('global-job: no replicas', () => {
      const s = svc(plan(S('    deploy: {mode: global-job}\n')), 'web');
      assert.equal(s.mode, 'GLOBAL_JOB');
      assert.equal(s.replicas, 0);
      refused(S('    deploy: {mode: global-job, replicas: 2}\n'), /c0\.yml:\d+: services\.web\.deploy\.replicas: replicas can only be used with replicated-job mode/);
    });
    it('x-convoy-job: a schedule, its time zone, the policy, history limit, deadline, max concurrency', () => {
      const s = svc(
        plan(S('    deploy: {mode: replicated-job, replicas: 2}\n    x-convoy-job:\n      schedule: "*/5 * * * *"\n      timezone: Europe/Paris\n      concurrency_policy: forbid\n      history_limit: 5\n      starting_deadline: 2m\n      max_concurrent: 1\n')),
        'web',
      );
      assert.deepEqual(s.job, { maxConcurrent: 1, schedule: '*/5 * * * *', timezone: 'Europe/Paris', concurrencyPolicy: 'CONCURRENCY_FORBID', historyLimit: 5, startingDeadlineMs: 120_000 });
    });
    it('x-convoy-job is refused without a job mode, with an unknown key, or a bad value, naming the path and line', () => {
      refused(S('    x-convoy-job: {schedule: "* * * * *"}\n'), /c0\.yml:4: services\.web\.x-convoy-job: only with deploy\.mode replicated-job or global-job/);
      refused(S('    deploy: {mode: replicated-job}\n    x-convoy-job: {schedual: "* * * * *"}\n'), /c0\.yml:\d+: services\.web\.x-convoy-job\.schedual/);
      refused(S('    deploy: {mode: replicated-job}\n    x-convoy-job: {concurrency_policy: never}\n'), /c0\.yml:\d+: services\.web\.x-convoy-job\.concurrency_policy/);
      refused(S('    deploy: {mode: global-job}\n    x-convoy-job: {max_concurrent: 2}\n'), /services\.web\.x-convoy-job\.max_concurrent: not allowed with deploy\.mode global-job/);
    });
  });

  describe('keys not supported yet (refused by name, never dropped)', () => {
    const cases: [string, string][] = [
      ['    oom_score_adj: 10\n', 'oom_score_adj'],
    ];
    for (const [body, key] of cases)
      it(key, () => refused(S(body), new RegExp(`c0\\.yml:\\d+: services\\.web\\.${key.replace('.', '\\.')}: not supported yet`)));
    it('the default values ask for nothing and pass (init: false, tty: false)', () => {
      assert.ok(plan(S('    init: false\n    tty: false\n')));
    });
  });

  describe('keys Docker warns about and ignores', () => {
    for (const k of ['build', 'restart', 'container_name', 'links', 'expose', 'network_mode', 'security_opt', 'shm_size', 'cgroup_parent', 'domainname', 'external_links', 'ipc', 'mac_address', 'pid', 'userns_mode', 'cgroupns_mode'])
      it(k, () => {
        const value = k === 'restart' ? 'always' : k === 'links' || k === 'expose' || k === 'devices' || k === 'security_opt' || k === 'external_links' ? '[x]' : k === 'privileged' ? 'true' : 'x';
        const p = plan(S(`    ${k}: ${value}\n`));
        assert.ok(p.warnings.some((w) => new RegExp(`c0\\.yml:4: services\\.web\\.${k}: ignored`).test(w)), p.warnings.join('\n'));
      });
    it('restart is converted as Docker does when deploy.restart_policy is absent', () => {
      assert.deepEqual(svc(plan(S('    restart: on-failure:3\n')), 'web').restart!.condition, 'RESTART_ON_FAILURE');
      assert.equal(svc(plan(S('    restart: "no"\n    deploy: {restart_policy: {condition: any}}\n')), 'web').restart!.condition, 'RESTART_ANY');
    });
  });

  describe('keys refused', () => {
    for (const k of ['extends', 'volume_driver', 'volumes_from', 'cpu_quota', 'cpu_shares', 'cpuset', 'mem_limit', 'memswap_limit'])
      it(`${k} (Docker forbids it)`, () => refused(S(`    ${k}: x\n`), new RegExp(`c0\\.yml:4: services\\.web\\.${k}: not allowed`)));
    it('an unknown service key, with a suggestion', () => refused(S('    imag: x\n'), /c0\.yml:4: services\.web\.imag: unknown key \(did you mean image\?\)/));
    it('an unknown key deep inside (the path names it)', () => refused(S('    deploy:\n      resources:\n        limits:\n          cpu: "1"\n'), /c0\.yml:7: services\.web\.deploy\.resources\.limits\.cpu: unknown key \(did you mean cpus\?\)/));
    it('an unknown top-level key', () => refused('services: {}\nservice: {}\n', /c0\.yml:2: service: unknown key/));
    it('a logging driver other than local', () => refused(S('    logging: {driver: syslog}\n'), /services\.web\.logging\.driver: "syslog": only the local log driver/));
    it('a port bound to one host address', () => refused(S('    ports: ["127.0.0.1:80:80"]\n'), /services\.web\.ports\[0\]: .*one host address/));
  });

  describe('bad files', () => {
    it('a YAML syntax error names the file and line', () => refused('services:\n  web:\n    image: [unclosed\n', /c0\.yml:\d+: invalid YAML/));
    it('duplicate keys', () => refused('services:\n  web:\n    image: a\n    image: b\n', /c0\.yml:4: invalid YAML/));
    it('a wrong type', () => refused(S('    deploy:\n      replicas: three\n'), /c0\.yml:5: services\.web\.deploy\.replicas: must be an integer \(got a string\)/));
    it('a wrong type for a list', () => refused(S('    ports: 80\n'), /c0\.yml:4: services\.web\.ports: must be a list/));
    it('an unknown network', () => refused(S('    networks: [nope]\n'), /c0\.yml:4: services\.web\.networks\.nope: network "nope" is not defined/));
    it('an undefined volume', () => refused(S('    volumes: ["nope:/x"]\n'), /services\.web\.volumes\[0\]: volume "nope" is not defined/));
    it('an undefined secret', () => refused(S('    secrets: [nope]\n'), /services\.web\.secrets\[0\]: secret "nope" is not defined/));
    it('a depends_on cycle', () => refused('services:\n  a:\n    image: r/a:1\n    depends_on: [b]\n  b:\n    image: r/b:1\n    depends_on: [c]\n  c:\n    image: r/c:1\n    depends_on: [a]\n', /c0\.yml:\d+: services\.\w\.depends_on: dependency cycle: (a -> b -> c -> a|b -> c -> a -> b|c -> a -> b -> c)/));
    it('a depends_on on an undefined service', () => refused(S('    depends_on: [ghost]\n'), /services\.web\.depends_on\.ghost: service "ghost" is not defined/));
    it('a missing image', () => refused('services:\n  web:\n    hostname: x\n', /c0\.yml:2: services\.web: image is required/));
    it('a service name Convoy cannot hold', () => refused('services:\n  Web:\n    image: r/w:1\n', /services\.Web: "app_Web" is not a valid Convoy name/));
    it('a secret file that cannot be read', () => refused(S('secrets:\n  s:\n    file: ./missing\n'), /secrets\.s\.file: cannot read .*ENOENT/));
    it('a top level that is not a mapping', () => assert.throws(() => parseCompose('- a\n', 'x.yml'), /x\.yml:1: the top level must be a mapping/));
    it('a file over the size limit', () => assert.throws(() => parseCompose('a: ' + 'x'.repeat(1024 * 1024) + '\n', 'big.yml'), /big\.yml:1: larger than 1024 KiB/));
    it('a billion laughs is refused, not expanded', () => {
      let y = 'a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n';
      for (let i = 1; i < 9; i++) y += `a${i}: &a${i} [${Array(10).fill(`*a${i - 1}`).join(', ')}]\n`;
      const t0 = Date.now();
      assert.throws(() => parseCompose(y, 'lol.yml'), /more than 200000 values/);
      assert.ok(Date.now() - t0 < 5000);
    });
    it('what the manager would refuse, before anything is written: a bad image, a port published twice in the stack', () => {
      refused('services:\n  web:\n    image: "UPPER/Case"\n', /c0\.yml:2: services\.web: spec\.container\.image: .* is not a valid image reference/);
      refused('services:\n  a:\n    image: r/a:1\n    ports: ["80:80"]\n  b:\n    image: r/b:1\n    ports: ["80:81"]\n', /services\.b\.ports: port 80\/tcp is also published by service a/);
      refused(S('    networks:\n      default:\n        aliases: [github.com]\n'), /services\.web: spec\.networkAliases\[0\]\.aliases\[0\]: "github\.com" is not a DNS label/);
    });
    it('a port range over the limit', () => refused(S('    ports: ["1-2000"]\n'), /a range of at most 1000 ports/));
  });

  describe('merging several files', () => {
    it('merges mappings, replaces command/entrypoint, merges ports/volumes/secrets by key, env and labels as mappings, appends the other lists', () => {
      write('s1', 'a');
      write('s2', 'b');
      const base = `services:
  web:
    image: r/w:1
    command: ["a", "b"]
    entrypoint: /e1
    environment: {A: "1", B: "1"}
    labels: [x=1]
    ports: ["8080:80", "9090:90"]
    volumes: ["data:/data", "/c1:/conf"]
    cap_add: [NET_ADMIN]
    secrets: [s1]
    healthcheck: {test: ["CMD", "a"], interval: 5s}
    deploy:
      replicas: 2
      placement: {constraints: ["node.role == worker"]}
      resources: {limits: {memory: 64M}}
networks:
  front: {labels: {a: b}}
volumes:
  data: {}
secrets:
  s1: {file: ./s1}
  s2: {file: ./s2}
`;
      const over = `services:
  web:
    image: r/w:2
    command: ["c"]
    environment: ["B=2", "C=3"]
    labels: {y: "2"}
    ports: ["8080:80", "7070:70"]
    volumes: ["/c2:/conf"]
    cap_add: [NET_ADMIN, SYS_TIME]
    secrets: [s2]
    healthcheck: {test: ["CMD", "b"]}
    deploy:
      placement: {constraints: ["node.labels.zone == a"]}
      resources: {limits: {cpus: "1"}}
    networks: [front]
  extra:
    image: r/x:1
`;
      const p = plan([base, over]);
      const w = svc(p, 'web');
      assert.equal(w.container!.image, 'r/w:2');
      assert.deepEqual(w.container!.args, ['c']);
      assert.deepEqual(w.container!.command, ['/e1']);
      assert.deepEqual(w.container!.env, ['A=1', 'B=2', 'C=3']);
      assert.equal(w.container!.labels.x, '1');
      assert.equal(w.container!.labels.y, '2');
      assert.deepEqual(w.endpoint!.ports.map((x) => `${x.publishedPort}:${x.targetPort}`), ['9090:90', '8080:80', '7070:70']);
      assert.deepEqual(w.container!.mounts.map((m) => `${m.source}:${m.target}`), ['app_data:/data', '/c2:/conf']);
      assert.deepEqual(w.container!.capAdd, ['CAP_NET_ADMIN', 'CAP_SYS_TIME']);
      assert.deepEqual(p.services.find((s) => s.key === 'web')!.secrets.map((s) => s.name), ['app_s1', 'app_s2']);
      assert.deepEqual(w.container!.healthcheck!.test, ['CMD', 'b']);
      assert.equal(w.container!.healthcheck!.intervalMs, 5000);
      assert.equal(w.replicas, 2);
      assert.deepEqual(w.placement!.constraints, ['node.role == worker', 'node.labels.zone == a']);
      assert.deepEqual(w.resources!.limits, { nanoCpus: 1e9, memoryBytes: 64 * 2 ** 20, pids: 0 });
      assert.deepEqual(w.networks, ['app_front']);
      assert.ok(svc(p, 'extra'));
    });

    it('a refusal names the file that set the value', () => refused([S(''), S('    deploy: {replicas: x}\n')], /c1\.yml:4: services\.web\.deploy\.replicas: must be an integer/));

    it('stack config prints the merged, interpolated result', () => {
      const a = write('a.yml', 'version: "3.8"\nservices:\n  web:\n    image: r/w:${TAG}\n    environment: [A=1]\n');
      const b = write('b.yml', 'services:\n  web:\n    environment: [B=$$literal]\n');
      const out = renderConfig(loadCompose({ files: [a, b], env: { TAG: '9' }, cwd: dir }));
      assert.match(out, /image: r\/w:9/);
      assert.match(out, /A: "1"/);
      assert.match(out, /B: \$\$literal/);
      // What it prints loads again to the same stack.
      const again = write('again.yml', out);
      assert.deepEqual(svc(loadStack('app', { files: [again], env: {}, cwd: dir }), 'web').container!.env, ['A=1', 'B=$literal']);
    });
  });
});
