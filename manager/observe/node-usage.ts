// What each node's tasks use, as its agent last said on convoy.stats.<node id>
// (every STATS_INTERVAL_MS = 2 s). Every manager keeps this table, not only
// the leader: the Control API (`convoy node ls`, `cluster top`, the
// dashboard) answers from the manager it reaches. A message counts only for
// the node of its subject (NATS lets a node publish on its own subject only,
// proto/nats-auth.ts) and only when it names that node; its samples are
// summed as they are (the node's own word on its own use). Anything
// malformed is dropped. Bounded: one entry per node, entries older than
// NODE_USAGE_FRESH_MS are forgotten, at most NODE_USAGE_MAX_NODES entries.
import type { StatsMessage } from '../../proto/events';

/** A node's sample is "in use" for this long; after it, the use is unknown (agents publish every 2 s). */
export const NODE_USAGE_FRESH_MS = 60_000;
/** More nodes than a cluster has (docs/limits.md): a bound on the table whatever arrives. */
export const NODE_USAGE_MAX_NODES = 10_000;

export interface NodeSample {
  /** Epoch ms this manager received it. */
  receivedAt: number;
  /** Sum over the node's running tasks: CPU over the agent's last interval, in cores. */
  cpuCores: number;
  memoryBytes: number;
  tasks: number;
}

const okNumber = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v) && v >= 0;

export class NodeUsageTable {
  private readonly byNode = new Map<string, NodeSample>();

  /** One message that came on convoy.stats.<subjectNode>; false when it was dropped. */
  ingest(msg: unknown, now: number, subjectNode: string): boolean {
    const m = msg as Partial<StatsMessage> | null;
    if (!m || typeof m !== 'object' || !Array.isArray(m.tasks) || !subjectNode || m.nodeId !== subjectNode) return false;
    if (!this.byNode.has(subjectNode) && this.byNode.size >= NODE_USAGE_MAX_NODES) {
      this.prune(now);
      if (this.byNode.size >= NODE_USAGE_MAX_NODES) return false;
    }
    let cpu = 0;
    let mem = 0;
    let tasks = 0;
    for (const t of m.tasks as unknown[]) {
      const s = t as { cpuCores?: unknown; memoryBytes?: unknown } | null;
      if (!s || !okNumber(s.cpuCores) || !okNumber(s.memoryBytes)) continue;
      cpu += s.cpuCores;
      mem += s.memoryBytes;
      tasks++;
    }
    this.byNode.delete(subjectNode); // re-inserted last: the map stays in arrival order for prune()
    this.byNode.set(subjectNode, { receivedAt: now, cpuCores: cpu, memoryBytes: mem, tasks });
    return true;
  }

  /** The node's fresh sample, or undefined (none, or older than NODE_USAGE_FRESH_MS). */
  get(nodeId: string, now: number): NodeSample | undefined {
    const s = this.byNode.get(nodeId);
    return s && now - s.receivedAt <= NODE_USAGE_FRESH_MS ? s : undefined;
  }

  prune(now: number): void {
    // Arrival order: the stale ones are at the front.
    for (const [id, s] of this.byNode) {
      if (now - s.receivedAt <= NODE_USAGE_FRESH_MS) break;
      this.byNode.delete(id);
    }
  }

  get size(): number {
    return this.byNode.size;
  }
}
