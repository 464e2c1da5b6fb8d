// What happens to the lab's hosts as a whole: one "killed" (power loss),
// their containers removed, and their namespaces and bridge taken away.
import * as fs from 'node:fs';
import { ContainerExecutor } from '../agent/runtime/executor';
import { TASK_NETNS_PREFIX } from '../agent/network/attacher';
import { hostSh, netnsSh } from '../agent/network/sh';
import { alive } from './procs';
import type { LabState } from './state';
import { LAB_BRIDGE, LAB_NETNS_PREFIX, labManagerName } from './topology';
import { removeUnderlay } from './underlay';
import { labNatsPids } from './services';

/** "Kills" host i: SIGKILL to its agent and its link down, as a host losing power; its containers are stopped. */
export async function killLabHost(st: LabState, index: number): Promise<void> {
  const h = st.hosts.find((x) => x.index === index);
  if (!h) throw new Error(`lab: no host ${index}`);
  await hostSh.run('ip', ['-n', h.netns, 'link', 'set', 'eth0', 'down']);
  if (h.agentPid && alive(h.agentPid)) process.kill(h.agentPid, 'SIGKILL');
  // A manager on that host dies with it.
  const mgr = st.pids.find((p) => p.name === labManagerName(index));
  if (mgr && alive(mgr.pid)) process.kill(mgr.pid, 'SIGKILL');
  // Host 1 also runs the lab's NATS (manager 1's child, which a SIGKILL leaves running).
  if (index === 1) for (const pid of labNatsPids(st)) process.kill(pid, 'SIGKILL');
  await removeContainers(h.agentDir);
}

/** Stops (no grace period) and removes every container of the agent whose state is in agentDir; returns their task ids. */
export async function removeContainers(agentDir: string): Promise<string[]> {
  if (!fs.existsSync(agentDir)) return [];
  const ex = new ContainerExecutor({ stateDir: agentDir });
  const ids: string[] = [];
  try {
    const list = await ex.list();
    await Promise.all(
      list.map(async (c) => {
        ids.push(c.taskId);
        await ex.stop(c.taskId, 0).catch(() => undefined);
        await ex.remove(c.taskId).catch(() => undefined);
      }),
    );
  } finally {
    await ex.close();
  }
  return ids;
}

/** Task namespaces wired to a lab host (peers of its cvy* veths), found through the host's netns ids. */
async function taskNamespacesOf(hostNetns: string): Promise<string[]> {
  const sh = netnsSh(hostNetns);
  const ids = await sh.run('ip', ['-j', 'netns', 'list-id']).catch(() => '[]');
  return (ids.trim() ? (JSON.parse(ids) as { nsid: number; name?: string }[]) : []).map((x) => x.name ?? '').filter((x) => x.startsWith(TASK_NETNS_PREFIX));
}

/** Removes the lab's namespaces (hosts and the tasks wired to them) and its bridge; idempotent. */
export async function removeLabNetwork(extraTaskNetns: string[] = []): Promise<void> {
  const list = await hostSh.run('ip', ['-j', 'netns', 'list']).catch(() => '');
  const hostsNs = (list.trim() ? (JSON.parse(list) as { name: string }[]) : []).map((x) => x.name).filter((x) => x.startsWith(LAB_NETNS_PREFIX));
  const tasks = new Set(extraTaskNetns);
  for (const h of hostsNs) for (const t of await taskNamespacesOf(h)) tasks.add(t);
  if (tasks.size) await hostSh.run('ip', ['-force', '-batch', '-'], [...tasks].map((t) => `netns del ${t}`).join('\n') + '\n').catch(() => undefined);
  await removeUnderlay(LAB_BRIDGE, LAB_NETNS_PREFIX);
}
