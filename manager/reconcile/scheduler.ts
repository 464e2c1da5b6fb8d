// The scheduler as a filter pipeline (swarmkit's scheduler/filter.go): each
// filter says whether a node can take a task; the failures per filter become
// the message an operator sees on a task that fits nowhere. Then ranking:
// fewest tasks of this service on the node (spread), then fewest tasks.
import type { Node, ServiceSpec, Task } from '../../proto/mod';

export type FilterName = 'constraint' | 'memory' | 'cpu' | 'max-replicas' | 'platform';

const FILTER_TEXT: Record<FilterName, string> = {
  constraint: 'constraint mismatch',
  memory: 'insufficient memory',
  cpu: 'insufficient cpu',
  'max-replicas': 'max replicas per node reached',
  platform: 'unsupported platform',
};

export interface Constraint {
  key: string;
  op: '==' | '!=';
  value: string;
}

export const CONSTRAINT_KEYS = ['node.id', 'node.hostname', 'node.role', 'node.platform.os', 'node.platform.arch'];

/** Parses "node.labels.zone == east"; throws with the reason when malformed. */
export function parseConstraint(expr: string): Constraint {
  const m = /^\s*([A-Za-z0-9_.\-]+)\s*(==|!=)\s*(.+?)\s*$/.exec(expr);
  if (!m) throw new Error(`"${expr}" is not of the form KEY==VALUE or KEY!=VALUE`);
  const key = m[1];
  if (!CONSTRAINT_KEYS.includes(key) && !/^node\.labels\.[^.].*$/.test(key) && !/^engine\.labels\.[^.].*$/.test(key))
    throw new Error(`unknown constraint key "${key}" (known: ${CONSTRAINT_KEYS.join(', ')}, node.labels.*, engine.labels.*)`);
  return { key, op: m[2] as '==' | '!=', value: m[3] };
}

function nodeValue(node: Node, key: string): string | undefined {
  switch (key) {
    case 'node.id':
      return node.id;
    case 'node.hostname':
      return node.description?.hostname;
    case 'node.role':
      return (node.spec?.role ?? 'WORKER').toLowerCase();
    case 'node.platform.os':
      return node.description?.platform?.os;
    case 'node.platform.arch':
      return node.description?.platform?.arch;
  }
  if (key.startsWith('node.labels.')) return node.spec?.labels?.[key.slice('node.labels.'.length)];
  if (key.startsWith('engine.labels.')) return node.description?.engineLabels?.[key.slice('engine.labels.'.length)];
  return undefined;
}

export function constraintsMatch(spec: ServiceSpec, node: Node): boolean {
  for (const expr of spec.placement?.constraints ?? []) {
    const c = parseConstraint(expr);
    const v = nodeValue(node, c.key);
    const eq = v !== undefined && v.toLowerCase() === c.value.toLowerCase();
    if (c.op === '==' ? !eq : eq) return false;
  }
  return true;
}

interface NodeLoad {
  node: Node;
  tasks: number;
  perService: Map<string, number>;
  cpu: number; // reserved nano CPUs
  mem: number; // reserved bytes
}

function reservations(spec: ServiceSpec | { resources?: ServiceSpec['resources'] }): { cpu: number; mem: number } {
  const r = spec.resources?.reservations;
  return { cpu: Number(r?.nanoCpus ?? 0), mem: Number(r?.memoryBytes ?? 0) };
}

/** Filters one node for a spec; `load` counts what is already on it. */
export function feasible(
  spec: ServiceSpec,
  node: Node,
  _tasks: Task[],
  opts: { ignoreResources: boolean },
  load?: NodeLoad,
  serviceId?: string,
): { ok: boolean; failed?: FilterName } {
  if (!constraintsMatch(spec, node)) return { ok: false, failed: 'constraint' };
  const plats = spec.placement?.platforms ?? [];
  if (plats.length && !plats.some((p) => (!p.os || p.os === node.description?.platform?.os) && (!p.arch || p.arch === node.description?.platform?.arch)))
    return { ok: false, failed: 'platform' };
  if (!opts.ignoreResources) {
    const want = reservations(spec);
    const have = node.description?.resources;
    if (want.mem > 0 && want.mem > Number(have?.memoryBytes ?? 0) - (load?.mem ?? 0)) return { ok: false, failed: 'memory' };
    if (want.cpu > 0 && want.cpu > Number(have?.nanoCpus ?? 0) - (load?.cpu ?? 0)) return { ok: false, failed: 'cpu' };
  }
  const max = spec.placement?.maxReplicasPerNode ?? 0;
  if (max > 0 && serviceId && (load?.perService.get(serviceId) ?? 0) >= max) return { ok: false, failed: 'max-replicas' };
  return { ok: true };
}

export function explain(failures: Map<FilterName, number>, totalNodes: number): string {
  if (totalNodes === 0 || failures.size === 0) return 'no suitable node: no node is ready and active';
  const parts = [...failures.entries()].sort((a, b) => b[1] - a[1]).map(([f, n]) => `${FILTER_TEXT[f]} on ${n} node${n === 1 ? '' : 's'}`);
  return `no suitable node: ${parts.join(', ')}`;
}

/** A ranker over the usable nodes that counts its own placements, so one tick spreads correctly. */
export function rank(nodes: Node[], placed: Task[]) {
  const loads = new Map<string, NodeLoad>();
  for (const n of nodes) loads.set(n.id, { node: n, tasks: 0, perService: new Map(), cpu: 0, mem: 0 });
  const add = (l: NodeLoad, serviceId: string, r: { cpu: number; mem: number }) => {
    l.tasks++;
    l.perService.set(serviceId, (l.perService.get(serviceId) ?? 0) + 1);
    l.cpu += r.cpu;
    l.mem += r.mem;
  };
  for (const t of placed) {
    const l = loads.get(t.nodeId);
    if (l) add(l, t.serviceId, reservations(t.spec ?? {}));
  }
  return {
    place(spec: ServiceSpec, serviceId: string): { nodeId?: string; failures: Map<FilterName, number> } {
      const failures = new Map<FilterName, number>();
      let best: NodeLoad | undefined;
      for (const l of loads.values()) {
        const f = feasible(spec, l.node, [], { ignoreResources: false }, l, serviceId);
        if (!f.ok) {
          failures.set(f.failed!, (failures.get(f.failed!) ?? 0) + 1);
          continue;
        }
        if (
          !best ||
          (l.perService.get(serviceId) ?? 0) < (best.perService.get(serviceId) ?? 0) ||
          ((l.perService.get(serviceId) ?? 0) === (best.perService.get(serviceId) ?? 0) && l.tasks < best.tasks)
        )
          best = l;
      }
      if (!best) return { failures };
      add(best, serviceId, reservations(spec));
      return { nodeId: best.node.id, failures };
    },
  };
}
