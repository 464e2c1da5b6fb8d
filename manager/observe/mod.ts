// Manager observability: Prometheus /metrics (prom-client), events over NATS
// (kept in the CONVOY_EVENTS JetStream stream for replay), and the autoscaler,
// fed by the task usage the agents publish on convoy.stats.<nodeId>.
// Nothing here may stop scheduling: every observer call is synchronous, cheap
// and never throws; NATS is (re)connected in the background.
import { RetentionPolicy, StorageType, nanos, type NatsConnection } from 'nats';
import { errMsg, type Logger } from '../../common/logger';
import { EVENTS_MAX_AGE_MS, EVENTS_STREAM, EVENTS_SUBJECTS, STATS_SUBJECTS, eventSubject, type ConvoyEvent } from '../../proto/events';
import { NatsLink } from '../../common/nats';
import { serveMetrics } from '../../common/metrics';
import type { Autoscaler, ManagerObserver } from '../hooks';
import { StatsTable } from '../autoscale/stats';
import { AutoscaleEngine } from '../autoscale/autoscale';
import { ManagerMetrics } from './metrics';

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
  /** What the store's maintenance loop reports: size gauges, the NOSPACE alarm (metric and cluster event), defragmentations. */
  storeReport: {
    status(st: { dbSizeBytes: number; dbSizeInUseBytes: number; alarms: string[] }): void;
    full(full: boolean, message: string): void;
    defragmented(beforeBytes: number, afterBytes: number, seconds: number): void;
  };
  /** host:port /metrics is served on, when it is. */
  metricsAddr?: string;
}

/** Creates the events stream when it is missing (every manager tries; the first wins). */
export async function ensureEventsStream(nc: NatsConnection): Promise<void> {
  const jsm = await nc.jetstreamManager();
  try {
    await jsm.streams.info(EVENTS_STREAM);
    return;
  } catch {
    /* missing: create it */
  }
  try {
    await jsm.streams.add({
      name: EVENTS_STREAM,
      subjects: [EVENTS_SUBJECTS],
      retention: RetentionPolicy.Limits,
      storage: StorageType.File,
      max_age: nanos(EVENTS_MAX_AGE_MS),
      max_msgs: 100_000,
    });
  } catch (e) {
    // Another manager created it meanwhile.
    await jsm.streams.info(EVENTS_STREAM).catch(() => {
      throw e;
    });
  }
}

export async function startManagerObservability(o: ObservabilityOptions): Promise<ManagerObservability> {
  const log = o.logger.child({ component: 'observe' });
  const metrics = new ManagerMetrics(o.managerId);
  const server = o.metricsListen ? await serveMetrics(metrics.registry, o.metricsListen, async () => metrics.refresh()) : undefined;
  const link = o.natsUrl
    ? new NatsLink({ url: o.natsUrl, name: `convoy-manager-${o.managerId}`, logger: log, onConnect: (nc) => ensureEventsStream(nc) }).start()
    : undefined;

  const stats = new StatsTable();
  const engine = new AutoscaleEngine((id) => stats.get(id));
  let unsubscribeStats: (() => void) | undefined;

  const observer: ManagerObserver = {
    controlCall(method, code, seconds) {
      metrics.controlRequests.inc({ method, code });
      metrics.controlLatency.observe({ method }, seconds);
    },
    etcdRequest(op, seconds) {
      metrics.etcdLatency.observe({ op }, seconds);
    },
    leader(leading) {
      metrics.leader(leading);
    },
    state(snap) {
      try {
        metrics.state(snap);
      } catch (e) {
        log.warn('metrics from snapshot failed', { err: errMsg(e) });
      }
    },
    reconciled(f) {
      metrics.reconciled(f);
    },
    scheduled(seconds) {
      metrics.schedLatency.observe(seconds);
    },
    event(e: ConvoyEvent) {
      metrics.events.inc({ type: e.type });
      if (e.type === 'service' && e.action === 'autoscaled' && e.from !== undefined && e.to !== undefined) {
        metrics.autoscaleDecisions.inc({ service: e.serviceName, direction: e.to > e.from ? 'up' : 'down' });
      }
      link?.publish(eventSubject(e), e);
    },
    async close() {
      unsubscribeStats?.();
      await link?.close();
      await server?.close();
    },
  };

  const autoscaler: Autoscaler = {
    decide(snap) {
      try {
        stats.prune(snap.now);
        return engine.decide(snap);
      } catch (e) {
        log.warn('autoscaler failed', { err: errMsg(e) });
        return [];
      }
    },
    leading(leading) {
      if (leading && link && !unsubscribeStats) {
        unsubscribeStats = link.subscribe(STATS_SUBJECTS, (m) => stats.ingest(m, Date.now()));
      } else if (!leading) {
        unsubscribeStats?.();
        unsubscribeStats = undefined;
        stats.clear();
        engine.reset();
      }
    },
    async close() {
      unsubscribeStats?.();
      unsubscribeStats = undefined;
    },
  };

  // Fed by the store's maintenance loop (manager/store/maintenance.ts): size gauges, the NOSPACE alarm, events.
  const storeReport = {
    status(st: { dbSizeBytes: number; dbSizeInUseBytes: number; alarms: string[] }) {
      metrics.storeStatus(st);
    },
    full(full: boolean, message: string) {
      metrics.etcdAlarm.set({ alarm: 'NOSPACE' }, full ? 1 : 0);
      observer.event({ type: 'cluster', action: full ? 'store-full' : 'store-recovered', time: Date.now(), source: `manager/${o.managerId}`, message });
    },
    defragmented(_before: number, _after: number, _seconds: number) {
      metrics.etcdDefrags.inc();
    },
  };

  return { observer, autoscaler, storeReport, metricsAddr: server?.addr };
}
