// The store's typed errors: every implementation throws these, so the gRPC
// mapping (manager/errors.ts) looks at a class, never at an etcd message.

/** A guarded write lost its race: the object changed (or appeared) since it was read. */
export class ConflictError extends Error {
  override name = 'ConflictError';
  constructor(
    message: string,
    override readonly cause?: unknown,
  ) {
    super(message);
  }
}

/** The backing store cannot be reached or refused the request for now (etcd down, overloaded, no leader). Retryable. */
export class StoreUnavailableError extends Error {
  override name = 'StoreUnavailableError';
  constructor(
    message: string,
    override readonly cause?: unknown,
  ) {
    super(message);
  }
}

/** The lease is gone (expired or revoked): whatever it kept alive has ended. */
export class LeaseNotFoundError extends Error {
  override name = 'LeaseNotFoundError';
  constructor(
    readonly leaseId: string,
    override readonly cause?: unknown,
  ) {
    super(`lease ${leaseId} not found (expired or revoked)`);
  }
}
