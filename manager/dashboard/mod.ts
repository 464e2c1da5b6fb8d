// Public surface of manager/dashboard/: the HTTPS dashboard a manager serves
// (server.ts), its view (view.ts), and `startManagerDashboard`, the one call
// manager.ts makes: the listener, fed by the state cache, the agents' usage
// samples over NATS (every manager keeps its own table, so any manager's
// page has the charts) and the manager's events.
import type { Identity, TlsBundle } from '../../common/identity';
import type { NatsLink } from '../../common/nats';
import type { Logger } from '../../common/logger';
import { STATS_SUBJECTS, statsSubject } from '../../proto/events';
import type * as grpc from '@grpc/grpc-js';
import { StatsTable } from '../autoscale/stats';
import type { StateCache } from '../state/cache';
import { fetchLogs } from './logs';
import { HttpError, startDashboard, type DashboardServer } from './server';

export { createDashboardHandler, startDashboard, CSRF_HEADER, MAX_BODY_BYTES, MAX_SCALE, MAX_WATCHERS, type DashboardServer, type DashboardHandler } from './server';
export { buildView, type DashboardView } from './view';

/** How often old usage samples are dropped. */
const PRUNE_MS = 10_000;

export async function startManagerDashboard(o: {
  listen: string;
  bundle: TlsBundle;
  service: grpc.ServiceDefinition;
  handlers: object;
  cache: StateCache;
  link?: NatsLink;
  cluster: () => string;
  isRevoked: (who: Identity) => boolean;
  log: Logger;
}): Promise<DashboardServer> {
  const stats = new StatsTable();
  const prefix = statsSubject('');
  const unsubscribe = o.link?.subscribe(STATS_SUBJECTS, (m, msg) => stats.ingest(m, Date.now(), msg.subject.slice(prefix.length), (id) => o.cache.tasks.get(id)?.nodeId || undefined));
  const prune = setInterval(() => stats.prune(Date.now()), PRUNE_MS);
  prune.unref();
  let server: DashboardServer;
  try {
    server = await startDashboard({
      listen: o.listen,
      bundle: o.bundle,
      service: o.service,
      handlers: o.handlers,
      onChange: (fn) => o.cache.onChange(() => fn()),
      usage: (id) => stats.get(id),
      logs: o.link
        ? async (tasks, tail) => {
            const nc = o.link?.connection();
            if (!nc) throw new HttpError(503, 'logs: this manager is not connected to NATS now');
            return fetchLogs(nc, tasks, tail);
          }
        : undefined,
      cluster: o.cluster,
      isRevoked: o.isRevoked,
      log: o.log.child({ component: 'dashboard' }),
    });
  } catch (e) {
    unsubscribe?.();
    clearInterval(prune);
    throw e;
  }
  return {
    ...server,
    async close() {
      unsubscribe?.();
      clearInterval(prune);
      await server.close();
    },
  };
}
