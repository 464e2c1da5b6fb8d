// What the dashboard page draws, made from the Control API's answers (as a
// client sees them) and the agents' usage samples: one small JSON object,
// pushed whole on every change (docs/dashboard.md). A plain function of
// its inputs, tested without a server.
import type { Node, Service, Task } from '../../proto/mod';
import type { TaskUsage } from '../autoscale/autoscale';

/** Tasks the view carries at most (the newest of each slot first); the page says when it cut. */
export const VIEW_MAX_TASKS = 2_000;
/** Samples older than this are not "used" any more (an agent that stopped reporting). */
export const USAGE_STALE_MS = 30_000;

export interface Amount {
  /** CPU in cores, memory in bytes. */
  total: number;
  reserved: number;
  used: number;
}

export interface NodeView {
  id: string;
  hostname: string;
  role: string;
  availability: string;
  state: string;
  addr: string;
  leader: boolean;
  cpu: Amount;
  memory: Amount;
}

export interface ServiceView {
  id: string;
  name: string;
  mode: string;
  running: number;
  desired: number;
  image: string;
  ports: string[];
  update: { state: string; message: string };
  autoscale: { min: number; max: number; cpuPercent: number; memoryPercent: number } | null;
  /** Sum over the service's running tasks: cores and bytes. */
  cpu: number;
  memory: number;
}

export interface TaskView {
  id: string;
  service: string;
  slot: number;
  node: string;
  state: string;
  desired: string;
  message: string;
  cpu: number | null;
  memory: number | null;
}

export interface DashboardView {
  time: number;
  nodes: NodeView[];
  services: ServiceView[];
  tasks: TaskView[];
  /** Tasks left out (more than VIEW_MAX_TASKS). */
  tasksCut: number;
}

const live = (t: Task) => t.desiredState === 'RUNNING' && !['COMPLETE', 'FAILED', 'SHUTDOWN', 'REJECTED', 'ORPHANED', 'REMOVE'].includes(t.status?.state ?? 'NEW');
const cores = (nano: number | undefined) => Number(nano ?? 0) / 1e9;

function ports(s: Service): string[] {
  const published = s.endpoint?.ports?.length ? s.endpoint.ports : (s.spec?.endpoint?.ports ?? []);
  return published.map((p) => `${p.publishedPort ? `${p.publishedPort}->` : ''}${p.targetPort}/${p.protocol || 'tcp'}${p.publishMode === 'HOST' ? ' (host)' : ''}`);
}

export function buildView(
  o: { nodes: Node[]; leader: string; services: { service?: Service | null; counts?: { running: number; desired: number } | null }[]; tasks: Task[] },
  usage: (taskId: string) => TaskUsage | undefined,
  now: number,
): DashboardView {
  const fresh = (id: string) => {
    const u = usage(id);
    return u && now - u.receivedAt <= USAGE_STALE_MS ? u : undefined;
  };
  const perNode = new Map<string, { cpuR: number; memR: number; cpuU: number; memU: number }>();
  const perService = new Map<string, { cpu: number; memory: number }>();
  const tasks: TaskView[] = [];
  for (const t of o.tasks) {
    const u = live(t) ? fresh(t.id) : undefined;
    if (live(t) && t.nodeId) {
      const n = perNode.get(t.nodeId) ?? { cpuR: 0, memR: 0, cpuU: 0, memU: 0 };
      const r = t.spec?.resources?.reservations;
      n.cpuR += cores(r?.nanoCpus);
      n.memR += Number(r?.memoryBytes ?? 0);
      n.cpuU += u?.cpuCores ?? 0;
      n.memU += u?.memoryBytes ?? 0;
      perNode.set(t.nodeId, n);
    }
    if (u) {
      const s = perService.get(t.serviceId) ?? { cpu: 0, memory: 0 };
      s.cpu += u.cpuCores;
      s.memory += u.memoryBytes;
      perService.set(t.serviceId, s);
    }
    tasks.push({
      id: t.id,
      service: t.serviceName,
      slot: Number(t.slot ?? 0),
      node: t.nodeId ?? '',
      state: t.status?.state ?? 'NEW',
      desired: t.desiredState,
      message: (t.status?.err || t.status?.message || '').slice(0, 200),
      cpu: u ? u.cpuCores : null,
      memory: u ? u.memoryBytes : null,
    });
  }
  const nodes = o.nodes.map((n): NodeView => {
    const a = perNode.get(n.id) ?? { cpuR: 0, memR: 0, cpuU: 0, memU: 0 };
    const res = n.description?.resources;
    return {
      id: n.id,
      hostname: n.description?.hostname || n.id,
      role: n.spec?.role ?? 'WORKER',
      availability: n.spec?.availability ?? 'ACTIVE',
      state: (n.status?.state ?? 'NODE_UNKNOWN').replace(/^NODE_/, ''),
      addr: n.status?.addr ?? '',
      leader: !!o.leader && n.id === o.leader,
      cpu: { total: cores(res?.nanoCpus), reserved: a.cpuR, used: a.cpuU },
      memory: { total: Number(res?.memoryBytes ?? 0), reserved: a.memR, used: a.memU },
    };
  });
  const services = o.services.flatMap(({ service: s, counts }): ServiceView[] => {
    if (!s) return [];
    const as = s.spec?.autoscale;
    const u = perService.get(s.id) ?? { cpu: 0, memory: 0 };
    return [
      {
        id: s.id,
        name: s.spec?.name ?? s.id,
        mode: s.spec?.mode ?? 'REPLICATED',
        running: Number(counts?.running ?? 0),
        desired: Number(counts?.desired ?? 0),
        image: s.spec?.container?.image ?? '',
        ports: ports(s),
        update: { state: s.updateStatus?.state ?? 'UPDATE_NONE', message: (s.updateStatus?.message ?? '').slice(0, 300) },
        autoscale: as?.enabled ? { min: as.minReplicas, max: as.maxReplicas, cpuPercent: as.targetCpuPercent, memoryPercent: as.targetMemoryPercent } : null,
        cpu: u.cpu,
        memory: u.memory,
      },
    ];
  });
  nodes.sort((a, b) => a.hostname.localeCompare(b.hostname));
  services.sort((a, b) => a.name.localeCompare(b.name));
  const cut = Math.max(0, tasks.length - VIEW_MAX_TASKS);
  return { time: now, nodes, services, tasks: cut ? tasks.slice(0, VIEW_MAX_TASKS) : tasks, tasksCut: cut };
}
