// gRPC plumbing shared by the Control and Dispatcher services: errors with
// a status code and one clear message, and promise-returning unary handlers
// that report every call to the observer.
//
// The one mapping of errors onto gRPC statuses (the store throws typed
// errors, so nothing here parses an etcd message):
//   ApiError              → its code (a refusal that names the field or object)
//   ConflictError         → ABORTED (lost a compare-and-swap race: retry)
//   StoreUnavailableError → UNAVAILABLE (etcd out of reach: retry later, maybe elsewhere)
//   StoreFullError        → RESOURCE_EXHAUSTED (etcd NOSPACE: writes refused until space is reclaimed)
//   LeaseNotFoundError    → NOT_FOUND (the session's lease lapsed: register again)
//   anything else         → INTERNAL, logged with its stack (a bug)
import * as grpc from '@grpc/grpc-js';
import { errMsg, nullLogger, type Logger } from '../common/logger';
import { ConflictError, LeaseNotFoundError, StoreFullError, StoreUnavailableError } from './store/errors';

export class ApiError extends Error {
  override name = 'ApiError';
  constructor(
    readonly code: grpc.status,
    message: string,
  ) {
    super(message);
  }
}

function make(code: grpc.status, msg: string): grpc.ServiceError {
  return Object.assign(new Error(msg), { code, details: msg, metadata: new grpc.Metadata() });
}

export function grpcError(e: unknown, log: Logger = nullLogger): grpc.ServiceError {
  if (e instanceof ApiError) return make(e.code, e.message);
  if (e instanceof ConflictError) return make(grpc.status.ABORTED, e.message);
  if (e instanceof StoreUnavailableError) return make(grpc.status.UNAVAILABLE, e.message);
  if (e instanceof StoreFullError) return make(grpc.status.RESOURCE_EXHAUSTED, e.message);
  if (e instanceof LeaseNotFoundError) return make(grpc.status.NOT_FOUND, 'session invalid: its lease lapsed');
  log.error('unexpected error', { err: errMsg(e), stack: e instanceof Error ? (e.stack ?? '') : '' });
  return make(grpc.status.INTERNAL, `internal error: ${errMsg(e)}`);
}

/** Called after every unary call with the method, the status name and the duration. */
export type CallObserver = (method: string, code: string, seconds: number) => void;

export function unaryWith(observe: CallObserver, log: Logger = nullLogger) {
  return function unary<Req, Res>(method: string, fn: (req: Req, md: grpc.Metadata, call: { request: Req; metadata: grpc.Metadata }) => Promise<Res>) {
    return (call: { request: Req; metadata: grpc.Metadata }, cb: (err: grpc.ServiceError | null, res?: Res) => void) => {
      const t0 = process.hrtime.bigint();
      const done = (code: grpc.status) => observe(method, grpc.status[code] ?? String(code), Number(process.hrtime.bigint() - t0) / 1e9);
      fn(call.request, call.metadata, call).then(
        (r) => {
          done(grpc.status.OK);
          cb(null, r);
        },
        (e) => {
          const err = grpcError(e, log.child({ method }));
          done(err.code);
          cb(err);
        },
      );
    };
  };
}

/** INVALID_ARGUMENT naming every refused field: "spec.labels["k"]: ...; spec.name: ...". */
export function invalid(errors: readonly { field: string; message: string }[]): ApiError {
  return new ApiError(grpc.status.INVALID_ARGUMENT, errors.map((e) => `${e.field}: ${e.message}`).join('; '));
}
