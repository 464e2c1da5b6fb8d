// The secrets and configs this node holds: in memory only, never on disk
// (not in the state dir, not in state.json, not in a log line). The
// manager sends a value only while a task of this node uses it and tells
// the agent to drop it when the last such task is gone; a COMPLETE
// assignment set replaces the whole set. Dropped values are zeroed.
import type { FileChanges, FileItem, FileKind } from '../session/assignments';

export type { FileKind };

export interface FileValue {
  name: string;
  version: number;
  data: Buffer;
}

/** What the executor asks for when it prepares a task. */
export interface FileSource {
  get(kind: FileKind, id: string): FileValue | undefined;
}

export class FileValues implements FileSource {
  private readonly values = new Map<string, FileValue>();

  get(kind: FileKind, id: string): FileValue | undefined {
    return this.values.get(`${kind}:${id}`);
  }

  /** Ids held now, per kind (tests). */
  ids(kind: FileKind): string[] {
    return [...this.values.keys()].filter((k) => k.startsWith(`${kind}:`)).map((k) => k.slice(kind.length + 1));
  }

  get size(): number {
    return this.values.size;
  }

  /** A COMPLETE set: exactly these values from now on. */
  replace(items: readonly FileItem[]): void {
    const keep = new Set(items.map((i) => `${i.kind}:${i.id}`));
    for (const [k, v] of this.values) if (!keep.has(k)) this.drop(k, v);
    for (const i of items) this.put(i);
  }

  apply(c: FileChanges): void {
    for (const i of c.updates) this.put(i);
    for (const r of c.removes) {
      const k = `${r.kind}:${r.id}`;
      const v = this.values.get(k);
      if (v) this.drop(k, v);
    }
  }

  clear(): void {
    for (const [k, v] of this.values) this.drop(k, v);
  }

  private put(i: FileItem): void {
    const k = `${i.kind}:${i.id}`;
    const old = this.values.get(k);
    if (old && old.data !== i.data) old.data.fill(0);
    this.values.set(k, { name: i.name, version: i.version, data: i.data });
  }

  private drop(k: string, v: FileValue): void {
    v.data.fill(0);
    this.values.delete(k);
  }
}
