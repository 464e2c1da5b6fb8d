import * as assert from 'node:assert/strict';
import { formatReference, InvalidReferenceError, parseReference } from './reference';
import { parseChallenge } from './registry';
import { pickPlatform } from './store';

describe('image references', () => {
  it('normalises Docker Hub names as Docker does', () => {
    assert.deepEqual(parseReference('busybox'), { registry: 'docker.io', repository: 'library/busybox', tag: 'latest', digest: undefined });
    assert.equal(formatReference(parseReference('nginx:1.25')), 'docker.io/library/nginx:1.25');
    assert.equal(formatReference(parseReference('grafana/loki')), 'docker.io/grafana/loki:latest');
  });

  it('keeps a registry with a port, a tag and a digest', () => {
    const d = `sha256:${'a'.repeat(64)}`;
    assert.deepEqual(parseReference(`127.0.0.1:5000/convoy-test/busybox:1@${d}`), {
      registry: '127.0.0.1:5000',
      repository: 'convoy-test/busybox',
      tag: '1',
      digest: d,
    });
    assert.deepEqual(parseReference(`localhost/x@${d}`), { registry: 'localhost', repository: 'x', tag: undefined, digest: d });
  });

  it('refuses malformed references', () => {
    assert.throws(() => parseReference(''), InvalidReferenceError);
    assert.throws(() => parseReference('Upper/Case'), InvalidReferenceError);
    assert.throws(() => parseReference('x@sha256:short'), InvalidReferenceError);
  });
});

describe('registry auth challenges', () => {
  it('parses a Docker Hub bearer challenge', () => {
    const c = parseChallenge('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull"');
    assert.equal(c?.scheme, 'bearer');
    assert.deepEqual(c?.params, { realm: 'https://auth.docker.io/token', service: 'registry.docker.io', scope: 'repository:library/busybox:pull' });
  });

  it('parses a basic challenge', () => {
    assert.deepEqual(parseChallenge('Basic realm="Registry Realm"'), { scheme: 'basic', params: { realm: 'Registry Realm' } });
  });
});

describe('platform selection', () => {
  const m = (architecture: string, os = 'linux') => ({ mediaType: 'x', digest: `sha256:${architecture}`, size: 1, platform: { os, architecture } });
  it("picks linux and the host's architecture from an index", () => {
    assert.equal(pickPlatform([m('arm64'), m('amd64', 'windows'), m('amd64')], 'amd64')?.digest, 'sha256:amd64');
    assert.equal(pickPlatform([m('arm64')], 'amd64'), undefined);
  });
});
