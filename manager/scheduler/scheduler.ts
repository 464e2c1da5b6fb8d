// The scheduler (swarmkit scheduler/, nomad scheduler/feasible): places
// PENDING tasks on nodes in two steps.
//
// 1. Feasibility, a filter pipeline. Static filters depend only on the node
//    and the task's spec, so they run once per group of identical tasks
//    (same service, same spec version): availability (ready + active; pause
//    and drain take no new tasks), constraints, platform. Dynamic filters
//    depend on what this tick already placed and run when a node is about to
//    be chosen: memory, CPU (reservations against what is left), max replicas
//    per node, host-mode ports, and a free address in the node's subnet.
//    Dynamic failures only get worse within a group (counters only grow), so
//    a node that fails one is dropped for the rest of the group.
// 2. Ranking, by the service's placement strategy (a heap keyed on it, so a
//    group of T tasks over N nodes costs O(N + T log N)):
//    - spread (the default, Swarm's): fewest tasks of this service on the
//      node, then fewest tasks overall;
//    - binpack (Nomad's ScoreFitBinPack): the highest fit score, i.e. the
//      least free CPU and memory once the task is on the node, then the most
//      tasks. Placing a task only raises the chosen node's score, so it keeps
//      the top until the memory or CPU filter drops it: one node fills
//      before the next is started. With placement preferences the nodes form a tree
//    over the labels' values ("node.labels.zone", then "node.labels.rack"):
//    each task goes down the branch holding the fewest tasks of the service,
//    then takes the best node of that leaf.
// A task that fits nowhere keeps PENDING with the pipeline's explanation
// ("no suitable node: insufficient memory on 3 nodes, constraint mismatch on
// 2 nodes"); the message is written only when it changes. It is placed on
// the first tick a node that fits shows up.
import type { Node, Platform, Service, Task } from '../../proto/mod';
import { taskAddressCapacity } from '../allocator/ipam';
import { hasEnded, holdsNode, isStopping, nextStatus, slotKey, transition } from '../orchestrator/task';
import { orderOf } from '../orchestrator/slots';
import { drain, type Working } from '../orchestrator/working';
import { constraintMatches, nodeValue, constraintsOf, platformMatches, type Constraint } from './constraint';
import { IndexHeap } from './heap';

/** One node as the scheduler sees it this tick. Counters grow as tasks are placed. */
export interface NodeInfo {
  idx: number;
  node: Node;
  available: boolean;
  freeCpu: number;
  freeMem: number;
  /** What the node has in all (its description), for binpack's fractions. */
  totalCpu: number;
  totalMem: number;
  /** Live (desired running) tasks on the node, all services. */
  tasks: number;
  perService: Map<string, number>;
  /** "tcp/8080": host-mode ports taken on the node. */
  hostPorts: Set<string>;
  freeAddrs: number;
}

/** What a task asks of a node. */
export interface Requirements {
  serviceId: string;
  cpu: number;
  mem: number;
  maxPerNode: number;
  hostPorts: string[];
  addrs: number;
  constraints: Constraint[];
  platforms: Platform[];
  preferences: string[];
  strategy: 'SPREAD' | 'BINPACK';
}

export type FilterName = 'availability' | 'constraint' | 'platform' | 'memory' | 'cpu' | 'max-replicas' | 'host-port' | 'address';

export interface Filter {
  name: FilterName;
  /** Static filters run once per group of identical tasks. */
  static: boolean;
  /** false when the filter has nothing to check for these requirements (swarmkit's SetTask). */
  applies(r: Requirements): boolean;
  check(n: NodeInfo, r: Requirements): boolean;
  /** "insufficient memory on 3 nodes" */
  explain(nodes: number): string;
}

const plural = (n: number) => `${n} node${n === 1 ? '' : 's'}`;

/** The pipeline, in order; a node is counted against the first filter it fails. */
export const FILTERS: readonly Filter[] = [
  {
    name: 'availability',
    static: true,
    applies: () => true,
    check: (n) => n.available,
    explain: (k) => `${plural(k)} not ready or not active`,
  },
  {
    name: 'constraint',
    static: true,
    applies: (r) => r.constraints.length > 0,
    check: (n, r) => r.constraints.every((c) => constraintMatches(c, n.node)),
    explain: (k) => `constraint mismatch on ${plural(k)}`,
  },
  {
    name: 'platform',
    static: true,
    applies: (r) => (r.platforms?.length ?? 0) > 0,
    check: (n, r) => platformMatches(r.platforms, n.node),
    explain: (k) => `unsupported platform on ${plural(k)}`,
  },
  {
    name: 'memory',
    static: false,
    applies: (r) => r.mem > 0,
    check: (n, r) => n.freeMem >= r.mem,
    explain: (k) => `insufficient memory on ${plural(k)}`,
  },
  {
    name: 'cpu',
    static: false,
    applies: (r) => r.cpu > 0,
    check: (n, r) => n.freeCpu >= r.cpu,
    explain: (k) => `insufficient cpu on ${plural(k)}`,
  },
  {
    name: 'max-replicas',
    static: false,
    applies: (r) => r.maxPerNode > 0,
    check: (n, r) => (n.perService.get(r.serviceId) ?? 0) < r.maxPerNode,
    explain: (k) => `max replicas per node reached on ${plural(k)}`,
  },
  {
    name: 'host-port',
    static: false,
    applies: (r) => r.hostPorts.length > 0,
    check: (n, r) => r.hostPorts.every((p) => !n.hostPorts.has(p)),
    explain: (k) => `host-mode port already in use on ${plural(k)}`,
  },
  {
    name: 'address',
    static: false,
    applies: (r) => r.addrs > 0,
    check: (n, r) => n.freeAddrs >= r.addrs,
    explain: (k) => `no free address in the node's subnet on ${plural(k)}`,
  },
];

const STATIC = FILTERS.filter((f) => f.static);
const DYNAMIC = FILTERS.filter((f) => !f.static);

/** How many addresses a task takes on its node: one per attached network ("default" when none is named). */
export function addressesNeeded(t: Task): number {
  return Math.max(t.networks?.length ?? 0, t.spec?.networks?.length || 1);
}

function hostPortsOf(ports: readonly { protocol: string; publishedPort: number; publishMode: string }[] | undefined): string[] {
  const out: string[] = [];
  for (const p of ports ?? []) if (p.publishMode === 'HOST' && p.publishedPort > 0) out.push(`${p.protocol || 'tcp'}/${p.publishedPort}`);
  return out;
}

export function requirementsOf(t: Task): Requirements {
  const s = t.spec;
  return {
    serviceId: t.serviceId,
    cpu: Number(s?.resources?.reservations?.nanoCpus ?? 0),
    mem: Number(s?.resources?.reservations?.memoryBytes ?? 0),
    maxPerNode: s?.placement?.maxReplicasPerNode ?? 0,
    hostPorts: hostPortsOf(s?.ports),
    addrs: addressesNeeded(t),
    constraints: constraintsOf(t.serviceId, t.specVersion, s?.placement),
    platforms: s?.placement?.platforms ?? [],
    preferences: (s?.placement?.preferences ?? []).map((p) => p.replace(/^spread=/, '').trim()).filter(Boolean),
    strategy: s?.placement?.strategy === 'BINPACK' ? 'BINPACK' : 'SPREAD',
  };
}

/** Builds the per-node counters once per tick: one pass over the tasks. */
export function nodeInfos(w: Working): NodeInfo[] {
  return drain(nodeInfoSteps(w));
}

function* nodeInfoSteps(w: Working): Generator<void, NodeInfo[]> {
  const nodes = [...w.nodes.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const infos: NodeInfo[] = nodes.map((node, idx) => ({
    idx,
    node,
    available: node.status?.state === 'NODE_READY' && (node.spec?.availability ?? 'ACTIVE') === 'ACTIVE',
    freeCpu: Number(node.description?.resources?.nanoCpus ?? 0),
    freeMem: Number(node.description?.resources?.memoryBytes ?? 0),
    totalCpu: Number(node.description?.resources?.nanoCpus ?? 0),
    totalMem: Number(node.description?.resources?.memoryBytes ?? 0),
    tasks: 0,
    perService: new Map(),
    hostPorts: new Set(),
    freeAddrs: taskAddressCapacity(node.subnet),
  }));
  const byId = new Map(infos.map((i) => [i.node.id, i]));
  for (const t of w.tasks.values()) {
    if (w.due()) yield;
    if (!holdsNode(t)) continue;
    const n = byId.get(t.nodeId);
    if (n) charge(n, t, requirementsUsage(t));
  }
  return infos;
}

function requirementsUsage(t: Task): { cpu: number; mem: number; ports: string[]; addrs: number; live: boolean } {
  const r = t.spec?.resources?.reservations;
  const ports = t.endpointPorts?.length ? hostPortsOf(t.endpointPorts) : hostPortsOf(t.spec?.ports);
  return { cpu: Number(r?.nanoCpus ?? 0), mem: Number(r?.memoryBytes ?? 0), ports, addrs: addressesNeeded(t), live: t.desiredState === 'RUNNING' };
}

function charge(n: NodeInfo, t: { serviceId: string }, u: { cpu: number; mem: number; ports: string[]; addrs: number; live: boolean }): void {
  n.freeCpu -= u.cpu;
  n.freeMem -= u.mem;
  n.freeAddrs -= u.addrs;
  for (const p of u.ports) n.hostPorts.add(p);
  if (u.live) {
    n.tasks++;
    n.perService.set(t.serviceId, (n.perService.get(t.serviceId) ?? 0) + 1);
  }
}

/**
 * Nomad's ScoreFitBinPack (scheduler/rank.go, structs/funcs.go): with the
 * task on the node, the free fractions of CPU and memory f_cpu, f_mem give
 * 20 - (10^f_cpu + 10^f_mem), from 0 (an empty node) to 18 (a full one).
 * Powers of ten make a node short of one resource rank as nearly full, so a
 * service that only reserves memory still packs. A node that reports no
 * capacity for a resource counts as having all of it free (it cannot be
 * packed on that axis, and the filters decide whether it fits).
 */
export function binpackScore(n: Pick<NodeInfo, 'freeCpu' | 'freeMem' | 'totalCpu' | 'totalMem'>, r: Pick<Requirements, 'cpu' | 'mem'>): number {
  const free = (left: number, total: number) => (total > 0 ? Math.min(1, Math.max(0, left / total)) : 1);
  return 20 - (10 ** free(n.freeCpu - r.cpu, n.totalCpu) + 10 ** free(n.freeMem - r.mem, n.totalMem));
}

/** "no suitable node: insufficient memory on 3 nodes, constraint mismatch on 2 nodes" */
export function explain(nodes: readonly NodeInfo[], r: Requirements): string {
  if (!nodes.length) return 'no suitable node: no nodes in the cluster';
  const counts = new Map<Filter, number>();
  for (const n of nodes) {
    const f = FILTERS.find((x) => x.applies(r) && !x.check(n, r));
    if (f) counts.set(f, (counts.get(f) ?? 0) + 1);
  }
  if (!counts.size) return 'no suitable node: every node is taken by tasks placed this tick';
  const parts = [...counts.entries()].sort((a, b) => b[1] - a[1] || FILTERS.indexOf(a[0]) - FILTERS.indexOf(b[0])).map(([f, k]) => f.explain(k));
  return `no suitable node: ${parts.join(', ')}`;
}

interface Branch {
  count: number;
  exhausted: boolean;
  children?: Map<string, Branch>;
  heap?: IndexHeap;
}

export interface ScheduleResult {
  assigned: number;
  unschedulable: { taskId: string; reason: string }[];
}

const WAITING = 'waiting for the previous task of its slot to stop';

/**
 * Places every PENDING task of the working copy. Writes ASSIGNED tasks
 * (node chosen) and, for tasks that fit nowhere, the explanation. A
 * generator: pauses when `w`'s slice is used up (see reconcileSteps).
 */
export function* schedule(w: Working): Generator<void, ScheduleResult> {
  const infos = yield* nodeInfoSteps(w);
  const byNodeId = new Map(infos.map((i) => [i.node.id, i]));
  const pending: Task[] = [];
  /** service/slot → spec version of a task still stopping there. */
  const stopping = new Map<string, number>();
  for (const t of w.tasks.values()) {
    if (w.due()) yield;
    const st = t.status?.state ?? 'NEW';
    if ((st === 'PENDING' || st === 'NEW') && t.desiredState === 'RUNNING') pending.push(t);
    else if (t.nodeId && isStopping(t) && !hasEnded(t)) stopping.set(`${t.serviceId}/${slotKey(t)}`, t.specVersion);
  }
  const res: ScheduleResult = { assigned: 0, unschedulable: [] };
  if (!pending.length) return res;

  const unschedulable = (t: Task, reason: string) => {
    res.unschedulable.push({ taskId: t.id, reason });
    if (t.status?.message === reason) return;
    const next = transition(t, t.status?.state === 'NEW' ? 'PENDING' : (t.status?.state ?? 'PENDING'), reason, w.now);
    if (next) w.updateTask(next);
  };
  const assign = (t: Task, n: NodeInfo, r: Requirements) => {
    const st = nextStatus(t, 'ASSIGNED', 'assigned', w.now);
    if (!st) return false;
    charge(n, t, { cpu: r.cpu, mem: r.mem, ports: r.hostPorts, addrs: r.addrs, live: true });
    if (w.isOwned(t)) {
      // Created this tick: finish it in place.
      t.nodeId = n.node.id;
      t.status = st;
    } else w.updateTask({ ...t, nodeId: n.node.id, status: st });
    res.assigned++;
    return true;
  };
  const mustWait = (t: Task, svc: Service | undefined) => {
    const v = stopping.get(`${t.serviceId}/${slotKey(t)}`);
    return v !== undefined && v !== t.specVersion && !!svc && orderOf(svc) === 'STOP_FIRST';
  };

  // Groups of identical tasks: same service, same spec version, no node chosen yet.
  const groups = new Map<string, Task[]>();
  for (const t of pending) {
    if (w.due()) yield;
    const svc = w.services.get(t.serviceId);
    if (!svc) continue;
    if (mustWait(t, svc)) {
      unschedulable(t, WAITING);
      continue;
    }
    if (t.nodeId) {
      // Global task: its node is chosen; check the whole pipeline there.
      const n = byNodeId.get(t.nodeId);
      const r = requirementsOf(t);
      if (n && FILTERS.every((f) => !f.applies(r) || f.check(n, r))) assign(t, n, r);
      else unschedulable(t, n ? explain([n], r) : `node ${t.nodeId} is not in the cluster`);
      continue;
    }
    const k = `${t.serviceId}/${t.specVersion}`;
    const g = groups.get(k);
    if (g) g.push(t);
    else groups.set(k, [t]);
  }

  for (const tasks of groups.values()) {
    tasks.sort((a, b) => a.slot - b.slot);
    const r = requirementsOf(tasks[0]);
    const sid = r.serviceId;
    const cands = infos.filter((n) => STATIC.every((f) => !f.applies(r) || f.check(n, r)));
    const dyn = DYNAMIC.filter((f) => f.applies(r));
    const svcCount = new Int32Array(infos.length);
    for (const n of cands) svcCount[n.idx] = n.perService.get(sid) ?? 0;
    const spreadLess = (a: number, b: number) => {
      const d = svcCount[a] - svcCount[b];
      if (d) return d < 0;
      const e = infos[a].tasks - infos[b].tasks;
      if (e) return e < 0;
      return a < b;
    };
    // Ties (no reservations, or equal nodes) go to the node with more of the service, then more tasks: still packing.
    const binpackLess = (a: number, b: number) => {
      const d = binpackScore(infos[a], r) - binpackScore(infos[b], r);
      if (d) return d > 0;
      const e = svcCount[a] - svcCount[b];
      if (e) return e > 0;
      const f = infos[a].tasks - infos[b].tasks;
      if (f) return f > 0;
      return a < b;
    };
    const lessFn = r.strategy === 'BINPACK' ? binpackLess : spreadLess;

    // The preference tree; without preferences the root is the only leaf.
    const root: Branch = { count: 0, exhausted: false };
    const pathOf = new Map<number, Branch[]>();
    const leaves = new Map<Branch, number[]>();
    for (const n of cands) {
      let b = root;
      const path = [root];
      for (const pref of r.preferences) {
        const v = nodeValue(n.node, pref) ?? '';
        b.children ??= new Map();
        let c = b.children.get(v);
        if (!c) {
          c = { count: 0, exhausted: false };
          b.children.set(v, c);
        }
        b = c;
        path.push(b);
      }
      for (const p of path) p.count += svcCount[n.idx];
      pathOf.set(n.idx, path);
      const l = leaves.get(b);
      if (l) l.push(n.idx);
      else leaves.set(b, [n.idx]);
    }
    for (const [leaf, idxs] of leaves) leaf.heap = new IndexHeap(idxs, lessFn);
    if (!leaves.size) root.exhausted = true;

    const pick = (b: Branch): number | undefined => {
      if (b.exhausted) return undefined;
      if (b.heap) {
        for (;;) {
          const top = b.heap.peek();
          if (top === undefined) {
            b.exhausted = true;
            return undefined;
          }
          if (dyn.every((f) => f.check(infos[top], r))) return top;
          b.heap.pop();
        }
      }
      for (;;) {
        let best: Branch | undefined;
        for (const c of b.children!.values()) if (!c.exhausted && (!best || c.count < best.count)) best = c;
        if (!best) {
          b.exhausted = true;
          return undefined;
        }
        const got = pick(best);
        if (got !== undefined) return got;
      }
    };

    let reason: string | undefined;
    for (const t of tasks) {
      if (w.due()) yield;
      const idx = pick(root);
      if (idx === undefined) {
        reason ??= explain(infos, r);
        unschedulable(t, reason);
        continue;
      }
      if (!assign(t, infos[idx], r)) continue;
      svcCount[idx]++;
      const path = pathOf.get(idx)!;
      for (const p of path) p.count++;
      path[path.length - 1].heap!.topChanged();
    }
  }
  return res;
}
