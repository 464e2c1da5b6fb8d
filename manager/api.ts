// gRPC plumbing shared by the Control and Dispatcher services: errors with
// a status code and one clear message, and promise-returning unary handlers
// that report every call to the observer.
import * as grpc from '@grpc/grpc-js';
import { errMsg } from '../common/logger';
import { ConflictError } from './store/store';

export class ApiError extends Error {
  constructor(
    readonly code: grpc.status,
    message: string,
  ) {
    super(message);
  }
}

export function grpcError(e: unknown): grpc.ServiceError {
  const make = (code: grpc.status, msg: string) => Object.assign(new Error(msg), { code, details: msg, metadata: new grpc.Metadata() });
  if (e instanceof ApiError) return make(e.code, e.message);
  if (e instanceof ConflictError) return make(grpc.status.ABORTED, e.message);
  return make(grpc.status.UNAVAILABLE, errMsg(e));
}

/** Called after every unary call with the method, the status name and the duration. */
export type CallObserver = (method: string, code: string, seconds: number) => void;

export function unaryWith(observe: CallObserver) {
  return function unary<Req, Res>(method: string, fn: (req: Req, md: grpc.Metadata) => Promise<Res>) {
    return (call: { request: Req; metadata: grpc.Metadata }, cb: (err: grpc.ServiceError | null, res?: Res) => void) => {
      const t0 = process.hrtime.bigint();
      const done = (code: grpc.status) => observe(method, grpc.status[code] ?? String(code), Number(process.hrtime.bigint() - t0) / 1e9);
      fn(call.request, call.metadata).then(
        (r) => {
          done(grpc.status.OK);
          cb(null, r);
        },
        (e) => {
          const err = grpcError(e);
          done(err.code);
          cb(err);
        },
      );
    };
  };
}
