// The manager's Prometheus metrics (prom-client, one Registry per manager so
// several managers can share a process in tests). State gauges come from the
// leader's snapshots; a follower exports them empty (`convoy_manager_leader`
// says which manager leads, so dashboards sum over the leader only).
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { ClusterSnapshot } from '../state/snapshot';
import type { ReconcileFigures } from '../hooks';

/** Buckets for fast operations (etcd requests, Control calls, reconcile ticks), in seconds. */
const FAST_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];
/** Scheduling latency: task created → assigned, seconds. */
const SCHED_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

export class ManagerMetrics {
  readonly registry = new Registry();
  private readonly nodes: Gauge<'state' | 'availability'>;
  private readonly services: Gauge;
  private readonly tasks: Gauge<'service' | 'state'>;
  private readonly desired: Gauge<'service'>;
  private readonly running: Gauge<'service'>;
  readonly leaderGauge: Gauge;
  readonly schedLatency: Histogram;
  readonly reconcileDuration: Histogram;
  readonly reconcileTasks: Counter<'outcome'>;
  readonly etcdLatency: Histogram<'op'>;
  readonly controlRequests: Counter<'method' | 'code'>;
  readonly controlLatency: Histogram<'method'>;
  readonly events: Counter<'type'>;
  readonly autoscaleDecisions: Counter<'service' | 'direction'>;
  readonly statsRejected: Counter<'reason'>;
  readonly etcdDbSize: Gauge<'kind'>;
  readonly etcdAlarm: Gauge<'alarm'>;
  readonly etcdDefrags: Counter;

  constructor(managerId: string) {
    const r = [this.registry];
    this.registry.setDefaultLabels({ manager: managerId });
    collectDefaultMetrics({ register: this.registry, prefix: 'convoy_manager_' });
    this.nodes = new Gauge({ name: 'convoy_nodes', help: 'Nodes by state and availability (leader only).', labelNames: ['state', 'availability'], registers: r });
    this.services = new Gauge({ name: 'convoy_services', help: 'Services (leader only).', registers: r });
    this.tasks = new Gauge({ name: 'convoy_tasks', help: 'Tasks by service and observed state (leader only).', labelNames: ['service', 'state'], registers: r });
    this.desired = new Gauge({ name: 'convoy_service_replicas_desired', help: 'Replicas a service asks for (leader only).', labelNames: ['service'], registers: r });
    this.running = new Gauge({ name: 'convoy_service_replicas_running', help: 'Running tasks of a service that should run (leader only).', labelNames: ['service'], registers: r });
    this.leaderGauge = new Gauge({ name: 'convoy_manager_leader', help: '1 when this manager leads.', registers: r });
    this.schedLatency = new Histogram({ name: 'convoy_scheduling_latency_seconds', help: 'Task creation to assignment.', buckets: SCHED_BUCKETS, registers: r });
    this.reconcileDuration = new Histogram({ name: 'convoy_reconcile_duration_seconds', help: 'One leader tick: read, reconcile, commit.', buckets: FAST_BUCKETS, registers: r });
    this.reconcileTasks = new Counter({ name: 'convoy_reconcile_tasks_total', help: 'Tasks created, assigned, or found unschedulable by leader ticks.', labelNames: ['outcome'], registers: r });
    this.etcdLatency = new Histogram({ name: 'convoy_etcd_request_duration_seconds', help: 'etcd requests by operation.', labelNames: ['op'], buckets: FAST_BUCKETS, registers: r });
    this.controlRequests = new Counter({ name: 'convoy_control_requests_total', help: 'Control API requests by method and gRPC status code.', labelNames: ['method', 'code'], registers: r });
    this.controlLatency = new Histogram({ name: 'convoy_control_request_duration_seconds', help: 'Control API request latency by method.', labelNames: ['method'], buckets: FAST_BUCKETS, registers: r });
    this.events = new Counter({ name: 'convoy_events_total', help: 'Events this manager published, by type.', labelNames: ['type'], registers: r });
    this.statsRejected = new Counter({
      name: 'convoy_autoscale_stats_rejected_total',
      help: 'Task usage samples dropped because they did not come from the node that runs the task (node-mismatch: message and subject disagree; foreign-task: another node runs it; unknown-task: no such task yet).',
      labelNames: ['reason'],
      registers: r,
    });
    this.autoscaleDecisions = new Counter({ name: 'convoy_autoscale_decisions_total', help: 'Replica changes the autoscaler decided, by direction.', labelNames: ['service', 'direction'], registers: r });
    this.etcdDbSize = new Gauge({ name: 'convoy_etcd_db_size_bytes', help: 'etcd database file size (total) and the part in use (in_use), as its status reports.', labelNames: ['kind'], registers: r });
    this.etcdAlarm = new Gauge({ name: 'convoy_etcd_alarm', help: '1 while etcd has this alarm raised (NOSPACE: the store is full, writes are refused).', labelNames: ['alarm'], registers: r });
    this.etcdDefrags = new Counter({ name: 'convoy_etcd_defrag_total', help: 'Defragmentations this manager ran on its embedded etcd.', registers: r });
    this.etcdAlarm.set({ alarm: 'NOSPACE' }, 0);
    this.leaderGauge.set(0);
  }

  /** The store's status as the maintenance loop read it. */
  storeStatus(st: { dbSizeBytes: number; dbSizeInUseBytes: number; alarms: string[] }): void {
    this.etcdDbSize.set({ kind: 'total' }, st.dbSizeBytes);
    this.etcdDbSize.set({ kind: 'in_use' }, st.dbSizeInUseBytes);
    this.etcdAlarm.set({ alarm: 'NOSPACE' }, st.alarms.includes('NOSPACE') ? 1 : 0);
  }

  leader(leading: boolean): void {
    this.leaderGauge.set(leading ? 1 : 0);
    if (!leading) {
      this.latest = undefined;
      this.applied = undefined;
      for (const g of [this.nodes, this.services, this.tasks, this.desired, this.running]) g.reset();
    }
  }

  reconciled(f: ReconcileFigures): void {
    this.reconcileDuration.observe(f.seconds);
    if (f.created) this.reconcileTasks.inc({ outcome: 'created' }, f.created);
    if (f.assigned) this.reconcileTasks.inc({ outcome: 'assigned' }, f.assigned);
    if (f.unschedulable) this.reconcileTasks.inc({ outcome: 'unschedulable' }, f.unschedulable);
  }

  private latest: ClusterSnapshot | undefined;
  private applied: ClusterSnapshot | undefined;

  /** Keeps the leader's latest snapshot; the gauges are computed from it at scrape time (refresh), not on every tick. */
  state(snap: ClusterSnapshot): void {
    this.latest = snap;
  }

  /** Brings the state gauges up to date with the latest snapshot (before every scrape). */
  refresh(): void {
    const snap = this.latest;
    if (!snap || snap === this.applied) return;
    this.applied = snap;
    this.apply(snap);
  }

  private apply(snap: ClusterSnapshot): void {
    const nodes = new Map<string, number>();
    for (const n of snap.nodes.values()) {
      const k = `${n.status?.state ?? 'UNKNOWN'}\u0000${n.spec?.availability ?? 'ACTIVE'}`;
      nodes.set(k, (nodes.get(k) ?? 0) + 1);
    }
    this.nodes.reset();
    for (const [k, v] of nodes) {
      const [state, availability] = k.split('\u0000');
      this.nodes.set({ state, availability }, v);
    }
    this.services.set(snap.services.size);

    const names = new Map<string, string>();
    for (const s of snap.services.values()) names.set(s.id, s.spec?.name ?? s.id);
    const tasks = new Map<string, number>();
    const running = new Map<string, number>();
    for (const t of snap.tasks.values()) {
      const svc = names.get(t.serviceId) ?? t.serviceName;
      const k = `${svc}\u0000${t.status?.state ?? 'NEW'}`;
      tasks.set(k, (tasks.get(k) ?? 0) + 1);
      if (t.desiredState === 'RUNNING' && t.status?.state === 'RUNNING') running.set(svc, (running.get(svc) ?? 0) + 1);
    }
    this.tasks.reset();
    for (const [k, v] of tasks) {
      const [service, state] = k.split('\u0000');
      this.tasks.set({ service, state }, v);
    }
    this.desired.reset();
    this.running.reset();
    for (const s of snap.services.values()) {
      const name = s.spec?.name ?? s.id;
      const desired = s.spec?.mode === 'GLOBAL' ? [...snap.tasks.values()].filter((t) => t.serviceId === s.id && t.desiredState === 'RUNNING').length : Number(s.spec?.replicas ?? 0);
      this.desired.set({ service: name }, desired);
      this.running.set({ service: name }, running.get(name) ?? 0);
    }
  }
}
