// The lab's state file (lab.json: addresses, hosts, pids) and its files' disk.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { hostSh } from '../agent/network/sh';
import type { LabHost } from './topology';

export const LAB_DIR = process.env.CONVOY_LAB_DIR ?? '/var/lib/convoy-lab';
/** Source name of the lab's tmpfs, as /proc/mounts shows it. */
export const LAB_TMPFS = 'convoy-lab';

export interface LabState {
  dir: string;
  /** host:port of the first manager (in host 1). */
  manager: string;
  /** host:port of every manager (host i runs manager i); [manager] when there is one. */
  managers?: string[];
  /** host:port of the registry (machine side of the lab bridge). */
  registry: string;
  /** URL of the lab's NATS (manager 1's embedded one in host 1; store in <dir>/manager/nats/). */
  nats?: string;
  hosts: LabHost[];
  pids: { name: string; pid: number }[];
  /** Image pushed by --demo (or by labImage). */
  image?: string;
  /** The admin client bundle the first manager wrote (<dir>/manager-1/admin): what the CLI and tests use. */
  tlsDir?: string;
  /** The per-user client config file lab up wrote (removed by lab down), if it wrote one. */
  clientConfig?: string;
}

export const stateFile = (dir: string): string => path.join(dir, 'lab.json');

export function saveLab(st: LabState): void {
  fs.writeFileSync(stateFile(st.dir), JSON.stringify(st, null, 2));
}

/** Reads the state of the lab in dir, if one is up. */
export function readLab(dir = LAB_DIR): LabState | undefined {
  try {
    return JSON.parse(fs.readFileSync(stateFile(dir), 'utf8')) as LabState;
  } catch {
    return undefined;
  }
}

/** Records a process the lab started, by name, in the state file. */
export function recordPid(st: LabState, name: string, pid: number): number {
  st.pids.push({ name, pid });
  saveLab(st);
  return pid;
}

function isMountPoint(dir: string): boolean {
  const target = path.resolve(dir);
  return fs
    .readFileSync('/proc/self/mounts', 'utf8')
    .split('\n')
    .some((l) => l.split(' ')[1] === target);
}

/**
 * The lab's files (etcd, registry, every host's images, containers and logs) live on a tmpfs of
 * their own: the hosts' disks of a throwaway cluster. Besides going with the lab at once, it keeps
 * the lab off this machine's root filesystem, an ext4 without a journal, whose inode allocator
 * skips every inode deleted in the last minutes and reads each one to do so: after earlier labs
 * deleted their files, creating files there cost a hundred containers' start more CPU than
 * anything Convoy does (docs/lab.md). CONVOY_LAB_TMPFS=0 keeps the lab on the machine's disk.
 */
export async function mountLabDisk(dir: string): Promise<void> {
  fs.mkdirSync(dir, { recursive: true });
  if (process.env.CONVOY_LAB_TMPFS === '0' || isMountPoint(dir)) return;
  await hostSh.run('mount', ['-t', 'tmpfs', '-o', 'mode=0755', LAB_TMPFS, dir]);
}
