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

/**
 * The backing store is full: etcd raised its NOSPACE alarm (its database
 * reached --quota-backend-bytes) and refuses every write until space is
 * reclaimed (compact, defragment) and the alarm disarmed. Reads still work.
 * Not retryable by the caller: retrying only adds load; the manager's store
 * maintenance (./maintenance.ts) reclaims space for an embedded etcd.
 */
export class StoreFullError extends Error {
  override name = 'StoreFullError';
  constructor(
    message: string,
    override readonly cause?: unknown,
  ) {
    super(message);
  }
}

/** What an operator reads when a write is refused for NOSPACE (the Control API's RESOURCE_EXHAUSTED message). */
export const STORE_FULL_MESSAGE =
  'the cluster store is full (etcd NOSPACE): writes are refused until space is reclaimed; running tasks keep running. ' +
  'Compact and defragment etcd and disarm the alarm (an embedded etcd is recovered by the manager itself), see docs/etcd.md';
