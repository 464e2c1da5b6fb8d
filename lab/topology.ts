// Who is where in the lab: hosts are network namespaces `convoy-lab-h<i>` at
// 10.41.0.(10+i), joined by the bridge `convoy-lab0` (10.41.0.1/24, the
// machine's side, where the registry, NATS and the shared etcd listen).
// Host i runs agent i and, for i ≤ managers, manager i.
import * as path from 'node:path';
import { AGENT_METRICS_PORT, MANAGER_METRICS_PORT, MANAGER_PORT } from '../proto/defaults';

export const LAB_BRIDGE = 'convoy-lab0';
export const LAB_NETNS_PREFIX = 'convoy-lab-h';
export const LAB_CIDR = '10.41.0.0/24';
export const LAB_GATEWAY = '10.41.0.1';
export const LAB_REGISTRY_PORT = 5000;
/** host:port of the lab's registry. */
export const LAB_REGISTRY = `${LAB_GATEWAY}:${LAB_REGISTRY_PORT}`;
export const LAB_NATS_PORT = 4222;
/** The lab's etcd (machine side) when it runs more than one manager. */
export const LAB_ETCD_PORT = 2379;
export { MANAGER_PORT, MANAGER_METRICS_PORT, AGENT_METRICS_PORT };
/** Most hosts a lab has: addresses 10.41.0.11 to .210 stay inside LAB_CIDR. */
export const LAB_MAX_HOSTS = 200;

export interface LabHost {
  index: number;
  netns: string;
  addr: string;
  agentDir: string;
  agentPid?: number;
}

/** Address of lab host i (1-based). */
export function labHostAddr(i: number): string {
  return `10.41.0.${10 + i}`;
}

/** The hosts of a lab of n hosts whose files are in dir. */
export function labHosts(n: number, dir: string): LabHost[] {
  return Array.from({ length: n }, (_, k) => {
    const i = k + 1;
    return { index: i, netns: `${LAB_NETNS_PREFIX}${i}`, addr: labHostAddr(i), agentDir: path.join(dir, `agent-h${i}`) };
  });
}

/** The hostname agent i reports. */
export function labHostname(i: number): string {
  return `lab-h${i}`;
}

/** host:port of manager i (1-based; it runs in host i). */
export function labManagerAddr(i: number): string {
  return `${labHostAddr(i)}:${MANAGER_PORT}`;
}

/** Process name (state file, log file, data dir) of manager i: "manager" for the first, "manager-h<i>" after. */
export function labManagerName(i: number): string {
  return i === 1 ? 'manager' : `manager-h${i}`;
}

/** Which manager (1-based) a process name of labManagerName's is. */
export function labManagerIndex(name: string): number {
  return name === 'manager' ? 1 : Number(name.slice('manager-h'.length));
}

/** Process name of agent i. */
export function labAgentName(i: number): string {
  return `agent-h${i}`;
}
