// Assignment streams: a COMPLETE set first, then INCREMENTAL changes, each
// naming the version it applies to (the results_in of the message before),
// computed from the StateCache per node.
import { isTerminal, type Task } from '../../proto/mod';
import type { StateCache } from '../state/cache';

export interface AssignmentChange {
  action: 'UPDATE' | 'REMOVE';
  task: Task;
}

export interface AssignmentsMessage {
  type: 'COMPLETE' | 'INCREMENTAL';
  appliesTo: string;
  resultsIn: string;
  changes: AssignmentChange[];
}

/** What the agent of a node must know of: placed (ASSIGNED or later) and not finished with. */
export function visibleToAgent(t: Task): boolean {
  const st = t.status?.state ?? 'NEW';
  if (st === 'NEW' || st === 'PENDING') return false;
  return t.desiredState === 'RUNNING' || !isTerminal(st);
}

/** One Assignments stream's view: what its agent was sent, and the version it is at. */
export class AssignmentView {
  /** task id → signature of what the agent was last sent. */
  private readonly sent = new Map<string, string>();
  private version = 0;

  constructor(readonly nodeId: string) {}

  /** The first message: the whole set. */
  complete(cache: StateCache): AssignmentsMessage {
    const changes = this.diff(cache).filter((c) => c.action === 'UPDATE');
    this.version = 1;
    return { type: 'COMPLETE', appliesTo: '', resultsIn: 'v1', changes };
  }

  /** The changes since the last message, or undefined when there are none. */
  incremental(cache: StateCache): AssignmentsMessage | undefined {
    const changes = this.diff(cache);
    if (!changes.length) return undefined;
    const from = `v${this.version}`;
    this.version++;
    return { type: 'INCREMENTAL', appliesTo: from, resultsIn: `v${this.version}`, changes };
  }

  private diff(cache: StateCache): AssignmentChange[] {
    const now = new Map<string, Task>();
    for (const t of cache.tasksOnNode(this.nodeId)) if (visibleToAgent(t)) now.set(t.id, t);
    const changes: AssignmentChange[] = [];
    for (const [tid, t] of now) {
      const sig = `${t.desiredState}/${t.specVersion}`;
      if (this.sent.get(tid) !== sig) {
        changes.push({ action: 'UPDATE', task: t });
        this.sent.set(tid, sig);
      }
    }
    for (const tid of [...this.sent.keys()]) {
      if (now.has(tid)) continue;
      changes.push({ action: 'REMOVE', task: cache.tasks.get(tid) ?? ({ id: tid } as Task) });
      this.sent.delete(tid);
    }
    return changes;
  }
}
