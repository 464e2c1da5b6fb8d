// The contract between the store (manager/store, which does all I/O with
// etcd) and the reconcilers (orchestrators, scheduler, allocator, update and
// restart supervisors), which are plain synchronous functions of a snapshot
// that return the writes they want. The leader loop (manager/leader) feeds
// them snapshots and commits their writes in batched, revision-guarded
// transactions; a write whose object changed meanwhile is refused and the
// reconcilers run again for that object on the next tick.
import type { Cluster, Config, Network, Node, Secret, Service, Task, User } from '../../proto/mod';

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
 * What a reconcile returns: the store's own write type (create, update or
 * delete of one object). `update` and `delete` are guarded by the object's
 * meta.version (etcd mod revision) at the time it was read.
 */
export type { Write } from '../store/store';

type StoredObj = Cluster | Network | Node | Service | Task | User | Secret | Config | { id: string; meta: unknown };

/** Which object a write carries (Write.obj is the union of every kind). */
export const isTask = (o: StoredObj): o is Task => 'serviceId' in o;
export const isService = (o: StoredObj): o is Service => 'updateStatus' in o;
export const isNode = (o: StoredObj): o is Node => 'sessionId' in o;
export const isNetwork = (o: StoredObj): o is Network => 'vni' in o;

/** Why a task could not be placed, kept for the task's status message. */
export interface Unschedulable {
  taskId: string;
  /** "no suitable node: insufficient memory on 3 nodes, constraint mismatch on 2" */
  reason: string;
}
