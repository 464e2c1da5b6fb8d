import { strict as assert } from 'node:assert';
import * as grpc from '@grpc/grpc-js';
import { CliError, describeError, hostOf, resolveHost } from './client';

const failure = (code: grpc.status, details: string, host?: string) => Object.assign(new Error(`${code} ${grpc.status[code]}: ${details}`), { code, details, metadata: new grpc.Metadata(), host });

describe('cli client', () => {
  it('finds the manager: flag, then CONVOY_HOST, then 127.0.0.1:7420', () => {
    assert.equal(resolveHost('10.0.0.1:9000', { CONVOY_HOST: 'x:1' }), '10.0.0.1:9000');
    assert.equal(resolveHost(undefined, { CONVOY_HOST: 'mgr' }), 'mgr:7420');
    assert.equal(resolveHost(undefined, {}), '127.0.0.1:7420');
    assert.equal(resolveHost('grpc://mgr:7420', {}), 'mgr:7420');
    assert.equal(resolveHost('::1', {}), '[::1]:7420');
    assert.equal(resolveHost('[::1]:7000', {}), '[::1]:7000');
  });

  it("takes a manager's local socket as unix:///path, as docker's unix:// hosts", () => {
    assert.equal(resolveHost(undefined, { CONVOY_HOST: 'unix:///var/lib/convoy/manager/convoy.sock' }), 'unix:///var/lib/convoy/manager/convoy.sock');
    assert.equal(resolveHost('unix:///run/m.sock', { CONVOY_HOST: 'x:1' }), 'unix:///run/m.sock');
    assert.throws(() => resolveHost('unix://relative.sock', {}), /CONVOY_HOST\/--host: "unix:\/\/relative.sock" is not unix:\/\/\/ABSOLUTE\/PATH/);
    assert.equal(
      describeError(failure(grpc.status.UNAVAILABLE, 'No connection established. Last error: connect EACCES /var/lib/convoy/manager/convoy.sock', 'unix:///var/lib/convoy/manager/convoy.sock')),
      "permission denied on the manager's socket at unix:///var/lib/convoy/manager/convoy.sock (it is root's only: run as root, or use a user certificate)",
    );
  });

  it('takes --host from the verb before the enclosing commands', () => {
    const root = { opts: () => ({ host: 'root:1' }), parent: null };
    const noun = { opts: () => ({}), parent: root };
    assert.equal(hostOf({ opts: () => ({ host: 'leaf:2' }), parent: noun }, {}), 'leaf:2');
    assert.equal(hostOf({ opts: () => ({}), parent: noun }, {}), 'root:1');
    assert.equal(hostOf({ opts: () => ({}), parent: { opts: () => ({}), parent: null } }, { CONVOY_HOST: 'env:3' }), 'env:3');
  });

  it("passes the manager's own message through for refused requests", () => {
    assert.equal(describeError(failure(grpc.status.INVALID_ARGUMENT, 'spec.replicas: must be >= 0')), 'spec.replicas: must be >= 0');
    assert.equal(describeError(failure(grpc.status.NOT_FOUND, 'service "web" not found')), 'service "web" not found');
    assert.equal(describeError(failure(grpc.status.ALREADY_EXISTS, 'spec.name: service name "web" is already in use')), 'spec.name: service name "web" is already in use');
    assert.equal(describeError(failure(grpc.status.FAILED_PRECONDITION, 'port 8080/tcp is already published by service "api"')), 'port 8080/tcp is already published by service "api"');
  });

  it('says to retry after a lost compare-and-swap', () => {
    assert.equal(describeError(failure(grpc.status.ABORTED, 'service "web" changed since version 3; retry')), 'service "web" changed since version 3; retry');
    assert.equal(describeError(failure(grpc.status.ABORTED, 'conflict')), 'conflict; retry');
  });

  it('turns transport failures into a hint, on one line', () => {
    assert.equal(
      describeError(failure(grpc.status.UNAVAILABLE, 'No connection established. Last error: connect ECONNREFUSED 127.0.0.1:7420 (2026-01-01)', '127.0.0.1:7420')),
      'cannot reach a manager at 127.0.0.1:7420 (connection refused); is `convoy manager` running? Set --host or CONVOY_HOST',
    );
    assert.equal(describeError(failure(grpc.status.UNAVAILABLE, 'etcd is down', 'm:7420')), 'manager at m:7420 unavailable: etcd is down');
    assert.equal(describeError(failure(grpc.status.DEADLINE_EXCEEDED, 'Deadline exceeded', 'm:7420')), 'manager at m:7420 did not answer in time (15s)');
    assert.equal(describeError(failure(grpc.status.UNIMPLEMENTED, 'networks are not implemented yet')), 'networks are not implemented yet');
  });

  it('keeps other errors to their first line, without a stack', () => {
    assert.equal(describeError(new CliError('--mode: "x" is not one of replicated, global')), '--mode: "x" is not one of replicated, global');
    assert.equal(describeError(new Error('first\nsecond')), 'first');
    assert.equal(describeError('plain'), 'plain');
  });
});
