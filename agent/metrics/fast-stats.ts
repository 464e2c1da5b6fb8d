// A faster path for the container runtime's per-task usage, for scrapes of
// agents with many tasks. The runtime's stats() reads the container's state
// file and ~5 cgroup/procfs files per task asynchronously, each through
// libuv's 4-thread pool: ~0.5 ms per task on a busy 2-core machine, 50 ms for
// 100 tasks. Here the state file is read once per task (pid and cgroup do not
// change while it runs) and the same cgroup and procfs files are read
// synchronously: they are kernel pseudo-files, answered from memory without
// ever blocking on a disk, so a sync read costs a few microseconds. Anything
// unexpected (no state yet, a cgroup layout not recognised) falls back to
// executor.stats(); the values are the same files the runtime reads.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { TaskStats } from '../executor';
import type { ContainerExecutor } from '../runtime/executor';
import { alive } from '../runtime/runtime';

/** Where one task's numbers live, resolved once. */
interface Files {
  pid?: number;
  pidStart?: number;
  version: 1 | 2;
  /** v1: cpuacct.usage (ns); v2: cpu.stat (usage_usec). */
  cpu?: string;
  /** v1: memory.usage_in_bytes; v2: memory.current. */
  mem?: string;
  /** v1: memory.limit_in_bytes; v2: memory.max. */
  memLimit?: string;
  pids?: string;
}

/** cgroup v1 reports "no limit" as a huge page-rounded number. */
const UNLIMITED_V1 = 2 ** 60;

function read(p: string | undefined): string | undefined {
  if (!p) return undefined;
  try {
    return fs.readFileSync(p, 'utf8');
  } catch {
    return undefined;
  }
}

function num(s: string | undefined): number {
  const n = s === undefined ? NaN : Number(s.trim());
  return Number.isFinite(n) ? n : 0;
}

export class FastStats {
  private readonly files = new Map<string, Files>();

  constructor(private readonly ex: ContainerExecutor) {}

  private async resolve(taskId: string): Promise<Files | undefined> {
    const have = this.files.get(taskId);
    if (have) return have;
    const st = await this.ex.runtime.readState(taskId);
    if (!st?.pid || st.status !== 'running') return undefined; // not started yet: ask again next time
    const driver = this.ex.runtime.cgroups;
    const dirs = driver.paths(st.cgroup);
    const find = (file: string) => dirs.map((d) => path.join(d, file)).find((p) => fs.existsSync(p));
    const f: Files =
      driver.version === 2
        ? { version: 2, cpu: find('cpu.stat'), mem: find('memory.current'), memLimit: find('memory.max'), pids: find('pids.current') }
        : { version: 1, cpu: find('cpuacct.usage'), mem: find('memory.usage_in_bytes'), memLimit: find('memory.limit_in_bytes'), pids: find('pids.current') };
    f.pid = st.pid;
    f.pidStart = st.pidStart;
    if (!f.cpu || !f.mem) return undefined;
    this.files.set(taskId, f);
    return f;
  }

  /** The task's usage, or undefined when the fast path does not apply (the caller falls back). */
  async stats(taskId: string): Promise<TaskStats | undefined> {
    const f = await this.resolve(taskId);
    if (!f) return undefined;
    if (f.pid && !alive(f.pid, f.pidStart)) {
      this.files.delete(taskId);
      return undefined;
    }
    const cpuText = read(f.cpu);
    if (cpuText === undefined) {
      this.files.delete(taskId);
      return undefined;
    }
    let cpuSeconds: number;
    let limit: number;
    if (f.version === 2) {
      const m = /^usage_usec (\d+)$/m.exec(cpuText);
      cpuSeconds = m ? Number(m[1]) / 1e6 : 0;
      const max = (read(f.memLimit) ?? 'max').trim();
      limit = max === 'max' ? 0 : num(max);
    } else {
      cpuSeconds = num(cpuText) / 1e9;
      limit = num(read(f.memLimit));
      if (limit >= UNLIMITED_V1) limit = 0;
    }
    let rx = 0;
    let tx = 0;
    const dev = f.pid ? read(`/proc/${f.pid}/net/dev`) ?? '' : '';
    for (const line of dev.split('\n').slice(2)) {
      const i = line.indexOf(':');
      if (i < 0 || line.slice(0, i).trim() === 'lo') continue;
      const v = line.slice(i + 1).trim().split(/\s+/);
      rx += Number(v[0]) || 0;
      tx += Number(v[8]) || 0;
    }
    return { timestampMs: Date.now(), cpuSeconds, memoryBytes: num(read(f.mem)), memoryLimitBytes: limit, pids: num(read(f.pids)), netRxBytes: rx, netTxBytes: tx };
  }

  /** Drops what is cached for tasks no longer held. */
  retain(taskIds: Set<string>): void {
    for (const id of this.files.keys()) if (!taskIds.has(id)) this.files.delete(id);
  }
}
