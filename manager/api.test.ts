// The one mapping of errors onto gRPC statuses.
import { strict as assert } from 'node:assert';
import * as grpc from '@grpc/grpc-js';
import type { LogFields, Logger } from '../common/logger';
import { ApiError, grpcError } from './api';
import { ConflictError, LeaseNotFoundError, STORE_FULL_MESSAGE, StoreFullError, StoreUnavailableError } from './store/errors';

function recorder(): { log: Logger; errors: { msg: string; fields?: LogFields }[] } {
  const errors: { msg: string; fields?: LogFields }[] = [];
  const log: Logger = { debug() {}, info() {}, warn() {}, error: (msg, fields) => void errors.push({ msg, fields }), child: () => log };
  return { log, errors };
}

describe('gRPC error mapping', () => {
  it('maps each typed error to its status once', () => {
    const { log, errors } = recorder();
    assert.equal(grpcError(new ApiError(grpc.status.FAILED_PRECONDITION, 'x'), log).code, grpc.status.FAILED_PRECONDITION);
    assert.equal(grpcError(new ConflictError('changed'), log).code, grpc.status.ABORTED);
    assert.equal(grpcError(new StoreUnavailableError('etcd: down'), log).code, grpc.status.UNAVAILABLE);
    const full = grpcError(new StoreFullError(STORE_FULL_MESSAGE), log);
    assert.equal(full.code, grpc.status.RESOURCE_EXHAUSTED);
    assert.match(full.details, /cluster store is full \(etcd NOSPACE\).*docs\/etcd.md/);
    assert.equal(grpcError(new LeaseNotFoundError('7'), log).code, grpc.status.NOT_FOUND);
    assert.equal(errors.length, 0, 'expected refusals are not logged as errors');
  });

  it('maps anything unexpected to INTERNAL and logs it with its stack', () => {
    const { log, errors } = recorder();
    const e = grpcError(new TypeError('undefined is not a function'), log);
    assert.equal(e.code, grpc.status.INTERNAL);
    assert.match(e.details, /undefined is not a function/);
    assert.equal(errors.length, 1);
    assert.match(String(errors[0].fields?.stack), /TypeError: undefined is not a function\n\s+at /);
  });
});
