// The latest usage sample of every task, as the agents publish them on
// convoy.stats.<nodeId>. Input comes from the network: anything malformed is
// ignored sample by sample, and a sample is taken only from the node that
// runs the task: the subject's node id (NATS lets a node publish on its own
// only, proto/nats-auth.ts) must be the message's and the task's node in the
// manager's state. The rest is forged or stale and counted, by reason.
import type { StatsMessage, TaskStatsSample } from '../../proto/events';
import { STALE_MS, type TaskUsage } from './autoscale';

/** Samples older than this are forgotten (well past STALE_MS, which already ignores them). */
export const FORGET_MS = 4 * STALE_MS;

function isSample(x: unknown): x is TaskStatsSample {
  const s = x as Partial<TaskStatsSample> | null;
  return !!s && typeof s.taskId === 'string' && Number.isFinite(s.cpuCores) && Number.isFinite(s.memoryBytes) && (s.cpuCores as number) >= 0 && (s.memoryBytes as number) >= 0;
}

/** Why a stats sample was dropped (convoy_autoscale_stats_rejected_total{reason}). */
export type StatsRejection = 'node-mismatch' | 'foreign-task' | 'unknown-task';

export class StatsTable {
  private readonly byTask = new Map<string, TaskUsage>();
  /** Samples dropped because they did not come from the task's node. */
  readonly rejected: Record<StatsRejection, number> = { 'node-mismatch': 0, 'foreign-task': 0, 'unknown-task': 0 };

  /**
   * Takes one message that came on convoy.stats.<subjectNode>; returns how
   * many samples it accepted. `nodeOfTask`: the node a task runs on in the
   * manager's state (undefined: no such task).
   */
  ingest(msg: unknown, now: number, subjectNode: string, nodeOfTask: (taskId: string) => string | undefined): number {
    const m = msg as Partial<StatsMessage> | null;
    if (!m || !Array.isArray(m.tasks)) return 0;
    if (m.nodeId !== subjectNode) {
      this.rejected['node-mismatch'] += m.tasks.length;
      return 0;
    }
    let n = 0;
    for (const t of m.tasks) {
      if (!isSample(t)) continue;
      const node = nodeOfTask(t.taskId);
      if (node !== subjectNode) {
        this.rejected[node === undefined ? 'unknown-task' : 'foreign-task']++;
        continue;
      }
      this.byTask.set(t.taskId, { receivedAt: now, cpuCores: t.cpuCores, memoryBytes: t.memoryBytes });
      n++;
    }
    return n;
  }

  get(taskId: string): TaskUsage | undefined {
    return this.byTask.get(taskId);
  }

  prune(now: number): void {
    for (const [id, u] of this.byTask) if (now - u.receivedAt > FORGET_MS) this.byTask.delete(id);
  }

  clear(): void {
    this.byTask.clear();
  }

  get size(): number {
    return this.byTask.size;
  }
}
