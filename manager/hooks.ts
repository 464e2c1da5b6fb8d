// What the manager tells its observers (metrics, events) and asks its
// autoscaler. manager.ts calls these; manager/observe implements them
// (Prometheus through prom-client, events over NATS). Every method must be
// cheap, synchronous from the caller's point of view, and never throw: a
// broken metrics or NATS connection never stops scheduling.
import type { ConvoyEvent } from '../proto/events';
import type { ClusterSnapshot } from './state/snapshot';

export interface ReconcileFigures {
  /** Wall time of one leader tick: read, reconcile, commit. */
  seconds: number;
  created: number;
  assigned: number;
  unschedulable: number;
}

export interface ManagerObserver {
  /** A Control API call finished. `code` is the gRPC status name ("OK", "NOT_FOUND", ...). */
  controlCall(method: string, code: string, seconds: number): void;
  /** One etcd request (op: "get", "range", "txn", "put", "lease-grant", "lease-keepalive", "lease-revoke"). */
  etcdRequest(op: string, seconds: number): void;
  /** This manager gained or lost the lead. */
  leader(leading: boolean): void;
  /** The leader's view after a tick (for gauges: nodes, services, tasks, desired vs running). */
  state(snap: ClusterSnapshot): void;
  /** One leader tick finished. */
  reconciled(f: ReconcileFigures): void;
  /** A task was placed: seconds from its creation to its assignment. */
  scheduled(seconds: number): void;
  /** Something happened an operator may want to see (`convoy events`). */
  event(e: ConvoyEvent): void;
  close(): Promise<void>;
}

/** A decision of the autoscaler: set a service's replicas. */
export interface ScaleDecision {
  serviceId: string;
  from: number;
  to: number;
  /** "cpu 142% of target over 3 tasks: 3 → 5" */
  reason: string;
}

export interface Autoscaler {
  /**
   * Called by the leader on every tick with its snapshot. Returns the
   * services whose replicas should change now. Must be pure with respect to
   * the snapshot plus the stats it collected itself; never scales down on
   * missing or stale stats.
   */
  decide(snap: ClusterSnapshot): ScaleDecision[];
  /** The leader changed: (re)start or stop collecting stats. */
  leading(leading: boolean): void;
  close(): Promise<void>;
}

export const nullObserver: ManagerObserver = {
  controlCall() {},
  etcdRequest() {},
  leader() {},
  state() {},
  reconciled() {},
  scheduled() {},
  event() {},
  close: async () => undefined,
};

export const nullAutoscaler: Autoscaler = {
  decide: () => [],
  leading() {},
  close: async () => undefined,
};
