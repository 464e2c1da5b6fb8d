// The contract between the store (manager/store, which does all I/O with
// etcd) and the reconcilers (orchestrators, scheduler, allocator, update and
// restart supervisors), which are plain synchronous functions of a snapshot
// that return the writes they want. The leader loop (manager/leader) feeds
// them snapshots and commits their actions in batched, revision-guarded
// transactions; an action whose object changed meanwhile is dropped and the
// reconciler runs again on the next tick.
import type { Cluster, Network, Node, Service, Task } from '../../proto/mod';

export interface ClusterSnapshot {
  /** etcd revision the snapshot reflects. */
  revision: number;
  /** Epoch ms the reconcilers treat as "now" (injected so tests need no timers). */
  now: number;
  cluster: Cluster;
  services: ReadonlyMap<string, Service>;
  /** Every task the store holds, including ended ones the reaper has not removed yet. */
  tasks: ReadonlyMap<string, Task>;
  nodes: ReadonlyMap<string, Node>;
  networks: ReadonlyMap<string, Network>;
}

/**
 * A write a reconciler wants. `update` and `delete` are guarded by the
 * object's meta.version (etcd mod revision) at the time it was read.
 */
export type Action =
  | { op: 'createTask'; task: Task }
  | { op: 'updateTask'; task: Task }
  | { op: 'deleteTask'; task: Task }
  | { op: 'updateService'; service: Service }
  | { op: 'updateNode'; node: Node }
  // The allocator creates the "default" network when the cluster has none and
  // gives networks created without one a VXLAN id (vni).
  | { op: 'createNetwork'; network: Network }
  | { op: 'updateNetwork'; network: Network };

/** Why a task could not be placed, kept for the task's status message. */
export interface Unschedulable {
  taskId: string;
  /** "no suitable node: insufficient memory on 3 nodes, constraint mismatch on 2" */
  reason: string;
}
