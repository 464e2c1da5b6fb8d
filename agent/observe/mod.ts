// Agent observability: /metrics (agent/metrics), and over NATS — once a
// session tells the agent the managers' NATS URL — task state events, usage
// stats every STATS_INTERVAL_MS (for the leader's autoscaler) and log
// requests. NATS going away never stops tasks: events and stats published
// meanwhile wait in a bounded buffer (common/nats.ts) and the oldest are
// dropped and counted (convoy_agent_nats_dropped_total).
import { errMsg, nullLogger, type Logger } from '../../common/logger';
import type { TlsBundle } from '../../common/identity';
import { logsSubject, statsSubject, eventSubject, type ConvoyEvent, type EventSink, type StatsMessage } from '../../proto/events';
import { NatsLink } from '../../common/nats';
import { serveMetrics } from '../../common/metrics';
import type { NetworkState, Task } from '../../proto/mod';
import type { Executor } from '../executor';
import { ContainerExecutor } from '../runtime/executor';
import { AgentMetrics, TaskSampler, type TaskSource } from '../metrics/metrics';
import { LogServer } from './logs';

/** Usage samples go to the autoscaler this often. */
export const STATS_INTERVAL_MS = 2_000;

export interface AgentObservabilityOptions {
  executor: () => Executor;
  /** The tasks this agent holds and their observed state. */
  tasks: () => { task: Task; state: string }[];
  nodeId: () => string;
  /** Whether to use NATS at all (default yes). */
  nats?: () => boolean;
  /** This node's certificate and the cluster CA, for NATS (read at each (re)connect); none = no NATS. */
  natsTls?: () => TlsBundle | undefined;
  /** host:port for /metrics; undefined = none. */
  metricsListen?: string;
  /** Serve /metrics with mutual TLS: this node's certificate, scrapers' checked against the CA in it. */
  metricsTls?: TlsBundle;
  logger?: Logger;
}

export class AgentObservability {
  readonly metrics = new AgentMetrics();
  private link: NatsLink | undefined;
  private url = '';
  private sampler: TaskSampler | undefined;
  private server: { addr: string; close(): Promise<void> } | undefined;
  private statsTimer: NodeJS.Timeout | undefined;
  private logs: LogServer | undefined;
  private unsubLogs: (() => void) | undefined;
  private readonly log: Logger;
  private lastDropped = 0;
  private pullWrapped = false;
  private pullBytesSeen = 0;

  constructor(private readonly o: AgentObservabilityOptions) {
    this.log = (o.logger ?? nullLogger).child({ component: 'observe' });
  }

  /** An EventSink that feeds metrics and NATS, then `next` (the caller's own sink, if any). */
  sink(next?: EventSink): EventSink {
    return {
      publish: (e: ConvoyEvent) => {
        try {
          if (e.type === 'task') this.metrics.taskEvent(e);
          this.link?.publish(eventSubject(e, this.o.nodeId()), e);
        } catch (err) {
          this.log.debug('event not published', { err: errMsg(err) });
        }
        next?.publish(e);
      },
    };
  }

  /** host:port /metrics is served on, once start() ran. */
  get metricsAddr(): string | undefined {
    return this.server?.addr;
  }

  private get taskSource(): TaskSource {
    return () => this.o.tasks();
  }

  private samplerOf(): TaskSampler {
    this.sampler ??= new TaskSampler(this.o.executor(), this.taskSource);
    return this.sampler;
  }

  async start(): Promise<void> {
    this.wrapPulls();
    if (this.o.metricsListen && !this.server) {
      this.server = await serveMetrics(this.metrics.registry, this.o.metricsListen, () => this.refresh(), this.o.metricsTls ? { tls: this.o.metricsTls } : undefined);
      this.log.info('metrics served', { addr: this.server.addr });
    }
  }

  /** Brings the registry up to date (before every scrape). */
  async refresh(): Promise<void> {
    const tasks = this.o.tasks();
    const sampler = this.samplerOf();
    const samples = await sampler.sample();
    this.metrics.update(samples, tasks);
    this.metrics.collectDuration.set(sampler.lastCollectMs / 1000);
    this.metrics.natsConnected.set(this.link?.connected ? 1 : 0);
    const dropped = this.link?.dropped ?? 0;
    if (dropped > this.lastDropped) this.metrics.natsDropped.inc(dropped - this.lastDropped);
    this.lastDropped = dropped;
    const ex = this.o.executor();
    if (ex instanceof ContainerExecutor) {
      const b = ex.images.counters.bytesPulled;
      if (b > this.pullBytesSeen) this.metrics.pullBytes.inc(b - this.pullBytesSeen);
      this.pullBytesSeen = b;
    }
  }

  /** Times the container runtime's image pulls (ImageStore.pull) for convoy_image_pull_duration_seconds. */
  private wrapPulls(): void {
    const ex = this.o.executor();
    if (this.pullWrapped || !(ex instanceof ContainerExecutor)) return;
    this.pullWrapped = true;
    const images = ex.images;
    const pull = images.pull.bind(images);
    const hist = this.metrics.pullDuration;
    images.pull = (ref: string) => {
      const end = hist.startTimer();
      const p = pull(ref);
      p.then(() => end(), () => end());
      return p;
    };
  }

  /**
   * natsTls() now returns another bundle (issued, renewed): the link
   * reconnects with it, or connects now if it had none before.
   */
  tlsChanged(): void {
    const tls = this.o.natsTls?.();
    if (!tls) return;
    if (this.link) this.link.setTls(tls);
    else if (this.url && this.o.nodeId()) this.session(this.o.nodeId(), this.url);
  }

  /** A session was (re)established: (re)connect to the NATS it names. */
  session(nodeId: string, natsUrl: string): void {
    if (natsUrl === this.url && this.link) return;
    const old = this.link;
    this.unsubLogs?.();
    this.logs?.close();
    this.link = undefined;
    void old?.close();
    this.url = natsUrl;
    if (!natsUrl || this.o.nats?.() === false) return;
    const tls = this.o.natsTls?.();
    if (!tls) {
      this.log.warn('NATS not used: no TLS bundle for it (no events, stats or logs)', { url: natsUrl });
      return;
    }
    const link = new NatsLink({ url: natsUrl, tls, name: `convoy-agent-${nodeId}`, logger: this.log }).start();
    this.link = link;
    const ex = this.o.executor();
    this.logs = new LogServer({
      nodeId: this.o.nodeId,
      logPath: (id) => (ex instanceof ContainerExecutor ? ex.logPath(id) : undefined),
      publish: (subject, data) => link.publish(subject, data),
      subscribe: (subject, cb) => link.subscribe(subject, () => cb()),
      logger: this.log,
    });
    const logs = this.logs;
    this.unsubLogs = link.subscribe(logsSubject(nodeId), (req) => logs.handle(req));
    if (!this.statsTimer) {
      this.statsTimer = setInterval(() => void this.publishStats(), STATS_INTERVAL_MS);
      this.statsTimer.unref();
    }
  }

  private async publishStats(): Promise<void> {
    const link = this.link;
    const nodeId = this.o.nodeId();
    if (!link || !nodeId) return;
    try {
      const samples = await this.samplerOf().sample();
      const msg: StatsMessage = {
        nodeId,
        time: Date.now(),
        tasks: samples.map((s) => ({
          taskId: s.task.id,
          serviceId: s.task.serviceId,
          serviceName: s.task.serviceName,
          slot: s.task.slot,
          cpuCores: s.cpuCores,
          cpuSeconds: s.stats.cpuSeconds,
          memoryBytes: s.stats.memoryBytes,
          memoryLimitBytes: s.stats.memoryLimitBytes,
        })),
      };
      // Only connected: stale usage is worth nothing to the autoscaler, so it is not buffered.
      if (link.connected) link.publish(statsSubject(nodeId), msg);
    } catch (e) {
      this.log.debug('stats not published', { err: errMsg(e) });
    }
  }

  network(st: NetworkState): void {
    try {
      this.metrics.network(st);
    } catch (e) {
      this.log.debug('lb metrics failed', { err: errMsg(e) });
    }
  }

  async close(): Promise<void> {
    if (this.statsTimer) clearInterval(this.statsTimer);
    this.statsTimer = undefined;
    this.unsubLogs?.();
    this.logs?.close();
    await this.link?.close();
    this.link = undefined;
    await this.server?.close();
    this.server = undefined;
  }
}
