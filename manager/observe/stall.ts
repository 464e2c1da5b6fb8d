// The manager's event-loop stall monitor: the longest delay of the main
// event loop per window, logged when it is long enough to matter. Agents'
// heartbeats (their session leases) and every gRPC call wait on this loop;
// bench:schedule reads these lines for its `max_stall_ms=`.
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { Logger } from '../../common/logger';

/** One window of the monitor: short, so a stall is reported about a second after it ends. */
export const STALL_WINDOW_MS = 1000;
/** A window whose longest stall reaches this is logged (info): a tenth of a 2 s lease TTL. */
export const STALL_LOG_MS = 200;
/** ...and as a warning from here on: half the shortest lease TTL (2 s). */
export const STALL_WARN_MS = 1000;
/** The log line's message and field (bench:schedule parses them). */
export const STALL_MSG = 'event loop stall';
export const STALL_FIELD = 'loop.maxStallMs';

export interface StallMonitor {
  /** The longest stall seen since the start, in ms. */
  maxMs(): number;
  close(): void;
}

export function startStallMonitor(log: Logger, windowMs = STALL_WINDOW_MS): StallMonitor {
  const h = monitorEventLoopDelay({ resolution: 10 });
  h.enable();
  let max = 0;
  const timer = setInterval(() => {
    const ms = Math.round(h.max / 1e6);
    h.reset();
    max = Math.max(max, ms);
    if (ms >= STALL_WARN_MS) log.warn(STALL_MSG, { [STALL_FIELD]: ms });
    else if (ms >= STALL_LOG_MS) log.info(STALL_MSG, { [STALL_FIELD]: ms });
  }, windowMs);
  timer.unref();
  return {
    maxMs: () => max,
    close() {
      clearInterval(timer);
      h.disable();
    },
  };
}
