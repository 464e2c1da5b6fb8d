// Manager observability: Prometheus /metrics, events over NATS, and the
// autoscaler. SCAFFOLD: returns no-op implementations until manager/observe
// is written (issue 5); manager.ts already calls through these interfaces.
import type { Logger } from '../../proto/common/logger';
import { nullAutoscaler, nullObserver, type Autoscaler, type ManagerObserver } from '../hooks';

export interface ObservabilityOptions {
  managerId: string;
  /** NATS server URL; undefined = no events, no stats (the autoscaler then never acts). */
  natsUrl?: string;
  /** host:port for /metrics; undefined = no metrics server. */
  metricsListen?: string;
  logger: Logger;
}

export interface ManagerObservability {
  observer: ManagerObserver;
  autoscaler: Autoscaler;
  /** host:port /metrics is served on, when it is. */
  metricsAddr?: string;
}

export async function startManagerObservability(_o: ObservabilityOptions): Promise<ManagerObservability> {
  return { observer: nullObserver, autoscaler: nullAutoscaler };
}
