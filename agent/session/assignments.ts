// Applying the Assignments stream: COMPLETE replaces everything, INCREMENTAL
// carries changes, and applies_to must match the last results_in or the agent
// missed something and must resync (open a new stream). Pure: no I/O, no timers.
import type { Task } from '../../proto/mod';

/** The subset of AssignmentsMessage the tracker reads (the generated type fits). */
export interface AssignmentsMessageLike {
  type: 'COMPLETE' | 'INCREMENTAL';
  appliesTo: string;
  resultsIn: string;
  changes: { action: 'UPDATE' | 'REMOVE'; task: Task | null }[];
}

export type AssignmentsResult =
  | { kind: 'complete'; tasks: Task[] }
  | { kind: 'incremental'; updates: Task[]; removes: string[] }
  | { kind: 'gap'; expected: string | undefined; got: string };

export class AssignmentTracker {
  private last: string | undefined;

  /** The results_in of the last message applied; undefined before the first COMPLETE. */
  get version(): string | undefined {
    return this.last;
  }

  /** A new stream starts: only a COMPLETE message is acceptable next. */
  reset(): void {
    this.last = undefined;
  }

  apply(msg: AssignmentsMessageLike): AssignmentsResult {
    if (msg.type === 'COMPLETE') {
      const tasks: Task[] = [];
      for (const c of msg.changes) {
        if (c.action === 'UPDATE' && c.task) tasks.push(c.task);
      }
      this.last = msg.resultsIn;
      return { kind: 'complete', tasks };
    }
    if (this.last === undefined || msg.appliesTo !== this.last) {
      const expected = this.last;
      // Nothing after a gap can be trusted until the next COMPLETE.
      this.last = undefined;
      return { kind: 'gap', expected, got: msg.appliesTo };
    }
    const updates: Task[] = [];
    const removes: string[] = [];
    for (const c of msg.changes) {
      if (!c.task) continue;
      if (c.action === 'REMOVE') removes.push(c.task.id);
      else updates.push(c.task);
    }
    this.last = msg.resultsIn;
    return { kind: 'incremental', updates, removes };
  }
}
