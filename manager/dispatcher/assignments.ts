// Assignment streams: a COMPLETE set first, then INCREMENTAL changes, each
// naming the version it applies to (the results_in of the message before),
// computed from the StateCache per node.
//
// Secrets and configs ride in the same stream, as swarmkit's dispatcher
// sends them: a node gets one (opened from its sealed form) only while one
// of its assigned tasks refers to it, in the message that brings the first
// such task, ahead of it; a rotation sends the new version; REMOVE follows
// when its last such task is gone. Values are never logged.
import { isTerminal, type FilePayload, type Task } from '../../proto/mod';
import { CONFIGS, SECRETS, type FileNoun, type FileObject } from '../controlapi/files';
import type { StateCache } from '../state/cache';

export interface AssignmentChange {
  action: 'UPDATE' | 'REMOVE';
  task: Task | null;
  secret?: FilePayload | null;
  config?: FilePayload | null;
}

/** Opens a stored secret's or config's value; undefined when it cannot (the dispatcher logs why). */
export type FileOpener = (noun: FileNoun, o: FileObject) => Buffer | undefined;

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
  /** "secret:<id>" / "config:<id>" → the version the agent holds. */
  private readonly files = new Map<string, number>();
  private version = 0;

  constructor(
    readonly nodeId: string,
    private readonly open: FileOpener = () => undefined,
  ) {}

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
    const fileChanges = this.diffFiles(cache, now);
    changes.push(...fileChanges.updates);
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
    changes.push(...fileChanges.removes);
    return changes;
  }

  /** Secrets and configs the node's live tasks refer to, against what it holds. */
  private diffFiles(cache: StateCache, tasks: Map<string, Task>): { updates: AssignmentChange[]; removes: AssignmentChange[] } {
    const want = new Map<string, { noun: FileNoun; id: string }>();
    for (const t of tasks.values()) {
      if (t.desiredState !== 'RUNNING' || isTerminal(t.status?.state ?? 'NEW')) continue;
      for (const noun of [SECRETS, CONFIGS]) for (const r of noun.refs(t.spec?.container)) want.set(`${noun.kind}:${r.id}`, { noun, id: r.id });
    }
    const updates: AssignmentChange[] = [];
    const removes: AssignmentChange[] = [];
    for (const [k, { noun, id }] of want) {
      const o = noun.objects(cache).get(id);
      if (!o || this.files.get(k) === Number(o.version)) continue;
      const data = this.open(noun, o);
      if (!data) continue;
      const payload: FilePayload = { id, name: o.spec?.name ?? '', version: Number(o.version), data };
      updates.push({ action: 'UPDATE', task: null, [noun.kind]: payload });
      this.files.set(k, Number(o.version));
    }
    for (const k of [...this.files.keys()]) {
      if (want.has(k)) continue;
      const [kind, id] = [k.slice(0, k.indexOf(':')), k.slice(k.indexOf(':') + 1)];
      removes.push({ action: 'REMOVE', task: null, [kind]: { id, name: '', version: 0, data: Buffer.alloc(0) } });
      this.files.delete(k);
    }
    return { updates, removes };
  }
}
