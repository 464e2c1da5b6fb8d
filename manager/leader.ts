// The leader's loop: one reconcile tick at a time over the manager's
// StateCache, its writes committed in batched revision-guarded transactions,
// then a wait until the cache has seen them (so the next tick never acts on
// its own stale view). A tick runs when the cache changes (only the services
// and nodes that changed are re-orchestrated), when a time-based decision
// falls due (`wakeAt`: restart delays, update delay and monitor), and every
// FULL_TICK_MS as a safety net over everything.
import type { Node, Service, Task } from '../proto/mod';
import { errMsg, type Logger } from '../common/logger';
import type { Autoscaler, ManagerObserver } from './hooks';
import { reconcile, type ReconcileOptions } from './reconcile';
import type { Change, StateCache } from './state/cache';
import type { ClusterSnapshot } from './state/snapshot';
import type { Store, Write } from './store/store';

export interface LeaderDeps {
  store: Store;
  cache: StateCache;
  managerId: string;
  log: Logger;
  observer: ManagerObserver;
  autoscaler: Autoscaler;
  reconcile?: Omit<ReconcileOptions, 'dirty'>;
}

/** Safety net: a full reconcile at least this often. */
const FULL_TICK_MS = 2000;
/** Debounce of cache changes before a tick; grows with the cost of the last tick. */
const MIN_DEBOUNCE_MS = 15;
const MAX_DEBOUNCE_MS = 500;
/** A node whose lease key is gone is only marked down once its session is this old (the session writes the node, then the key). */
const NEW_SESSION_GRACE_MS = 1500;

export interface Leader {
  start(): void;
  stop(): void;
  onChange(c: Change): void;
  /** Resolves when no tick is running (tests, shutdown). */
  idle(): Promise<void>;
}

export function createLeader(d: LeaderDeps): Leader {
  const { store, cache, log, observer } = d;
  const source = `manager/${d.managerId}`;
  let leading = false;
  let running: Promise<void> | undefined;
  let timer: NodeJS.Timeout | undefined;
  let timerAt = Infinity;
  let full = true;
  /** The cache may lag etcd (first tick, a failed or partly dropped commit): catch up before deciding. */
  let sync = true;
  const dirtyServices = new Set<string>();
  const dirtyNodes = new Set<string>();
  let lastTickMs = 0;
  let lastFull = 0;
  /** The next tick at or after this time is a full one (a wakeAt came due). */
  let fullAt = Infinity;

  const schedule = (delayMs: number) => {
    if (!leading) return;
    const at = Date.now() + Math.max(0, delayMs);
    if (timer && timerAt <= at) return;
    if (timer) clearTimeout(timer);
    timerAt = at;
    timer = setTimeout(() => {
      timer = undefined;
      timerAt = Infinity;
      void run();
    }, Math.max(0, delayMs));
  };
  const debounce = () => Math.min(MAX_DEBOUNCE_MS, Math.max(MIN_DEBOUNCE_MS, lastTickMs * 2));

  const run = async () => {
    if (!leading) return;
    if (running) {
      // Coalesce: one more tick after this one.
      await running;
      schedule(0);
      return;
    }
    running = tick().finally(() => (running = undefined));
    await running;
  };

  const tick = async () => {
    const t0 = performance.now();
    const now = Date.now();
    // A tick that is due for time-based decisions (restart delay, update pacing: wakeAt) looks at
    // everything: the services concerned are not dirty, and would otherwise wait for the next full tick.
    const isFull = full || now - lastFull >= FULL_TICK_MS || now >= fullAt;
    if (now >= fullAt) fullAt = Infinity;
    const dirty = isFull ? undefined : { services: new Set(dirtyServices), nodes: new Set(dirtyNodes) };
    full = false;
    dirtyServices.clear();
    dirtyNodes.clear();
    if (isFull) lastFull = now;
    let wakeAt = Infinity;
    try {
      if (sync) {
        sync = false;
        if (!(await cache.waitFor(await store.syncRevision(d.managerId), 10_000))) throw new Error('state cache is behind etcd');
      }
      if (!cache.cluster) return;
      // Node liveness: a node is up while its session's lease-bound key lives.
      const writes: Write[] = [];
      let nodes: Map<string, Node> | undefined;
      for (const n of cache.nodes.values()) {
        const up = cache.alive.has(n.id);
        const want = up ? 'NODE_READY' : 'NODE_DOWN';
        if (n.status?.state === want) continue;
        if (!up && now - (n.status?.updatedAt ?? 0) < NEW_SESSION_GRACE_MS) {
          wakeAt = Math.min(wakeAt, (n.status?.updatedAt ?? 0) + NEW_SESSION_GRACE_MS);
          continue;
        }
        const next: Node = { ...n, status: { ...(n.status ?? { message: '', addr: '', updatedAt: 0 }), state: want, message: up ? '' : 'heartbeat failure', updatedAt: now } };
        nodes ??= new Map(cache.nodes);
        nodes.set(n.id, next);
        writes.push({ op: 'update', kind: 'nodes', obj: next });
        dirty?.nodes.add(n.id);
        log.info(up ? 'node up' : 'node down', { 'node.id': n.id });
        observer.event({ type: 'node', action: up ? 'up' : 'down', time: now, source, nodeId: n.id, hostname: n.description?.hostname ?? '', message: up ? undefined : 'heartbeat failure' });
      }
      let snap: ClusterSnapshot = {
        revision: cache.revision,
        now,
        cluster: cache.cluster,
        services: cache.services,
        tasks: cache.tasks,
        nodes: nodes ?? cache.nodes,
        networks: cache.networks,
      };
      // The autoscaler's decisions go into this tick's snapshot, so the
      // orchestrator acts on them at once.
      const decisions = d.autoscaler.decide(snap);
      if (decisions.length) {
        const services = new Map(snap.services);
        for (const dec of decisions) {
          const s = services.get(dec.serviceId);
          if (!s?.spec || Number(s.spec.replicas) === dec.to) continue;
          const next: Service = { ...s, spec: { ...s.spec, replicas: dec.to } };
          services.set(s.id, next);
          writes.push({ op: 'update', kind: 'services', obj: next });
          dirty?.services.add(s.id);
          log.info('autoscaled', { 'service.id': s.id, 'service.name': s.spec.name, from: dec.from, to: dec.to, reason: dec.reason });
          observer.event({ type: 'service', action: 'autoscaled', time: now, source, serviceId: s.id, serviceName: s.spec.name, from: dec.from, to: dec.to, message: dec.reason });
        }
        snap = { ...snap, services };
      }
      observer.state(snap);

      const res = reconcile(snap, { ...d.reconcile, dirty });
      if (res.wakeAt !== undefined) {
        wakeAt = Math.min(wakeAt, res.wakeAt);
        fullAt = Math.min(fullAt, res.wakeAt);
      }
      for (const a of res.actions) {
        switch (a.op) {
          case 'createTask':
            writes.push({ op: 'create', kind: 'tasks', obj: a.task });
            break;
          case 'updateTask': {
            writes.push({ op: 'update', kind: 'tasks', obj: a.task });
            const before = snap.tasks.get(a.task.id);
            if (a.task.status?.state === 'ASSIGNED' && before?.status?.state !== 'ASSIGNED') observer.scheduled(Math.max(0, now - (before?.meta?.createdAt ?? now)) / 1000);
            else taskEvent(before, a.task, now);
            break;
          }
          case 'deleteTask':
            writes.push({ op: 'delete', kind: 'tasks', obj: a.task });
            break;
          case 'updateService':
            writes.push({ op: 'update', kind: 'services', obj: a.service });
            updateEvent(snap.services.get(a.service.id), a.service, now);
            break;
          case 'updateNode':
            writes.push({ op: 'update', kind: 'nodes', obj: a.node });
            break;
          case 'createNetwork':
            writes.push({ op: 'create', kind: 'networks', obj: a.network });
            break;
          case 'updateNetwork':
            writes.push({ op: 'update', kind: 'networks', obj: a.network });
            break;
        }
      }
      // One write per object: a later write of the same object carries the earlier one's change.
      const byKey = new Map<string, Write>();
      for (const w of writes) {
        const k = `${w.kind}/${w.obj.id}`;
        const prev = byKey.get(k);
        byKey.set(k, prev && prev.op === 'create' && w.op === 'update' ? { ...w, op: 'create' } : w);
      }
      if (byKey.size) {
        const r = await store.batch([...byKey.values()]);
        if (r.error) log.warn('some writes failed; retrying', { err: r.error, dropped: r.dropped, committed: r.committed });
        if (r.dropped) {
          // Someone wrote meanwhile (or etcd refused a chunk): recompute from what etcd has now.
          full = true;
          sync = true;
          wakeAt = Math.min(wakeAt, Date.now() + MIN_DEBOUNCE_MS);
        }
        if (r.revision) await cache.waitFor(r.revision);
      }
      log.debug('tick', { full: isFull, dirtyServices: dirty?.services.size ?? -1, writes: byKey.size, wakeAt: Number.isFinite(wakeAt) ? wakeAt - Date.now() : -1, ms: Math.round(performance.now() - t0) });
      observer.reconciled({ seconds: (performance.now() - t0) / 1000, created: res.stats.created, assigned: res.stats.assigned, unschedulable: res.stats.unschedulable });
    } catch (e) {
      log.warn('reconcile failed', { err: errMsg(e) });
      full = true;
      sync = true;
      wakeAt = Math.min(wakeAt, Date.now() + 200);
    } finally {
      lastTickMs = performance.now() - t0;
      if (Number.isFinite(wakeAt)) schedule(wakeAt - Date.now());
      schedule(FULL_TICK_MS);
    }
  };

  const taskEvent = (before: Task | undefined, t: Task, now: number) => {
    const st = t.status?.state;
    if (!st || st === before?.status?.state && t.status?.message === before?.status?.message) return;
    // The agents report the running lifecycle; the leader reports what it decides itself.
    if (st !== 'PENDING' && st !== 'ORPHANED' && st !== 'SHUTDOWN' && st !== 'REJECTED') return;
    observer.event({
      type: 'task',
      action: 'state',
      time: now,
      source,
      taskId: t.id,
      serviceId: t.serviceId,
      serviceName: t.serviceName,
      slot: t.slot,
      nodeId: t.nodeId,
      state: st,
      desiredState: t.desiredState,
      message: t.status?.message,
    });
  };
  const updateEvent = (before: Service | undefined, s: Service, now: number) => {
    const st = s.updateStatus?.state;
    if (!st || st === before?.updateStatus?.state) return;
    const action = st === 'UPDATE_PAUSED' || st === 'ROLLBACK_PAUSED' ? 'update-paused' : st === 'UPDATE_COMPLETED' || st === 'ROLLBACK_COMPLETED' ? 'update-completed' : st === 'ROLLBACK_STARTED' ? 'rollback' : undefined;
    if (action) observer.event({ type: 'service', action, time: now, source, serviceId: s.id, serviceName: s.spec?.name ?? '', message: s.updateStatus?.message });
  };

  return {
    start() {
      leading = true;
      full = true;
      sync = true;
      observer.leader(true);
      d.autoscaler.leading(true);
      observer.event({ type: 'manager', action: 'leader-elected', time: Date.now(), source, managerId: d.managerId });
      schedule(0);
    },
    stop() {
      if (!leading) return;
      leading = false;
      if (timer) clearTimeout(timer);
      timer = undefined;
      timerAt = Infinity;
      observer.leader(false);
      d.autoscaler.leading(false);
      observer.event({ type: 'manager', action: 'leader-lost', time: Date.now(), source, managerId: d.managerId });
    },
    onChange(c: Change) {
      if (!leading) return;
      if (c.reset || c.cluster || c.networks) full = true;
      for (const s of c.services) dirtyServices.add(s);
      for (const n of c.nodes) dirtyNodes.add(n);
      if (full || dirtyServices.size || dirtyNodes.size) schedule(debounce());
    },
    async idle() {
      await running;
    },
  };
}
