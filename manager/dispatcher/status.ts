// UpdateTaskStatus: a node's observed task states, applied only forward and
// only to the node's own tasks (proto/dispatcher.proto), committed in one
// batch; a write that lost a compare-and-swap race is retried alone.
import { isForward, type Task } from '../../proto/mod';
import type { StateCache } from '../state/cache';
import type { Store, Write } from '../store/store';

/** Rounds of one status batch: the first from the cache, the retries of conflicting tasks from the store. */
const STATUS_ROUNDS = 4;

export async function applyStatusUpdates(
  store: Store,
  cache: StateCache,
  nodeId: string,
  updates: { taskId: string; status: Task['status'] }[],
): Promise<{ applied: number; ignored: number }> {
  // The newest status per task wins within one batch.
  const latest = new Map<string, NonNullable<Task['status']>>();
  for (const u of updates) if (u.status) latest.set(u.taskId, u.status);
  let pending = [...latest.keys()];
  let applied = 0;
  for (let round = 0; round < STATUS_ROUNDS && pending.length; round++) {
    // First from the cache; after a lost race, from the store.
    const tasks = round === 0 ? pending.map((id) => cache.tasks.get(id)) : await Promise.all(pending.map((id) => store.get<Task>('tasks', id)));
    const writes: Write[] = [];
    pending.forEach((id, i) => {
      const t = tasks[i];
      const st = latest.get(id)!;
      if (!t || t.nodeId !== nodeId) return;
      if (!isForward(t.status?.state ?? 'NEW', st.state)) return;
      writes.push({ op: 'update', kind: 'tasks', obj: { ...t, status: st } });
    });
    if (!writes.length) break;
    const r = await store.batch(writes);
    applied += r.committed;
    // Retry the conflicts alone (re-read, checked again). When the store refused a chunk
    // outright, which writes landed is unknown: re-read them all (rare).
    pending = r.committed + r.conflicts.length < writes.length ? writes.map((w) => w.obj.id) : r.conflicts.map((w) => w.obj.id);
  }
  return { applied, ignored: latest.size - applied };
}
