// The latest usage sample of every task, as the agents publish them on
// convoy.stats.<nodeId>. Input comes from the network: anything malformed is
// ignored sample by sample.
import type { StatsMessage, TaskStatsSample } from '../../proto/events';
import { STALE_MS, type TaskUsage } from './autoscale';

/** Samples older than this are forgotten (well past STALE_MS, which already ignores them). */
export const FORGET_MS = 4 * STALE_MS;

function isSample(x: unknown): x is TaskStatsSample {
  const s = x as Partial<TaskStatsSample> | null;
  return !!s && typeof s.taskId === 'string' && Number.isFinite(s.cpuCores) && Number.isFinite(s.memoryBytes) && (s.cpuCores as number) >= 0 && (s.memoryBytes as number) >= 0;
}

export class StatsTable {
  private readonly byTask = new Map<string, TaskUsage>();

  /** Takes one convoy.stats message; returns how many samples it accepted. */
  ingest(msg: unknown, now: number): number {
    const m = msg as Partial<StatsMessage> | null;
    if (!m || !Array.isArray(m.tasks)) return 0;
    let n = 0;
    for (const t of m.tasks) {
      if (!isSample(t)) continue;
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
