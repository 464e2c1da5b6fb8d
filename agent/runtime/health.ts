// Health checks as Docker runs them: a probe every interval; the first
// success makes the task healthy; `retries` failures in a row make it
// unhealthy; failures during the start period do not count.
import type { HealthState } from '../executor';
import type { HealthcheckConfig } from './image/oci';

export interface HealthSpec {
  /** ["CMD", arg...], ["CMD-SHELL", "cmd"] or ["NONE"]. */
  test: string[];
  intervalMs: number;
  timeoutMs: number;
  retries: number;
  startPeriodMs: number;
}

/** Docker's defaults. */
export const DEFAULT_HEALTH_INTERVAL_MS = 30_000;
export const DEFAULT_HEALTH_TIMEOUT_MS = 30_000;
export const DEFAULT_HEALTH_RETRIES = 3;

/** The command a test runs in the container; undefined for NONE or an empty test. */
export function healthCommand(test: string[]): string[] | undefined {
  if (!test.length || test[0] === 'NONE') return undefined;
  if (test[0] === 'CMD') return test.slice(1).length ? test.slice(1) : undefined;
  if (test[0] === 'CMD-SHELL') return ['/bin/sh', '-c', test.slice(1).join(' ')];
  return test;
}

/** Fills defaults; from the spec's fields (ms) or the image's (ns). */
export function healthSpec(fromSpec: Partial<HealthSpec> | undefined, fromImage: HealthcheckConfig | undefined): HealthSpec | undefined {
  const ns = (n: number | undefined) => (n ? Math.round(n / 1e6) : 0);
  const test = fromSpec?.test?.length ? fromSpec.test : fromImage?.Test ?? [];
  if (!healthCommand(test)) return undefined;
  const useSpec = !!fromSpec?.test?.length;
  return {
    test,
    intervalMs: (useSpec ? fromSpec?.intervalMs : ns(fromImage?.Interval)) || DEFAULT_HEALTH_INTERVAL_MS,
    timeoutMs: (useSpec ? fromSpec?.timeoutMs : ns(fromImage?.Timeout)) || DEFAULT_HEALTH_TIMEOUT_MS,
    retries: (useSpec ? fromSpec?.retries : fromImage?.Retries) || DEFAULT_HEALTH_RETRIES,
    startPeriodMs: (useSpec ? fromSpec?.startPeriodMs : ns(fromImage?.StartPeriod)) || 0,
  };
}

/** Runs one probe: true when healthy. Must finish within the spec's timeout (report false then). */
export type Probe = (timeoutMs: number) => Promise<boolean>;

export class HealthChecker {
  private current: HealthState = 'starting';
  private failures = 0;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private started = false;
  private readonly startedAt: number;

  constructor(
    private readonly spec: HealthSpec,
    private readonly probe: Probe,
    private readonly onChange: (state: HealthState) => void,
    private readonly now: () => number = Date.now,
  ) {
    this.startedAt = now();
  }

  get state(): HealthState {
    return this.current;
  }

  start(): void {
    this.started = true;
    this.onChange(this.current);
    this.schedule();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
  }

  private schedule(): void {
    if (this.stopped || !this.started) return;
    this.timer = setTimeout(() => void this.tick(), this.spec.intervalMs);
    this.timer.unref();
  }

  /** One probe and its effect on the state; start() runs it every interval (tests call it directly). */
  async tick(): Promise<void> {
    let ok = false;
    try {
      ok = await this.probe(this.spec.timeoutMs);
    } catch {
      ok = false;
    }
    if (this.stopped) return;
    if (ok) {
      this.failures = 0;
      this.set('healthy');
    } else if (this.now() - this.startedAt >= this.spec.startPeriodMs || this.current !== 'starting') {
      this.failures++;
      if (this.failures >= this.spec.retries) this.set('unhealthy');
    }
    this.schedule();
  }

  private set(s: HealthState): void {
    if (s === this.current) return;
    this.current = s;
    this.onChange(s);
  }
}
