// Manager observability: Prometheus /metrics (prom-client), events over NATS
// (kept in the CONVOY_EVENTS JetStream stream for replay), and the autoscaler,
// fed by the task usage the agents publish on convoy.stats.<nodeId>.
// Nothing here may stop scheduling: every observer call is synchronous, cheap
// and never throws; NATS is (re)connected in the background.
import { RetentionPolicy, StorageType, nanos, type NatsConnection } from 'nats';
import { errMsg, type Logger } from '../../common/logger';
import type { TlsBundle } from '../../common/identity';
import { EVENTS_MAX_AGE_MS, EVENTS_MAX_BYTES, EVENTS_MAX_MSG_BYTES, EVENTS_STREAM, EVENTS_SUBJECTS, STATS_SUBJECTS, eventSubject, statsSubject, type ConvoyEvent } from '../../proto/events';
import { NatsLink } from '../../common/nats';
import { serveMetrics } from '../../common/metrics';
import type { Autoscaler, ManagerObserver } from '../hooks';
import { StatsTable } from '../autoscale/stats';
import type { ClusterSnapshot } from '../state/snapshot';
import { AutoscaleEngine } from '../autoscale/autoscale';
import { ManagerMetrics } from './metrics';
import { NodeUsageTable, type NodeSample } from './node-usage';

export interface ObservabilityOptions {
  managerId: string;
  /** NATS server URL; undefined = no events, no stats (the autoscaler then never acts). */
  natsUrl?: string;
  /** This manager's certificate (OU=manager) and the cluster CA, for NATS; without it no NATS either. */
  natsTls?: TlsBundle;
  /** host:port for /metrics; undefined = no metrics server. */
  metricsListen?: string;
  /** Serve /metrics with mutual TLS: this manager's certificate, scrapers' checked against the CA in it. */
  metricsTls?: TlsBundle;
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
  /** This manager's NATS link, when it uses NATS (the dashboard reads the agents' usage samples on it). */
  link?: NatsLink;
  /** What a node's tasks use, from its latest stats message (every manager keeps it); undefined: unknown. */
  nodeUsage(nodeId: string): NodeSample | undefined;
  /** This manager's certificate was renewed: the NATS link reconnects with `nats`, --metrics-tls serves `metrics` to new connections. */
  renewed(b: { nats?: TlsBundle; metrics?: TlsBundle }): void;
}

/**
 * Creates the events stream when it is missing (every manager tries; the
 * first wins), and gives one made before byte limits existed its limits.
 */
export async function ensureEventsStream(nc: NatsConnection): Promise<void> {
  const jsm = await nc.jetstreamManager();
  let existing;
  try {
    existing = await jsm.streams.info(EVENTS_STREAM);
  } catch {
    /* missing: create it */
  }
  if (existing) {
    const c = existing.config;
    if (c.max_bytes !== EVENTS_MAX_BYTES || c.max_msg_size !== EVENTS_MAX_MSG_BYTES) {
      await jsm.streams.update(EVENTS_STREAM, { max_bytes: EVENTS_MAX_BYTES, max_msg_size: EVENTS_MAX_MSG_BYTES });
    }
    return;
  }
  try {
    await jsm.streams.add({
      name: EVENTS_STREAM,
      subjects: [EVENTS_SUBJECTS],
      retention: RetentionPolicy.Limits,
      storage: StorageType.File,
      max_age: nanos(EVENTS_MAX_AGE_MS),
      max_msgs: 100_000,
      max_bytes: EVENTS_MAX_BYTES,
      max_msg_size: EVENTS_MAX_MSG_BYTES,
    });
  } catch (e) {
    // Another manager created it meanwhile.
    await jsm.streams.info(EVENTS_STREAM).catch(() => {
      throw e;
    });
  }
}

/** convoy.stats.<node id>: the node id follows this prefix. */
const STATS_PREFIX = statsSubject('');

export async function startManagerObservability(o: ObservabilityOptions): Promise<ManagerObservability> {
  const log = o.logger.child({ component: 'observe' });
  const metrics = new ManagerMetrics(o.managerId);
  const server = o.metricsListen ? await serveMetrics(metrics.registry, o.metricsListen, async () => metrics.refresh(), o.metricsTls ? { tls: o.metricsTls } : undefined) : undefined;
  if (o.natsUrl && !o.natsTls) log.warn('NATS not used: no TLS bundle for it (no events, stats or autoscaling)', { url: o.natsUrl });
  const link =
    o.natsUrl && o.natsTls
      ? new NatsLink({ url: o.natsUrl, tls: o.natsTls, name: `convoy-manager-${o.managerId}`, logger: log, onConnect: (nc) => ensureEventsStream(nc) }).start()
      : undefined;

  const stats = new StatsTable();
  /** The leader's latest snapshot: which node runs which task, for the stats' origin check. */
  let lastSnap: ClusterSnapshot | undefined;
  const rejectedSeen: Record<string, number> = {};
  const ingest = (m: unknown, subject: string) => {
    const snap = lastSnap;
    if (!snap) return; // no state yet: nothing to check a sample against (the next one comes in seconds)
    stats.ingest(m, Date.now(), subject.slice(STATS_PREFIX.length), (id) => snap.tasks.get(id)?.nodeId || undefined);
    for (const [reason, n] of Object.entries(stats.rejected)) {
      if (n > (rejectedSeen[reason] ?? 0)) metrics.statsRejected.inc({ reason }, n - (rejectedSeen[reason] ?? 0));
      rejectedSeen[reason] = n;
    }
  };
  const engine = new AutoscaleEngine((id) => stats.get(id));
  let unsubscribeStats: (() => void) | undefined;
  // Node usage, on every manager (the Control API answers with it): its own subscription, kept for the manager's life.
  const usage = new NodeUsageTable();
  const unsubscribeUsage = link?.subscribe(STATS_SUBJECTS, (m, msg) => {
    const now = Date.now();
    usage.ingest(m, now, msg.subject.slice(STATS_PREFIX.length));
    usage.prune(now);
  });

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
      link?.publish(eventSubject(e, o.managerId), e);
    },
    async close() {
      unsubscribeStats?.();
      unsubscribeUsage?.();
      await link?.close();
      await server?.close();
    },
  };

  const autoscaler: Autoscaler = {
    decide(snap) {
      try {
        lastSnap = snap;
        stats.prune(snap.now);
        return engine.decide(snap);
      } catch (e) {
        log.warn('autoscaler failed', { err: errMsg(e) });
        return [];
      }
    },
    leading(leading) {
      if (leading && link && !unsubscribeStats) {
        unsubscribeStats = link.subscribe(STATS_SUBJECTS, (m, msg) => ingest(m, msg.subject));
      } else if (!leading) {
        unsubscribeStats?.();
        unsubscribeStats = undefined;
        stats.clear();
        lastSnap = undefined;
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

  const renewed = (b: { nats?: TlsBundle; metrics?: TlsBundle }) => {
    if (b.nats) link?.setTls(b.nats);
    if (b.metrics && o.metricsTls) server?.setTls(b.metrics);
  };
  return { observer, autoscaler, storeReport, metricsAddr: server?.addr, link, nodeUsage: (id) => usage.get(id, Date.now()), renewed };
}
