import { strict as assert } from 'node:assert';
import type { ServiceSpec } from '../proto/mod';
import {
  applyServiceUpdate,
  buildServiceSpec,
  parseDuration,
  parseEnvFile,
  parseMount,
  parsePort,
  parseScaleArgs,
  parseSize,
  splitWords,
  type FlagEnv,
} from './flags';

const noFiles: FlagEnv = {
  env: { HOME_ZONE: 'east' },
  readFile: (p) => {
    if (p === 'app.env') return '# comment\n\nA=from-file\nB=2\nHOME_ZONE\nMISSING\n';
    throw Object.assign(new Error('nope'), { code: 'ENOENT' });
  },
};

describe('cli flags', () => {
  describe('values', () => {
    it('parses sizes as Docker does (binary units)', () => {
      assert.equal(parseSize('64M'), 64 * 1024 ** 2);
      assert.equal(parseSize('1G'), 1024 ** 3);
      assert.equal(parseSize('1g'), 1024 ** 3);
      assert.equal(parseSize('512k'), 512 * 1024);
      assert.equal(parseSize('64MiB'), 64 * 1024 ** 2);
      assert.equal(parseSize('1.5G'), 1.5 * 1024 ** 3);
      assert.equal(parseSize('1000'), 1000);
      assert.throws(() => parseSize('64X', '--reserve-memory'), /^CliError: --reserve-memory: "64X" is not a size/);
      assert.throws(() => parseSize(''), /is not a size/);
    });

    it('parses Go-style durations to milliseconds', () => {
      assert.equal(parseDuration('5s'), 5000);
      assert.equal(parseDuration('1m30s'), 90_000);
      assert.equal(parseDuration('500ms'), 500);
      assert.equal(parseDuration('1h'), 3_600_000);
      assert.equal(parseDuration('1.5s'), 1500);
      assert.equal(parseDuration('0'), 0);
      assert.throws(() => parseDuration('5', '--restart-delay'), /--restart-delay: "5" is not a duration/);
      assert.throws(() => parseDuration('5 parsecs'), /is not a duration/);
      assert.throws(() => parseDuration('5s junk'), /is not a duration/);
    });

    it('parses the short port syntax', () => {
      assert.deepEqual(parsePort('8080:80'), { name: '', protocol: 'tcp', targetPort: 80, publishedPort: 8080, publishMode: 'INGRESS' });
      assert.deepEqual(parsePort('53:53/udp'), { name: '', protocol: 'udp', targetPort: 53, publishedPort: 53, publishMode: 'INGRESS' });
      assert.equal(parsePort('80').publishedPort, 0, 'a bare target port gets a published port from the cluster');
      assert.throws(() => parsePort('80:http'), /not a port mapping/);
      assert.throws(() => parsePort('70000:80'), /published must be a port number/);
      assert.throws(() => parsePort('80:80/sctp'), /protocol must be tcp or udp/);
    });

    it('parses the long port syntax', () => {
      assert.deepEqual(parsePort('mode=host,target=80,published=8080,protocol=tcp'), {
        name: '',
        protocol: 'tcp',
        targetPort: 80,
        publishedPort: 8080,
        publishMode: 'HOST',
      });
      assert.deepEqual(parsePort('target=53,protocol=udp'), { name: '', protocol: 'udp', targetPort: 53, publishedPort: 0, publishMode: 'INGRESS' });
      assert.throws(() => parsePort('published=8080'), /target= is required/);
      assert.throws(() => parsePort('mode=bridge,target=80'), /mode must be ingress or host/);
      assert.throws(() => parsePort('target=80,colour=red'), /unknown field "colour"/);
    });

    it('parses mounts', () => {
      assert.deepEqual(parseMount('type=bind,source=/srv/data,target=/data,readonly'), {
        type: 'BIND',
        source: '/srv/data',
        target: '/data',
        readOnly: true,
        tmpfsSizeBytes: 0,
      });
      assert.deepEqual(parseMount('type=volume,src=cache,dst=/cache'), { type: 'VOLUME', source: 'cache', target: '/cache', readOnly: false, tmpfsSizeBytes: 0 });
      assert.equal(parseMount('type=tmpfs,target=/tmp,tmpfs-size=64M').tmpfsSizeBytes, 64 * 1024 ** 2);
      assert.equal(parseMount('type=bind,source=/a,target=/b,readonly=false').readOnly, false);
      assert.throws(() => parseMount('type=bind,source=rel,target=/b'), /absolute source path/);
      assert.throws(() => parseMount('type=nfs,target=/b'), /type must be bind, volume or tmpfs/);
      assert.throws(() => parseMount('type=volume,source=x'), /target= is required/);
    });

    it('reads env files: comments skipped, bare names taken from the shell or dropped', () => {
      assert.deepEqual(parseEnvFile('# c\nA=1\n\n  B=two words\nHOME_ZONE\nMISSING\n', { HOME_ZONE: 'east' }), ['A=1', 'B=two words', 'HOME_ZONE=east']);
    });

    it('splits quoted words', () => {
      assert.deepEqual(splitWords(`sh -c "echo hi there" 'a b'`), ['sh', '-c', 'echo hi there', 'a b']);
    });

    it('parses scale arguments, keeping a negative count for the manager to refuse by name', () => {
      assert.deepEqual(parseScaleArgs(['web=5', 'api=0']), [
        ['web', 5],
        ['api', 0],
      ]);
      assert.deepEqual(parseScaleArgs(['web=-1']), [['web', -1]]);
      assert.throws(() => parseScaleArgs(['web']), /"web" is not SERVICE=REPLICAS/);
      assert.throws(() => parseScaleArgs(['web=lots']), /web: "lots" is not an integer/);
      assert.throws(() => parseScaleArgs([]), /at least one/);
    });
  });

  describe('service create', () => {
    it('builds a spec from flags and positionals', () => {
      const s = buildServiceSpec(
        'registry.local/web:1',
        ['httpd', '-f', '-p', '80'],
        {
          name: 'web',
          replicas: '3',
          publish: ['8080:80', 'mode=host,target=443,published=8443'],
          env: ['A=1', 'HOME_ZONE', 'NOT_SET'],
          envFile: ['app.env'],
          label: ['team=web'],
          containerLabel: ['tier=front'],
          constraint: ['node.labels.zone==east', 'node.role!=manager'],
          placementPref: ['spread=node.labels.zone'],
          maxReplicas: '2',
          reserveCpu: '0.5',
          reserveMemory: '64M',
          limitCpu: '2',
          limitMemory: '1G',
          limitPids: '100',
          network: ['front'],
          mount: ['type=volume,source=cache,target=/cache'],
          entrypoint: '/bin/sh -c',
          workdir: '/srv',
          user: 'nobody',
          hostname: 'web-host',
          stopSignal: 'SIGQUIT',
          stopGracePeriod: '30s',
          endpointMode: 'dnsrr',
        },
        noFiles,
      );
      assert.equal(s.name, 'web');
      assert.equal(s.mode, 'REPLICATED');
      assert.equal(s.replicas, 3);
      assert.equal(s.container?.image, 'registry.local/web:1');
      assert.deepEqual(s.container?.command, ['/bin/sh', '-c']);
      assert.deepEqual(s.container?.args, ['httpd', '-f', '-p', '80']);
      // env file first, then -e, later keys replacing earlier ones in place
      assert.deepEqual(s.container?.env, ['A=1', 'B=2', 'HOME_ZONE=east']);
      assert.deepEqual(s.labels, { team: 'web' });
      assert.deepEqual(s.container?.labels, { tier: 'front' });
      assert.deepEqual(s.placement, {
        constraints: ['node.labels.zone==east', 'node.role!=manager'],
        preferences: ['node.labels.zone'],
        maxReplicasPerNode: 2,
        platforms: [],
        strategy: 'SPREAD',
      });
      assert.deepEqual(s.resources, {
        reservations: { nanoCpus: 500_000_000, memoryBytes: 64 * 1024 ** 2, pids: 0 },
        limits: { nanoCpus: 2_000_000_000, memoryBytes: 1024 ** 3, pids: 100 },
      });
      assert.deepEqual(s.endpoint, {
        mode: 'DNSRR',
        ports: [
          { name: '', protocol: 'tcp', targetPort: 80, publishedPort: 8080, publishMode: 'INGRESS' },
          { name: '', protocol: 'tcp', targetPort: 443, publishedPort: 8443, publishMode: 'HOST' },
        ],
      });
      assert.deepEqual(s.networks, ['front']);
      assert.equal(s.container?.mounts.length, 1);
      assert.equal(s.container?.dir, '/srv');
      assert.equal(s.container?.user, 'nobody');
      assert.equal(s.container?.hostname, 'web-host');
      assert.equal(s.container?.stopSignal, 'SIGQUIT');
      assert.equal(s.container?.stopGracePeriodMs, 30_000);
    });

    it('defaults as Docker: one replica, restart/update left to the manager unless a flag is given', () => {
      const s = buildServiceSpec('img', [], {}, noFiles);
      assert.equal(s.replicas, 1);
      assert.equal(s.restart, null);
      assert.equal(s.update, null);
      assert.equal(s.endpoint, null);
      assert.equal(s.container?.stopGracePeriodMs, 10_000);
    });

    it('fills the rest of a policy with Docker defaults when one field is given', () => {
      const s = buildServiceSpec('img', [], { restartMaxAttempts: '3', updateParallelism: '2', updateOrder: 'start-first', rollbackFailureAction: 'continue' }, noFiles);
      assert.deepEqual(s.restart, { condition: 'RESTART_ANY', delayMs: 5000, maxAttempts: 3, windowMs: 0 });
      assert.deepEqual(s.update, { parallelism: 2, delayMs: 0, failureAction: 'FAILURE_PAUSE', monitorMs: 5000, maxFailureRatio: 0, order: 'START_FIRST' });
      assert.equal(s.rollback?.failureAction, 'FAILURE_CONTINUE');
    });

    it('maps restart, update and rollback flags', () => {
      const s = buildServiceSpec(
        'img',
        [],
        {
          restartCondition: 'on-failure',
          restartDelay: '1m30s',
          restartWindow: '10m',
          updateDelay: '10s',
          updateFailureAction: 'rollback',
          updateMonitor: '30s',
          updateMaxFailureRatio: '0.25',
          rollbackParallelism: '0',
          rollbackOrder: 'stop-first',
        },
        noFiles,
      );
      assert.deepEqual(s.restart, { condition: 'RESTART_ON_FAILURE', delayMs: 90_000, maxAttempts: 0, windowMs: 600_000 });
      assert.deepEqual(s.update, { parallelism: 1, delayMs: 10_000, failureAction: 'FAILURE_ROLLBACK', monitorMs: 30_000, maxFailureRatio: 0.25, order: 'STOP_FIRST' });
      assert.equal(s.rollback?.parallelism, 0);
    });

    it('maps health check flags, and --no-healthcheck to NONE', () => {
      const s = buildServiceSpec('img', [], { healthCmd: 'curl -f localhost', healthInterval: '5s', healthRetries: '3', healthTimeout: '2s', healthStartPeriod: '10s' }, noFiles);
      assert.deepEqual(s.container?.healthcheck, { test: ['CMD-SHELL', 'curl -f localhost'], intervalMs: 5000, timeoutMs: 2000, retries: 3, startPeriodMs: 10_000 });
      assert.deepEqual(buildServiceSpec('img', [], { healthcheck: false }, noFiles).container?.healthcheck?.test, ['NONE']);
      assert.throws(() => buildServiceSpec('img', [], { healthcheck: false, healthCmd: 'x' }, noFiles), /--no-healthcheck: conflicts/);
    });

    it('global mode has no replica count', () => {
      const s = buildServiceSpec('img', [], { mode: 'global' }, noFiles);
      assert.equal(s.mode, 'GLOBAL');
      assert.equal(s.replicas, 0);
      assert.throws(() => buildServiceSpec('img', [], { mode: 'global', replicas: '2' }, noFiles), /--replicas: not allowed with --mode global/);
    });

    it('refuses bad values naming the flag', () => {
      assert.throws(() => buildServiceSpec('img', [], { mode: 'daemonset' }, noFiles), /--mode: "daemonset" is not one of replicated, global/);
      assert.throws(() => buildServiceSpec('img', [], { restartCondition: 'always' }, noFiles), /--restart-condition: "always"/);
      assert.throws(() => buildServiceSpec('img', [], { updateOrder: 'random' }, noFiles), /--update-order: "random"/);
      assert.throws(() => buildServiceSpec('img', [], { rollbackFailureAction: 'rollback' }, noFiles), /--rollback-failure-action: must be pause or continue/);
      assert.throws(() => buildServiceSpec('img', [], { updateMaxFailureRatio: '2' }, noFiles), /--update-max-failure-ratio: "2" is not a fraction/);
      assert.throws(() => buildServiceSpec('img', [], { reserveCpu: 'half' }, noFiles), /--reserve-cpu: "half" is not a number of CPUs/);
      assert.throws(() => buildServiceSpec('img', [], { placementPref: ['zone'] }, noFiles), /--placement-pref: "zone" is not spread=/);
      assert.throws(() => buildServiceSpec('img', [], { envFile: ['missing.env'] }, noFiles), /--env-file: cannot read missing.env: ENOENT/);
      assert.throws(() => buildServiceSpec('img', [], { endpointMode: 'ipvs' }, noFiles), /--endpoint-mode/);
    });
  });

  describe('capabilities and read-only root', () => {
    it('takes Docker\'s capability names in any case, with or without CAP_, and ALL', () => {
      const s = buildServiceSpec('x:1', [], { capAdd: ['net_admin', 'CAP_SYS_TIME', 'NET_ADMIN'], capDrop: ['chown', 'all'], readOnly: true }, noFiles);
      assert.deepEqual(s.container?.capAdd, ['CAP_NET_ADMIN', 'CAP_SYS_TIME']);
      assert.deepEqual(s.container?.capDrop, ['CAP_CHOWN', 'ALL']);
      assert.equal(s.container?.readOnly, true);
      assert.equal(buildServiceSpec('x:1', [], {}, noFiles).container?.readOnly, false);
      assert.throws(() => buildServiceSpec('x:1', [], { capAdd: ['NET_WIZARD'] }, noFiles), /^CliError: --cap-add: "NET_WIZARD" is not a capability/);
      assert.throws(() => buildServiceSpec('x:1', [], { capDrop: [''] }, noFiles), /^CliError: --cap-drop: "" is not a capability/);
    });

    it('--placement-strategy: spread or binpack on create and update, other values refused by name', () => {
      const s = buildServiceSpec('x:1', [], { placementStrategy: 'binpack', constraint: ['node.role==worker'] }, noFiles);
      assert.equal(s.placement?.strategy, 'BINPACK');
      assert.deepEqual(s.placement?.constraints, ['node.role==worker']);
      const u = applyServiceUpdate(s, { placementStrategy: 'Spread', maxReplicas: '2' }, noFiles);
      assert.equal(u.placement?.strategy, 'SPREAD');
      assert.equal(u.placement?.maxReplicasPerNode, 2);
      assert.equal(applyServiceUpdate(s, { replicas: '4' }, noFiles).placement?.strategy, 'BINPACK', 'kept when not given');
      assert.throws(() => buildServiceSpec('x:1', [], { placementStrategy: 'pack' }, noFiles), /^CliError: --placement-strategy: "pack" is not spread or binpack/);
    });

    it('updates capabilities as Docker: an add takes the name out of the drops and the reverse', () => {
      const cur = buildServiceSpec('x:1', [], { capAdd: ['NET_ADMIN', 'SYS_TIME'], capDrop: ['MKNOD'] }, noFiles);
      const s = applyServiceUpdate(cur, { capAdd: ['mknod'], capDrop: ['sys_time', 'CHOWN'] }, noFiles);
      assert.deepEqual(s.container?.capAdd, ['CAP_NET_ADMIN', 'CAP_MKNOD']);
      assert.deepEqual(s.container?.capDrop, ['CAP_SYS_TIME', 'CAP_CHOWN']);
      assert.equal(applyServiceUpdate(cur, { readOnly: true }, noFiles).container?.readOnly, true);
      assert.equal(applyServiceUpdate({ ...cur, container: { ...cur.container!, readOnly: true } }, { readOnly: false }, noFiles).container?.readOnly, false);
      assert.throws(() => applyServiceUpdate(cur, { capDrop: ['BOGUS'] }, noFiles), /--cap-drop: "BOGUS"/);
    });

    it('--host-access on create, --no-host-access on update', () => {
      assert.equal(buildServiceSpec('x:1', [], {}, noFiles).container?.hostAccess, false);
      const cur = buildServiceSpec('x:1', [], { hostAccess: true }, noFiles);
      assert.equal(cur.container?.hostAccess, true);
      assert.equal(applyServiceUpdate(cur, { hostAccess: false }, noFiles).container?.hostAccess, false);
    });
  });

  describe('service update', () => {
    const current: ServiceSpec = buildServiceSpec(
      'registry.local/web:1',
      ['httpd'],
      {
        name: 'web',
        replicas: '3',
        env: ['A=1', 'B=2'],
        label: ['team=web', 'old=yes'],
        constraint: ['node.role == worker', 'node.labels.zone==east'],
        publish: ['8080:80', '53:53/udp'],
        mount: ['type=volume,source=cache,target=/cache', 'type=tmpfs,target=/tmp'],
        network: ['front'],
        updateParallelism: '2',
      },
      noFiles,
    );

    it('changes only what the flags name', () => {
      const s = applyServiceUpdate(current, { image: 'registry.local/web:2' }, noFiles);
      assert.equal(s.container?.image, 'registry.local/web:2');
      assert.deepEqual({ ...s, container: { ...s.container, image: 'registry.local/web:1' } }, current);
    });

    it('does not modify the spec it was given', () => {
      const before = JSON.stringify(current);
      applyServiceUpdate(current, { envAdd: ['C=3'], publishRm: ['80'], replicas: '9', reserveMemory: '1G' }, noFiles);
      assert.equal(JSON.stringify(current), before);
    });

    it('adds and removes env, labels, constraints, ports, mounts, networks', () => {
      const s = applyServiceUpdate(
        current,
        {
          envAdd: ['B=20', 'C=3'],
          envRm: ['A'],
          labelAdd: ['tier=front'],
          labelRm: ['old'],
          constraintRm: ['node.role==worker'],
          constraintAdd: ['node.labels.disk==ssd'],
          publishRm: ['53/udp'],
          publishAdd: ['9090:80'],
          mountRm: ['/tmp'],
          mountAdd: ['type=bind,source=/srv,target=/srv,readonly'],
          networkAdd: ['back'],
          networkRm: ['front'],
        },
        noFiles,
      );
      assert.deepEqual(s.container?.env, ['B=20', 'C=3']);
      assert.deepEqual(s.labels, { team: 'web', tier: 'front' });
      assert.deepEqual(s.placement?.constraints, ['node.labels.zone==east', 'node.labels.disk==ssd']);
      assert.deepEqual(s.endpoint?.ports, [{ name: '', protocol: 'tcp', targetPort: 80, publishedPort: 9090, publishMode: 'INGRESS' }], 'an added port replaces the one with the same target');
      assert.deepEqual(
        s.container?.mounts.map((m) => m.target),
        ['/cache', '/srv'],
      );
      assert.deepEqual(s.networks, ['back']);
    });

    it('applies the scalar flags over the current values', () => {
      const s = applyServiceUpdate(current, { replicas: '7', updateDelay: '10s', restartCondition: 'none', limitMemory: '256M', args: 'httpd -f "-p 80"' }, noFiles);
      assert.equal(s.replicas, 7);
      assert.deepEqual(s.update, { parallelism: 2, delayMs: 10_000, failureAction: 'FAILURE_PAUSE', monitorMs: 5000, maxFailureRatio: 0, order: 'STOP_FIRST' }, 'parallelism kept');
      assert.equal(s.restart?.condition, 'RESTART_NONE');
      assert.equal(s.resources?.limits?.memoryBytes, 256 * 1024 ** 2);
      assert.deepEqual(s.container?.args, ['httpd', '-f', '-p 80']);
    });

    it('copes with a spec whose optional parts are null', () => {
      const bare: ServiceSpec = { ...current, placement: null, endpoint: null, resources: null, update: null };
      const s = applyServiceUpdate(bare, { constraintAdd: ['node.role==worker'], publishAdd: ['80'], reserveCpu: '1', updateDelay: '1s' }, noFiles);
      assert.deepEqual(s.placement?.constraints, ['node.role==worker']);
      assert.equal(s.endpoint?.ports.length, 1);
      assert.equal(s.resources?.reservations?.nanoCpus, 1e9);
      assert.equal(s.update?.delayMs, 1000);
    });
  });
});
