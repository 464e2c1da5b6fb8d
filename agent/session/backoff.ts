// Reconnection backoff: exponential, capped, jittered.

/**
 * First retry delay. Small, because the common case is a manager that just
 * died while the others are fine: the agent should be on the next manager
 * well within one heartbeat period (the node is marked down after ~3).
 */
export const BACKOFF_INITIAL_MS = 100;
/**
 * Ceiling. A cluster whose managers are all down for minutes must not be
 * hammered by every agent at once, yet an agent must come back within
 * seconds once a manager is up again. 8 s is swarmkit's choice, for the same reasons.
 */
export const BACKOFF_MAX_MS = 8_000;
/** Growth per consecutive failure. */
export const BACKOFF_FACTOR = 2;

/**
 * "Equal jitter": the delay is uniform in [b/2, b]. Never zero (no spin),
 * and spread enough that thousands of agents losing the same manager do not
 * reconnect in lockstep.
 */
export class Backoff {
  private attempt = 0;
  constructor(
    private readonly initialMs = BACKOFF_INITIAL_MS,
    private readonly maxMs = BACKOFF_MAX_MS,
    private readonly random: () => number = Math.random,
  ) {}

  /** Delay before the next try; each call counts one more failure. */
  next(): number {
    const ceiling = Math.min(this.maxMs, this.initialMs * Math.pow(BACKOFF_FACTOR, this.attempt));
    this.attempt = Math.min(this.attempt + 1, 30);
    return Math.round(ceiling / 2 + this.random() * (ceiling / 2));
  }

  /** After a session proved healthy (a heartbeat went through). */
  reset(): void {
    this.attempt = 0;
  }

  get failures(): number {
    return this.attempt;
  }
}
