// Errors of the agent's session with the managers, and the one place gRPC
// statuses are mapped onto them.
import { status as GrpcStatus, type ServiceError } from '@grpc/grpc-js';

/** The manager refused the join token (wrong or rotated). Fatal: the agent stops retrying. */
export class JoinRefusedError extends Error {
  override name = 'JoinRefusedError';
  constructor(message: string, override readonly cause?: unknown) {
    super(message);
  }
}

/** The manager does not know our session id (expired, or held by another manager): re-register. */
export class SessionInvalidError extends Error {
  override name = 'SessionInvalidError';
  constructor(message = 'session invalid', override readonly cause?: unknown) {
    super(message);
  }
}

/** No session is established right now; the caller retries later. */
export class NotConnectedError extends Error {
  override name = 'NotConnectedError';
  constructor(message = 'no session with a manager') {
    super(message);
  }
}

export type SessionErrorKind = 'refused' | 'invalid' | 'transient';

function isServiceError(e: unknown): e is ServiceError {
  return typeof e === 'object' && e !== null && typeof (e as { code?: unknown }).code === 'number';
}

/** How the agent must react to a failed Dispatcher call. */
export function classifyGrpcError(e: unknown): SessionErrorKind {
  if (!isServiceError(e)) return 'transient';
  switch (e.code) {
    case GrpcStatus.PERMISSION_DENIED:
    case GrpcStatus.UNAUTHENTICATED:
      return 'refused';
    case GrpcStatus.NOT_FOUND:
      return 'invalid';
    default:
      return 'transient';
  }
}

/** The error the operator sees when the join is refused. */
export function joinRefused(e: unknown): JoinRefusedError {
  const details = isServiceError(e) ? e.details : '';
  const msg =
    !details || /token/i.test(details) ? 'join refused: invalid join token' : `join refused: ${details}`;
  return new JoinRefusedError(msg, e);
}

export function grpcDetails(e: unknown): string {
  if (isServiceError(e)) return `${GrpcStatus[e.code] ?? e.code}: ${e.details}`;
  return e instanceof Error ? e.message : String(e);
}
