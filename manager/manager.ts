// A Convoy manager: serves the Control API (CLI) and the Dispatcher API
// (agents) on one gRPC port over one Store (etcd: embedded or given
// endpoints), keeps a StateCache fed by the store's watch, and stands for
// election through the store; the leader runs the reconcile loop
// (manager/leader.ts).
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { grpcPackages, type Cluster } from '../proto/mod';
import { createLogger, errMsg, type Logger } from '../common/logger';
import { ApiError } from './api';
import { DEFAULT_CLUSTER_CIDR, DEFAULT_INGRESS_PORTS, DEFAULT_VIP_CIDR } from './allocator/allocator';
import { createControl, makeToken, sha256 } from './controlapi/mod';
import { createDispatcher } from './dispatcher/dispatcher';
import { startEtcd, ETCD_MAX_TXN_OPS, type EmbeddedEtcd } from './embedded/etcd';
import { startNats, type EmbeddedNats } from './embedded/nats';
import { newId } from './ids';
import { createLeader } from './leader';
import { startManagerObservability } from './observe/mod';
import { startStallMonitor } from './observe/stall';
import { checkRanges, readHostNetworkFacts } from '../common/ranges';
import { StateCache } from './state/cache';
import { EtcdStore } from './store/etcd-store';
import { StoreJanitor } from './store/maintenance';
import { ConflictError, DEFAULT_MAX_TXN_OPS, type Campaign } from './store/store';
import { DEFAULT_HEARTBEAT_MS, DEFAULT_ELECTION_TTL_S } from '../proto/defaults';

export interface ManagerOptions {
  id?: string;
  dataDir: string;
  /** host:port of the gRPC server (Control + Dispatcher). */
  listen: string;
  /** host:port agents and other managers reach this one at. */
  advertiseAddr?: string;
  /** No endpoints: start a local etcd in dataDir (the embedded default). */
  etcdEndpoints?: string[];
  /** Undefined and no etcd endpoints: start a local NATS too (the embedded default); '' = no NATS. */
  natsUrl?: string;
  /** host:port for Prometheus /metrics; undefined = none. */
  metricsListen?: string;
  /** Used when this manager initialises the cluster; later managers read the cluster's. */
  clusterCidr?: string;
  vipCidr?: string;
  /** How often agents heartbeat; a node silent for about 3 periods is down. */
  heartbeatPeriodMs?: number;
  /** Leader lease TTL in seconds: how long a dead leader keeps the lead. */
  electionTtlS?: number;
  logger?: Logger;
}

export interface ManagerHandle {
  id: string;
  grpcAddr: string;
  etcdEndpoints: string[];
  natsUrl: string;
  metricsAddr?: string;
  isLeader(): boolean;
  stop(): Promise<void>;
}

export { DEFAULT_HEARTBEAT_MS };

/** Shortest election (and manager registration) lease etcd is worth asking for. */
const MIN_ELECTION_TTL_S = 2;
/** Pause before standing again after losing the lead (etcd may be failing over). */
const RESTAND_MS = 500;
export { DEFAULT_ELECTION_TTL_S };

export async function startManager(opts: ManagerOptions): Promise<ManagerHandle> {
  // What was started so far, undone in reverse when a later step fails (a bad range, a taken port).
  const undo: (() => unknown)[] = [];
  try {
    return await start(opts, undo);
  } catch (e) {
    for (const u of undo.reverse()) await Promise.resolve(u()).catch(() => undefined);
    throw e;
  }
}

async function start(opts: ManagerOptions, undo: (() => unknown)[]): Promise<ManagerHandle> {
  const id = opts.id ?? (fs.existsSync(path.join(opts.dataDir, 'manager-id')) ? fs.readFileSync(path.join(opts.dataDir, 'manager-id'), 'utf8').trim() : newId());
  fs.mkdirSync(opts.dataDir, { recursive: true });
  fs.writeFileSync(path.join(opts.dataDir, 'manager-id'), id);
  const log = (opts.logger ?? createLogger('manager')).child({ 'manager.id': id });
  const heartbeatMs = opts.heartbeatPeriodMs ?? DEFAULT_HEARTBEAT_MS;

  let embedded: EmbeddedEtcd | undefined;
  let embeddedNats: EmbeddedNats | undefined;
  let endpoints = opts.etcdEndpoints ?? [];
  let natsUrl = opts.natsUrl ?? '';
  if (!endpoints.length) {
    embedded = await startEtcd({ dataDir: path.join(opts.dataDir, 'etcd') });
    endpoints = [embedded.endpoint];
    undo.push(() => embedded?.stop());
    log.info('started embedded etcd', { endpoint: embedded.endpoint, pid: embedded.pid });
    if (opts.natsUrl === undefined) {
      try {
        // Listen where the gRPC server listens, so agents on other hosts reach it too.
        const listenHost = opts.listen.slice(0, opts.listen.lastIndexOf(':')) || '127.0.0.1';
        const advertiseHost = opts.advertiseAddr ? opts.advertiseAddr.replace(/:\d+$/, '') : undefined;
        embeddedNats = await startNats({ dataDir: path.join(opts.dataDir, 'nats'), host: listenHost, advertiseHost });
        natsUrl = embeddedNats.url;
        undo.push(() => embeddedNats?.stop());
        log.info('started embedded NATS', { url: natsUrl, pid: embeddedNats.pid });
      } catch (e) {
        // Events, logs and stats need NATS; scheduling does not.
        log.warn('embedded NATS not started: no events, logs or autoscaling', { err: errMsg(e) });
      }
    }
  }
  const stalls = startStallMonitor(log);
  undo.push(() => stalls.close());
  const obs = await startManagerObservability({ managerId: id, natsUrl: natsUrl || undefined, metricsListen: opts.metricsListen, logger: log });
  const { observer, autoscaler } = obs;
  undo.push(() => obs.observer.close(), () => obs.autoscaler.close());
  const store = EtcdStore.connect(endpoints, embedded ? ETCD_MAX_TXN_OPS : DEFAULT_MAX_TXN_OPS, (op, s) => observer.etcdRequest(op, s));
  undo.push(() => store.close());
  // Size, alarms, NOSPACE recovery and defragmentation of the etcd (the embedded one's reclaimed here): docs/etcd.md.
  const janitor = new StoreJanitor(store.maintenance, { reclaim: !!embedded, log: log.child({ component: 'store-maintenance' }), report: obs.storeReport }).start();
  undo.push(() => janitor.stop());
  const tokensFile = path.join(opts.dataDir, 'join-tokens.json');

  // Cluster object, created once by whichever manager gets there first.
  let cluster = await store.get<Cluster>('cluster', 'default');
  if (!cluster) {
    // The ranges are the cluster's for good: refuse ones that collide with this host's routes or resolver.
    checkRanges(
      [
        { name: 'cluster CIDR', cidr: opts.clusterCidr ?? DEFAULT_CLUSTER_CIDR },
        { name: 'VIP range', cidr: opts.vipCidr ?? DEFAULT_VIP_CIDR },
      ],
      readHostNetworkFacts(),
    );
    const cid = newId();
    const tokens = { worker: makeToken(cid), manager: makeToken(cid) };
    const c: Cluster = {
      id: 'default',
      meta: null,
      workerTokenHash: sha256(tokens.worker),
      managerTokenHash: sha256(tokens.manager),
      clusterCidr: opts.clusterCidr ?? DEFAULT_CLUSTER_CIDR,
      vipCidr: opts.vipCidr ?? DEFAULT_VIP_CIDR,
      ingressPortMin: DEFAULT_INGRESS_PORTS.min,
      ingressPortMax: DEFAULT_INGRESS_PORTS.max,
      createdAt: Date.now(),
    };
    try {
      await store.put('cluster', c, true);
      fs.writeFileSync(tokensFile, JSON.stringify(tokens), { mode: 0o600 });
      log.info('cluster initialised', { clusterCidr: c.clusterCidr, vipCidr: c.vipCidr });
    } catch (e) {
      if (!(e instanceof ConflictError)) throw e;
    }
    cluster = await store.get<Cluster>('cluster', 'default');
  }

  const cache = new StateCache(store, log);
  undo.push(() => cache.close());
  await cache.start();

  const checkToken = async (token: string): Promise<'WORKER' | 'MANAGER'> => {
    const c = await store.get<Cluster>('cluster', 'default');
    const h = sha256(token);
    if (c && h === c.workerTokenHash) return 'WORKER';
    if (c && h === c.managerTokenHash) return 'MANAGER';
    throw new ApiError(grpc.status.PERMISSION_DENIED, 'invalid join token');
  };
  const dispatcher = createDispatcher({ store, cache, heartbeatMs, natsUrl: () => natsUrl, managerId: id, log, observer, checkToken });
  const control = createControl({ store, cache, managerId: id, tokensFile, natsUrl: () => natsUrl, log, observer });
  const leader = createLeader({ store, cache, managerId: id, log, observer, autoscaler });
  cache.onChange((c) => {
    dispatcher.onChange(c);
    leader.onChange(c);
  });
  const pk = grpcPackages();

  // ---- gRPC server ------------------------------------------------------
  const server = new grpc.Server();
  undo.push(() => server.forceShutdown());
  server.addService(pk.control.convoy.Control.service, control);
  server.addService(pk.dispatcher.convoy.Dispatcher.service, dispatcher.handlers);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(opts.listen, grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  const host = opts.listen.slice(0, opts.listen.lastIndexOf(':'));
  const grpcAddr = opts.advertiseAddr ?? `${host === '0.0.0.0' ? '127.0.0.1' : host}:${port}`;
  const electionTtlS = Math.max(MIN_ELECTION_TTL_S, opts.electionTtlS ?? DEFAULT_ELECTION_TTL_S);
  const registration = await store.registerManager(id, grpcAddr, electionTtlS);
  undo.push(() => registration.close());

  // ---- Election -----------------------------------------------------------
  let stopped = false;
  let leading = false;
  let campaign: Campaign | undefined;
  let restand: NodeJS.Timeout | undefined;
  const stand = () => {
    restand = undefined;
    if (stopped) return;
    const c = store.campaign(id, electionTtlS);
    campaign = c;
    c.on((e) => {
      if (e.type === 'elected') {
        // A campaign started just before stop() can still win: give the lead back at once.
        if (stopped || campaign !== c) {
          void c.resign().catch(() => undefined);
          return;
        }
        leading = true;
        log.info('elected leader');
        leader.start();
        return;
      }
      if (campaign !== c) return;
      leading = false;
      leader.stop();
      if (stopped) return;
      log.warn('lost leadership', { err: errMsg(e.err) });
      restand = setTimeout(stand, RESTAND_MS);
    });
  };
  stand();

  log.info('manager started', { addr: grpcAddr, etcd: endpoints.join(','), nats: natsUrl, metrics: obs.metricsAddr ?? '' });
  return {
    id,
    grpcAddr,
    etcdEndpoints: endpoints,
    natsUrl,
    metricsAddr: obs.metricsAddr,
    isLeader: () => leading,
    async stop() {
      stopped = true;
      if (restand) clearTimeout(restand);
      leading = false;
      leader.stop();
      dispatcher.close();
      server.forceShutdown();
      await leader.idle().catch(() => undefined);
      await campaign?.resign().catch(() => undefined);
      await cache.close();
      await registration.close().catch(() => undefined);
      await janitor.stop();
      await store.close();
      await obs.observer.close().catch(() => undefined);
      await obs.autoscaler.close().catch(() => undefined);
      await embeddedNats?.stop();
      await embedded?.stop();
      stalls.close();
    },
  };
}
