// The autoscaler's decision logic, in the manner of Kubernetes' HPA: a plain
// synchronous function of the leader's snapshot plus the task usage samples
// collected from the agents (over NATS, see manager/observe). No timers, no
// I/O: tested with object literals (autoscale.test.ts).
//
//   desired = ceil(current × usage / target)
//
// - usage is the average utilisation of the service's running tasks in percent
//   of their reservation (or limit when there is no reservation);
// - within TOLERANCE (10%) of the target nothing changes;
// - tasks without a fresh sample count as 0% when scaling up (a replica that
//   is still starting must not make the others look busier) and as exactly
//   the target when scaling down (no sample never argues for fewer replicas);
//   with no fresh sample at all nothing changes;
// - CPU and memory each give a recommendation, the larger wins;
// - scale-up is immediate; scale-down takes the highest recommendation seen
//   over the stabilisation window, so a short lull does not remove replicas;
// - the result is always clamped to [min, max].
import type { ClusterSnapshot } from '../state/snapshot';
import type { ScaleDecision } from '../hooks';
import type { AutoscalePolicy, Service, Task } from '../../proto/mod';

/** |usage/target - 1| within this is "on target" (HPA's default). */
export const TOLERANCE = 0.1;
/** A sample older than this is no sample (agents publish every STATS_INTERVAL_MS = 2 s). */
export const STALE_MS = 15_000;
/** Recommendations within this of each other share one history entry (their highest). */
const HISTORY_BUCKET_MS = 1_000;
/** Scale-down stabilisation when the policy leaves it at 0 (HPA's default, 5 minutes). */
export const DEFAULT_SCALE_DOWN_STABILIZATION_MS = 300_000;

/** One task's usage as an agent last reported it. */
export interface TaskUsage {
  /** Epoch ms the manager received the sample (staleness is judged on the manager's clock). */
  receivedAt: number;
  /** CPU used over the agent's last interval, in cores (1 = one CPU fully busy). */
  cpuCores: number;
  memoryBytes: number;
}

export type UsageSource = (taskId: string) => TaskUsage | undefined;

export interface Recommendation {
  /** Replicas this metric asks for, before clamping and stabilisation. */
  replicas: number;
  /** Human-readable: "cpu 142% of target over 3 tasks". */
  why: string;
}

function requestOf(spec: Service['spec'], kind: 'nanoCpus' | 'memoryBytes'): number {
  const r = spec?.resources;
  return Number(r?.reservations?.[kind] || 0) || Number(r?.limits?.[kind] || 0);
}

/**
 * What one metric recommends for a service with `current` replicas whose
 * running tasks are `running`. undefined = no opinion (no target, no samples).
 */
export function recommend(
  metric: 'cpu' | 'memory',
  targetPercent: number,
  requestPerTask: number,
  current: number,
  running: readonly Task[],
  usage: UsageSource,
  now: number,
): Recommendation | undefined {
  if (!targetPercent || !requestPerTask || current <= 0) return undefined;
  let sum = 0;
  let fresh = 0;
  for (const t of running) {
    const u = usage(t.id);
    if (!u || now - u.receivedAt > STALE_MS) continue;
    const used = metric === 'cpu' ? u.cpuCores * 1e9 : u.memoryBytes;
    sum += (used / requestPerTask) * 100;
    fresh++;
  }
  if (fresh === 0) return undefined;
  const missing = Math.max(0, current - fresh);
  const freshRatio = sum / fresh / targetPercent;
  let ratio: number;
  if (freshRatio > 1) ratio = sum / (current * targetPercent); // missing count as 0%
  else ratio = (sum + missing * targetPercent) / (current * targetPercent); // missing count as on target
  const why = `${metric} ${Math.round(ratio * 100)}% of target over ${fresh} task${fresh === 1 ? '' : 's'}`;
  if (Math.abs(ratio - 1) <= TOLERANCE) return { replicas: current, why };
  return { replicas: Math.max(1, Math.ceil(current * ratio - 1e-9)), why };
}

export function clamp(n: number, p: Pick<AutoscalePolicy, 'minReplicas' | 'maxReplicas'>): number {
  return Math.min(Math.max(n, p.minReplicas), p.maxReplicas);
}

/** Holds the recommendations history each service's scale-down stabilisation needs. */
export class AutoscaleEngine {
  private readonly history = new Map<string, { at: number; replicas: number }[]>();

  constructor(private readonly usage: UsageSource) {}

  /** Forget everything (the manager lost the lead). */
  reset(): void {
    this.history.clear();
  }

  decide(snap: ClusterSnapshot): ScaleDecision[] {
    const out: ScaleDecision[] = [];
    const running = new Map<string, Task[]>();
    for (const t of snap.tasks.values()) {
      if (t.desiredState !== 'RUNNING' || t.status?.state !== 'RUNNING') continue;
      const l = running.get(t.serviceId);
      if (l) l.push(t);
      else running.set(t.serviceId, [t]);
    }
    for (const id of this.history.keys()) if (!snap.services.get(id)?.spec?.autoscale?.enabled) this.history.delete(id);
    for (const s of snap.services.values()) {
      const d = this.decideOne(s, running.get(s.id) ?? [], snap.now);
      if (d) out.push(d);
    }
    return out;
  }

  private decideOne(s: Service, running: Task[], now: number): ScaleDecision | undefined {
    const spec = s.spec;
    const p = spec?.autoscale;
    if (!spec || !p?.enabled || spec.mode === 'GLOBAL') return undefined;
    const current = Number(spec.replicas);
    const recs: Recommendation[] = [];
    const cpu = recommend('cpu', p.targetCpuPercent, requestOf(spec, 'nanoCpus'), current, running, this.usage, now);
    if (cpu) recs.push(cpu);
    const mem = recommend('memory', p.targetMemoryPercent, requestOf(spec, 'memoryBytes'), current, running, this.usage, now);
    if (mem) recs.push(mem);

    if (!recs.length) {
      // No usage known: only the bounds may move the replicas.
      const to = clamp(current, p);
      if (to === current) return undefined;
      return { serviceId: s.id, from: current, to, reason: `${to > current ? 'below the minimum' : 'above the maximum'} ${to > current ? p.minReplicas : p.maxReplicas}: ${current} → ${to}` };
    }
    const best = recs.reduce((a, b) => (b.replicas > a.replicas ? b : a));
    const wanted = clamp(best.replicas, p);
    const window = Number(p.scaleDownStabilizationMs) || DEFAULT_SCALE_DOWN_STABILIZATION_MS;
    const hist = (this.history.get(s.id) ?? []).filter((h) => now - h.at <= window);
    // Leader ticks can come many times a second: one entry per second (its highest) bounds the history.
    const lastEntry = hist[hist.length - 1];
    if (lastEntry && now - lastEntry.at < HISTORY_BUCKET_MS) lastEntry.replicas = Math.max(lastEntry.replicas, wanted);
    else hist.push({ at: now, replicas: wanted });
    this.history.set(s.id, hist);

    let to = wanted;
    if (wanted < current) to = Math.min(current, Math.max(...hist.map((h) => h.replicas)));
    to = clamp(to, p);
    if (to === current) return undefined;
    const bound = to === p.maxReplicas && best.replicas > p.maxReplicas ? ` (capped at max ${p.maxReplicas})` : to === p.minReplicas && best.replicas < p.minReplicas ? ` (kept at min ${p.minReplicas})` : '';
    return { serviceId: s.id, from: current, to, reason: `${recs.map((r) => r.why).join(', ')}: ${current} → ${to}${bound}` };
  }
}
