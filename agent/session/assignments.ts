// Applying the Assignments stream: COMPLETE replaces everything, INCREMENTAL
// carries changes, and applies_to must match the last results_in or the agent
// missed something and must resync (open a new stream). Pure: no I/O, no timers.
//
// Secrets and configs come in the same messages (a change carries a task,
// a secret or a config); they are passed on in `files`, present only when
// the message had any, for the agent's in-memory FileValues.
import type { FilePayload, Task } from '../../proto/mod';

/** The subset of AssignmentsMessage the tracker reads (the generated type fits). */
export interface AssignmentsMessageLike {
  type: 'COMPLETE' | 'INCREMENTAL';
  appliesTo: string;
  resultsIn: string;
  changes: { action: 'UPDATE' | 'REMOVE'; task: Task | null; secret?: FilePayload | null; config?: FilePayload | null }[];
}

export type FileKind = 'secret' | 'config';
export interface FileItem {
  kind: FileKind;
  id: string;
  name: string;
  version: number;
  data: Buffer;
}
/** Secrets and configs of one message: what to hold (all of them, for COMPLETE) and what to drop. */
export interface FileChanges {
  updates: FileItem[];
  removes: { kind: FileKind; id: string }[];
}

export type AssignmentsResult =
  | { kind: 'complete'; tasks: Task[]; files?: FileChanges }
  | { kind: 'incremental'; updates: Task[]; removes: string[]; files?: FileChanges }
  | { kind: 'gap'; expected: string | undefined; got: string };

function fileChanges(msg: AssignmentsMessageLike): FileChanges | undefined {
  let out: FileChanges | undefined;
  for (const c of msg.changes) {
    for (const kind of ['secret', 'config'] as const) {
      const p = c[kind];
      if (!p?.id) continue;
      out ??= { updates: [], removes: [] };
      if (c.action === 'REMOVE') out.removes.push({ kind, id: p.id });
      else out.updates.push({ kind, id: p.id, name: p.name, version: Number(p.version), data: Buffer.from(p.data ?? []) });
    }
  }
  return out;
}

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
      const files = fileChanges(msg);
      return files ? { kind: 'complete', tasks, files } : { kind: 'complete', tasks };
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
    const files = fileChanges(msg);
    return files ? { kind: 'incremental', updates, removes, files } : { kind: 'incremental', updates, removes };
  }
}
