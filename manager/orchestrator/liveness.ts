// Node liveness, the first step of a reconcile: a node is up while the
// lease-bound key of its session lives (the cache's `alive` set, from
// /convoy/alive/). A node whose key is gone is marked down only once its
// session is older than the grace period: a new session writes the node
// first and its key a moment later, and must not be marked down in between.
import type { Node } from '../../proto/mod';
import type { Working } from './working';

/** The grace period a new session gets before a missing lease key means "down". */
export const NEW_SESSION_GRACE_MS = 1500;

/** Marks nodes ready or down from `alive`; returns the ids of the nodes it changed. */
export function markLiveness(w: Working, alive: ReadonlySet<string>, graceMs = NEW_SESSION_GRACE_MS): string[] {
  const changed: string[] = [];
  for (const n of w.nodes.values()) {
    const up = alive.has(n.id);
    const want = up ? 'NODE_READY' : 'NODE_DOWN';
    if (n.status?.state === want) continue;
    const since = n.status?.updatedAt ?? 0;
    if (!up && w.now - since < graceMs) {
      w.wake(since + graceMs);
      continue;
    }
    const next: Node = { ...n, status: { ...(n.status ?? { message: '', addr: '', updatedAt: 0 }), state: want, message: up ? '' : 'heartbeat failure', updatedAt: w.now } };
    w.updateNode(next);
    changed.push(n.id);
  }
  return changed;
}
