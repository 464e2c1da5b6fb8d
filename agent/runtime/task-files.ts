// A task's secrets and configs on its node: one tmpfs per task, mounted by
// the agent at <root>/<task id> (default /run/convoy/files; 0700, nosuid,
// nodev, noexec, sized to its files), each value written there as a file
// with the reference's mode, uid and gid, and bind-mounted read-only into
// the container at its target. Nothing touches a disk: not the state dir,
// not state.json (which records only the tmpfs paths), not a log line (only
// names). The tmpfs is unmounted when the task is removed, so a value
// leaves the node with its last task; the agent holds the values in memory
// (agent/files/values.ts) only while the manager says a task needs them.
//
// Host file names are the reference's index, never a user-given name.
import { execFile } from 'node:child_process';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { promisify } from 'node:util';
import type { FileReference, Task } from '../../proto/mod';
import { ExecutorError } from '../executor';
import type { FileKind, FileSource } from '../files/values';
import type { MountSpec } from './runtime';

const execFileP = promisify(execFile);

export const DEFAULT_TASK_FILES_ROOT = '/run/convoy/files';
/** Room in a task's tmpfs beyond its files' sizes (inodes, rounding to pages). */
const TMPFS_SLACK_BYTES = 64 * 1024;
/** As the manager's default (manager/spec/files.ts), for a reference that carries no mode. */
const DEFAULT_MODE = 0o444;

/** Task ids are the manager's ids: nothing that could leave the root. */
const TASK_ID_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

export function taskFileRefs(task: Task): { kind: FileKind; ref: FileReference }[] {
  const c = task.spec?.container;
  return [...(c?.secrets ?? []).map((ref) => ({ kind: 'secret' as const, ref })), ...(c?.configs ?? []).map((ref) => ({ kind: 'config' as const, ref }))];
}

export class TaskFiles {
  constructor(
    private readonly source: FileSource | undefined,
    readonly root: string = DEFAULT_TASK_FILES_ROOT,
  ) {}

  dirOf(taskId: string): string {
    if (!TASK_ID_RE.test(taskId)) throw new ExecutorError(`invalid task id ${JSON.stringify(taskId)}`, false);
    return path.join(this.root, taskId);
  }

  /**
   * Mounts the task's tmpfs and writes its files; returns the bind mounts
   * for the container (none when the task uses no secret or config).
   * ExecutorError naming the object when a value is not on this node.
   */
  async setup(task: Task): Promise<MountSpec[]> {
    const refs = taskFileRefs(task);
    if (!refs.length) return [];
    const values = refs.map(({ kind, ref }) => {
      const v = this.source?.get(kind, ref.id);
      if (!v) throw new ExecutorError(`${kind} "${ref.name}" (${ref.id}) was not delivered to this node`, true);
      return v;
    });
    const dir = this.dirOf(task.id);
    await fsp.mkdir(this.root, { recursive: true, mode: 0o700 });
    await fsp.mkdir(dir, { recursive: true, mode: 0o700 });
    if (!(await isMountPoint(dir))) {
      const size = values.reduce((n, v) => n + Math.ceil(v.data.length / 4096) * 4096 + 4096, TMPFS_SLACK_BYTES);
      try {
        await execFileP('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0700,nosuid,nodev,noexec`, 'tmpfs', dir]);
      } catch (e) {
        await fsp.rmdir(dir).catch(() => undefined);
        throw new ExecutorError(`task ${task.id}: cannot mount the tmpfs for its secrets and configs: ${(e as Error).message.split('\n')[0]}`, true, e);
      }
    }
    const mounts: MountSpec[] = [];
    try {
      for (let i = 0; i < refs.length; i++) {
        const { kind, ref } = refs[i];
        const f = path.join(dir, `${kind}-${i}`);
        const mode = ref.mode || DEFAULT_MODE;
        await fsp.writeFile(f, values[i].data, { mode: 0o600, flag: 'w' });
        await fsp.chown(f, ref.uid, ref.gid);
        await fsp.chmod(f, mode & 0o777);
        mounts.push({ type: 'bind', source: f, target: ref.target, readOnly: true, agentOwned: true });
      }
    } catch (e) {
      await this.teardown(task.id).catch(() => undefined);
      throw new ExecutorError(`task ${task.id}: cannot write its secrets and configs: ${(e as Error).message}`, true, e);
    }
    return mounts;
  }

  /** Unmounts and removes the task's tmpfs (idempotent). */
  async teardown(taskId: string): Promise<void> {
    const dir = this.dirOf(taskId);
    if (await isMountPoint(dir)) await execFileP('umount', [dir]).catch(() => execFileP('umount', ['-l', dir]));
    await fsp.rmdir(dir).catch(() => undefined);
  }
}

async function isMountPoint(dir: string): Promise<boolean> {
  const info = await fsp.readFile('/proc/self/mountinfo', 'utf8').catch(() => '');
  // Field 5 is the mount point, with spaces and the like octal-escaped.
  return info.split('\n').some((l) => l.split(' ')[4] === dir);
}
