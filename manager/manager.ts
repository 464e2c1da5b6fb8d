// A Convoy manager: serves the Control API (CLI) and the Dispatcher API
// (agents) on one gRPC port over one Store (etcd: embedded or given
// endpoints), keeps a StateCache fed by the store's watch, and stands for
// election through the store; the leader runs the reconcile loop
// (manager/leader.ts).
import { SERVER_OPTIONS } from '../proto/grpc-limits';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { grpcPackages, type Cluster } from '../proto/mod';
import type { NatsIdentity } from '../proto/nats-auth';
import { createLogger, errMsg, type Logger } from '../common/logger';
import { identityFromCert, isUserRole, type Identity, type TlsBundle } from '../common/identity';
import { secureControl } from './auth/mod';
import { DEFAULT_CLUSTER_CIDR, DEFAULT_INGRESS_PORTS, DEFAULT_VIP_CIDR } from './allocator/allocator';
import { createControl, makeToken, tokenSecretHash } from './controlapi/mod';
import { ADMIN_ID, bootstrapManagerIdentity, managerSans, ADMIN_SUBDIR, TLS_SUBDIR } from './ca/bootstrap';
import { assertNotRetired, rewrapSealed } from './crypto/rewrap';
import { certRenewalHandlers, nodeCaHandlers } from './ca/service';
import { identityGate, joinContext, mtlsContext, SwappableServerCredentials } from './ca/tls';
import { renewalTime, runAt } from '../proto/join';
import { createDispatcher, dispatcherService } from './dispatcher/dispatcher';
import { startEtcd, ETCD_MAX_TXN_OPS, type EmbeddedEtcd } from './embedded/etcd';
import { startNats, type EmbeddedNats } from './embedded/nats';
import { newId } from './ids';
import { createLeader } from './leader';
import { startManagerDashboard, type DashboardServer } from './dashboard/mod';
import { startManagerObservability } from './observe/mod';
import { startStallMonitor } from './observe/stall';
import { checkRanges, readHostNetworkFacts } from '../common/ranges';
import { StateCache } from './state/cache';
import { EtcdStore } from './store/etcd-store';
import { StoreJanitor } from './store/maintenance';
import { ConflictError, DEFAULT_MAX_TXN_OPS, type Campaign } from './store/store';
import { DEFAULT_HEARTBEAT_MS, DEFAULT_ELECTION_TTL_S, DEFAULT_CERT_EXPIRY_MS } from '../proto/defaults';

export interface ManagerOptions {
  id?: string;
  dataDir: string;
  /** host:port of the gRPC server (Control + Dispatcher). */
  listen: string;
  /** host:port agents and other managers reach this one at. */
  advertiseAddr?: string;
  /** No endpoints: start a local etcd in dataDir (the embedded default, TLS on loopback). */
  etcdEndpoints?: string[];
  /**
   * TLS to the etcd of `etcdEndpoints` (required with them): its CA and this
   * manager's client certificate and key (--etcd-cacert/--etcd-cert/--etcd-key).
   * The embedded etcd makes its own (manager/embedded/pki.ts).
   */
  etcdTls?: TlsBundle;
  /**
   * Undefined and no etcd endpoints: start a local NATS too (the embedded default); 'embedded': start
   * one with etcd endpoints as well (the lab's first manager); '' = no NATS.
   */
  natsUrl?: string;
  /** Port of the embedded NATS (--nats-port; the lab's 4222); default: a free one. */
  natsPort?: number;
  /**
   * This manager's certificate (OU=manager; it must name the advertised
   * host, it is also the embedded NATS's server certificate) and the cluster
   * CA. Without it this manager uses no NATS and starts none: NATS is TLS only.
   */
  natsTls?: TlsBundle;
  /** Users (admin/operator/viewer identities) the embedded NATS admits besides the nodes; call ManagerHandle.syncNatsUsers() when they change. */
  natsUsers?: () => Iterable<Identity>;
  /** The root-only unix socket serving the Control API as LOCAL_ROOT; default <dataDir>/convoy.sock, '' = none. */
  socket?: string;
  /** host:port for Prometheus /metrics; undefined = none. */
  metricsListen?: string;
  /** --metrics-tls: serve /metrics only with mutual TLS; needs metricsTls. */
  metricsMutualTls?: boolean;
  /** The certificate /metrics is served with under mutual TLS (this manager's own), and the cluster CA. */
  metricsTls?: TlsBundle;
  /** Used when this manager initialises the cluster; later managers read the cluster's. */
  clusterCidr?: string;
  vipCidr?: string;
  /** How often agents heartbeat; a node silent for about 3 periods is down. */
  heartbeatPeriodMs?: number;
  /** Leader lease TTL in seconds: how long a dead leader keeps the lead. */
  electionTtlS?: number;
  /** The key-encryption key file (default <dataDir>/kek), docs/security.md. */
  kekFile?: string;
  /** A manager join token: how a manager without the KEK joins an existing cluster (with `join`). */
  joinToken?: string;
  /** host:port of a running manager's join listener, with joinToken. */
  join?: string;
  /** host:port of this manager's join listener (TLS, no client certificate; proto/ca.proto). Default: the gRPC port + 3 (7423), or a free port when that is 0. */
  joinListen?: string;
  /**
   * host:port of the web dashboard (HTTPS, client certificates of the cluster CA; docs/dashboard.md).
   * Default: the --listen host, gRPC port + 4 (7424), or a free port when that is 0; '' = no dashboard.
   */
  dashboardListen?: string;
  /** Lifetime of node certificates when this manager creates the cluster (tests; later `convoy cluster update --cert-expiry`). */
  certExpiryMs?: number;
  logger?: Logger;
}

export interface ManagerHandle {
  id: string;
  grpcAddr: string;
  /** host:port of the join listener (agents join here once, with a token). */
  joinAddr: string;
  /** This manager's own bundle directory, and the admin client bundle it wrote (<dataDir>/admin). */
  tlsDir: string;
  adminDir: string;
  /** sha256 of the cluster root CA (what join tokens pin). */
  caFingerprint: string;
  etcdEndpoints: string[];
  /** The TLS material this manager's etcd client uses (tools in the same process: bench watchers). */
  etcdTls?: TlsBundle;
  natsUrl: string;
  metricsAddr?: string;
  /** host:port of the web dashboard, when served. */
  dashboardAddr?: string;
  /** Rewrites the embedded NATS's users (nodes from the store, natsUsers()) and reloads it; a no-op without one. */
  syncNatsUsers(): Promise<void>;
  /** The root-only unix socket, when served. */
  socketPath?: string;
  isLeader(): boolean;
  stop(): Promise<void>;
}

export { DEFAULT_HEARTBEAT_MS };

/** Shortest election (and manager registration) lease etcd is worth asking for. */
const MIN_ELECTION_TTL_S = 2;
/** Pause before standing again after losing the lead (etcd may be failing over). */
const RESTAND_MS = 500;
/** Node changes come in bursts (a fleet joining): the embedded NATS's users are rewritten at most this often. */
const NATS_USERS_DEBOUNCE_MS = 200;
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
  let etcdTls = opts.etcdTls;
  if (endpoints.length && !etcdTls) throw new Error('etcd: TLS with a client certificate is required for --etcd endpoints: give --etcd-cacert, --etcd-cert and --etcd-key');
  const wantEmbeddedNats = opts.natsUrl === 'embedded';
  let natsUrl = wantEmbeddedNats ? '' : (opts.natsUrl ?? '');
  if (!endpoints.length) {
    embedded = await startEtcd({ dataDir: path.join(opts.dataDir, 'etcd') });
    endpoints = [embedded.endpoint];
    etcdTls = embedded.clientTls;
    undo.push(() => embedded?.stop());
    log.info('started embedded etcd', { endpoint: embedded.endpoint, pid: embedded.pid });
  }
  const stalls = startStallMonitor(log);
  undo.push(() => stalls.close());
  // Observability starts once this manager has its certificate (NATS is mutual TLS); the store reports to it from then on.
  let obsRef: Awaited<ReturnType<typeof startManagerObservability>> | undefined;
  const store = EtcdStore.connect(endpoints, embedded ? ETCD_MAX_TXN_OPS : DEFAULT_MAX_TXN_OPS, (op, s) => obsRef?.observer.etcdRequest(op, s), { tls: etcdTls });
  undo.push(() => store.close());
  // Size, alarms, NOSPACE recovery and defragmentation of the etcd (the embedded one's reclaimed here): docs/etcd.md.
  const janitor = new StoreJanitor(store.maintenance, { reclaim: !!embedded, log: log.child({ component: 'store-maintenance' }), report: {
      status: (st) => obsRef?.storeReport.status(st),
      full: (full, message) => obsRef?.storeReport.full(full, message),
      defragmented: (b, a, sec) => obsRef?.storeReport.defragmented(b, a, sec),
    },
  }).start();
  undo.push(() => janitor.stop());
  const tokensFile = path.join(opts.dataDir, 'join-tokens.json');
  // Seals secret and config values in etcd (docs/security.md).

  // Cluster object, created once by whichever manager gets there first.
  let cluster = await store.get<Cluster>('cluster', 'default');
  let initialising = false;
  if (!cluster) {
    // The ranges are the cluster's for good: refuse ones that collide with this host's routes or resolver.
    checkRanges(
      [
        { name: 'cluster CIDR', cidr: opts.clusterCidr ?? DEFAULT_CLUSTER_CIDR },
        { name: 'VIP range', cidr: opts.vipCidr ?? DEFAULT_VIP_CIDR },
      ],
      readHostNetworkFacts(),
    );
    const c: Cluster = {
      id: 'default',
      meta: null,
      // The join tokens pin the CA, made just below: their hashes are written once it exists.
      workerTokenHash: '',
      managerTokenHash: '',
      clusterCidr: opts.clusterCidr ?? DEFAULT_CLUSTER_CIDR,
      vipCidr: opts.vipCidr ?? DEFAULT_VIP_CIDR,
      ingressPortMin: DEFAULT_INGRESS_PORTS.min,
      ingressPortMax: DEFAULT_INGRESS_PORTS.max,
      createdAt: Date.now(),
      // No bind mount until an operator allows where from (convoy cluster update --bind-allow).
      bindAllow: [],
      // No --privileged or --device until an admin allows them (convoy cluster update --allow-privileged).
      allowPrivileged: false,
      clusterId: newId(),
      certExpiryMs: opts.certExpiryMs ?? 0,
    };
    try {
      await store.put('cluster', c, true);
      initialising = true;
      log.info('cluster initialised', { clusterCidr: c.clusterCidr, vipCidr: c.vipCidr });
    } catch (e) {
      if (!(e instanceof ConflictError)) throw e;
    }
    cluster = await store.get<Cluster>('cluster', 'default');
  }

  const cache = new StateCache(store, log);
  undo.push(() => cache.close());
  await cache.start();

  // ---- Identity: KEK, cluster CA, this manager's certificate (docs/security.md) ----
  const listenHost = opts.listen.slice(0, opts.listen.lastIndexOf(':'));
  const listenPort = Number(opts.listen.slice(opts.listen.lastIndexOf(':') + 1));
  const certTtl = () => Number(cache.cluster?.certExpiryMs || 0) || DEFAULT_CERT_EXPIRY_MS;
  const ident = await bootstrapManagerIdentity({
    store,
    cache,
    dataDir: opts.dataDir,
    kekFile: opts.kekFile,
    initialising,
    clusterId: cluster?.clusterId || 'default',
    managerId: id,
    joinToken: opts.joinToken,
    joinAddr: opts.join,
    defaultTtl: certTtl,
    sans: managerSans(opts.listen, opts.advertiseAddr),
    log,
  });
  // A KEK rotation (several keys in the file, the new one first): what a previous key sealed is
  // sealed again under the current one (docs/security.md). A failure here is logged, never fatal:
  // a previous key still opens what it sealed, and the next start tries again.
  // A manager whose first key a rotation retired (its file not edited) must not seal under it again.
  await assertNotRetired(store, ident.kek);
  await rewrapSealed(store, ident.kek, log).catch((e) => log.warn('key-encryption key: re-wrapping failed; the next start tries again', { err: errMsg(e) }));
  // New cluster (or one from before the CA): join tokens that pin the CA.
  if (ident.createdCa) {
    const tokens = { worker: makeToken(ident.ca.fingerprint), manager: makeToken(ident.ca.fingerprint) };
    await store.update<Cluster>('cluster', 'default', (cur) => cur && { ...cur, workerTokenHash: tokenSecretHash(tokens.worker), managerTokenHash: tokenSecretHash(tokens.manager) });
    fs.writeFileSync(tokensFile, JSON.stringify(tokens), { mode: 0o600 });
  }
  // ---- NATS and observability: TLS with this manager's certificate from the cluster CA ----
  // (opts.natsTls overrides it: tests with a CA of their own).
  const natsTls: TlsBundle = opts.natsTls ?? ident.bundle;
  if (wantEmbeddedNats || (embedded && opts.natsUrl === undefined)) {
    try {
      // Listen where the gRPC server listens, so agents on other hosts reach it too.
      const listenHost = opts.listen.slice(0, opts.listen.lastIndexOf(':')) || '127.0.0.1';
      const advertiseHost = opts.advertiseAddr ? opts.advertiseAddr.replace(/:\d+$/, '') : undefined;
      const self = identityFromCert(natsTls.cert);
      embeddedNats = await startNats({ dataDir: path.join(opts.dataDir, 'nats'), host: listenHost, port: opts.natsPort, advertiseHost, tls: natsTls, identities: self ? [self] : [] });
      natsUrl = embeddedNats.url;
      undo.push(() => embeddedNats?.stop());
      log.info('started embedded NATS', { url: natsUrl, pid: embeddedNats.pid });
    } catch (e) {
      // Events, logs and stats need NATS; scheduling does not.
      log.warn('embedded NATS not started: no events, logs or autoscaling', { err: errMsg(e) });
    }
  }
    const obs = await startManagerObservability({
    managerId: id,
    natsUrl: natsUrl || undefined,
    natsTls,
    metricsListen: opts.metricsListen,
    metricsTls: opts.metricsMutualTls ? (opts.metricsTls ?? ident.bundle) : undefined,
    logger: log,
  });
  obsRef = obs;
  // Events also go to the dashboard's live pages (set once it listens, below).
  let dashboardEvent: ((e: Parameters<typeof obs.observer.event>[0]) => void) | undefined;
  const observer: typeof obs.observer = { ...obs.observer, event: (e) => {
    obs.observer.event(e);
    dashboardEvent?.(e);
  } };
  const { autoscaler } = obs;
  undo.push(() => obs.observer.close(), () => obs.autoscaler.close());
  /** How this manager calls its peers: its own certificate (swapped in place on renewal). */
  const peerSecurity = { mode: 'mtls' as const, ...ident.bundle };
  const clusterName = () => cache.cluster?.clusterId || 'default';

  // Secrets and configs are sealed under the same key-encryption key as the CA's key.
  const kek = ident.kek;
  const dispatcher = createDispatcher({ store, cache, heartbeatMs, natsUrl: () => natsUrl, managerId: id, log, observer, kek });
  const control = createControl({ store, cache, managerId: id, tokensFile, bindDenied: [path.resolve(opts.dataDir), ...(opts.kekFile ? [path.resolve(opts.kekFile)] : [])], natsUrl: () => natsUrl, log, observer, kek, peerSecurity, ca: ident.ca, issuer: ident.ca, nodeUsage: obs.nodeUsage });
  const leader = createLeader({ store, cache, managerId: id, log, observer, autoscaler });
  // The embedded NATS admits this manager, every node in the store (by its role), every user in the
  // store (convoy user create: by the role its certificate names) and natsUsers().
  const natsCluster = identityFromCert(natsTls.cert);
  const syncNatsUsers = async () => {
    if (!embeddedNats || !natsCluster) return;
    const ids: NatsIdentity[] = [natsCluster];
    // A node is admitted by the subject its certificate names (OU=worker, or OU=manager for an agent joined
    // with the manager token), which its placement role (node promote|demote, an agent on a manager's host)
    // does not change; its rights follow the placement role. So every node is a user under both subjects:
    // OU=worker with a worker's rights, OU=manager with a manager's when it is placed as one and a worker's
    // when not (a demoted manager-token node keeps NATS, as a worker). Only the CA issues OU=manager
    // certificates, so the second entry admits no one the CA did not make a manager.
    for (const n of cache.nodes.values()) {
      ids.push({ id: n.id, role: 'worker', cluster: natsCluster.cluster });
      ids.push({ id: n.id, role: 'manager', cluster: natsCluster.cluster, as: n.spec?.role === 'MANAGER' ? 'manager' : 'worker' });
    }
    // Every manager of the cluster (they share this NATS when they share an etcd), and the admin bundle's identity.
    for (const [mid] of cache.managers) if (mid !== natsCluster.id) ids.push({ id: mid, role: 'manager', cluster: natsCluster.cluster });
    ids.push({ id: ADMIN_ID, role: 'admin', cluster: natsCluster.cluster });
    for (const u of cache.users.values()) if (isUserRole(u.role)) ids.push({ id: u.name, role: u.role, cluster: natsCluster.cluster });
    for (const u of opts.natsUsers?.() ?? []) ids.push(u);
    await embeddedNats.setIdentities(ids);
  };
  let natsSync: NodeJS.Timeout | undefined;
  undo.push(() => natsSync && clearTimeout(natsSync));
  cache.onChange((c) => {
    dispatcher.onChange(c);
    leader.onChange(c);
    if ((c.nodes.size || c.managers || c.users || c.reset) && embeddedNats && !natsSync) {
      natsSync = setTimeout(() => {
        natsSync = undefined;
        syncNatsUsers().catch((e) => log.warn('NATS users not updated', { err: errMsg(e) }));
      }, NATS_USERS_DEBOUNCE_MS);
    }
  });
  await syncNatsUsers().catch((e) => log.warn('NATS users not updated', { err: errMsg(e) }));
  const pk = grpcPackages();

  // ---- gRPC servers ------------------------------------------------------
  // Roles on every call, the audit trail, the root-only unix socket (manager/auth/).
  const secured = await secureControl({ dataDir: opts.dataDir, managerId: id, service: pk.control.convoy.Control.service, handlers: control, observer, socket: opts.socket, plaintext: false, issuer: ident.ca, log });
  undo.push(() => secured.close());
  // The mutual-TLS listener: everything; client certificates verified at the handshake, identities at every call.
  const mtlsCreds = new SwappableServerCredentials(mtlsContext(ident.bundle), true, [identityGate({ cluster: clusterName, isRevoked: (w) => ident.ca.isRevoked(w) })]);
  const server = new grpc.Server(SERVER_OPTIONS);
  undo.push(() => server.forceShutdown());
  server.addService(pk.control.convoy.Control.service, secured.handlers);
  server.addService(dispatcherService(), dispatcher.handlers);
  const caDeps = { ca: ident.ca, cache, kek: ident.kek, log };
  server.addService(pk.ca.convoy.CertRenewal.service, certRenewalHandlers(caDeps));
  const port = await new Promise<number>((resolve, reject) => server.bindAsync(opts.listen, mtlsCreds, (err, p) => (err ? reject(err) : resolve(p))));
  // The join listener: TLS with our certificate, no client certificate; GetRootCA and Join only.
  const joinCreds = new SwappableServerCredentials(joinContext(ident.bundle), false);
  const joinServer = new grpc.Server();
  undo.push(() => joinServer.forceShutdown());
  joinServer.addService(pk.ca.convoy.NodeCA.service, nodeCaHandlers(caDeps));
  const joinListen = opts.joinListen ?? `${listenHost}:${listenPort ? listenPort + 3 : 0}`;
  const joinPort = await new Promise<number>((resolve, reject) => joinServer.bindAsync(joinListen, joinCreds, (err, p) => (err ? reject(err) : resolve(p))));
  // The web dashboard: HTTPS with the same certificates and identities as the Control API (docs/dashboard.md).
  let dashboard: DashboardServer | undefined;
  const dashboardListen = opts.dashboardListen ?? `${listenHost}:${listenPort ? listenPort + 4 : 0}`;
  if (dashboardListen) {
    dashboard = await startManagerDashboard({ listen: dashboardListen, bundle: ident.bundle, service: pk.control.convoy.Control.service, handlers: secured.handlers, cache, link: obs.link, cluster: clusterName, isRevoked: (w) => ident.ca.isRevoked(w), log });
    undo.push(() => dashboard?.close());
    dashboardEvent = (e) => dashboard?.handler.event(e);
  }
  const host = listenHost;
  const grpcAddr = opts.advertiseAddr ?? `${host === '0.0.0.0' ? '127.0.0.1' : host}:${port}`;
  const joinAddr = `${grpcAddr.slice(0, grpcAddr.lastIndexOf(':'))}:${joinPort}`;

  // Renewal of our own certificate at 50-80% of its life: both listeners take the new one for new connections.
  let cancelRenewal: (() => void) | undefined;
  const scheduleRenewal = (notBefore: number, notAfter: number) => {
    cancelRenewal = runAt(Math.max(Date.now() + 1_000, renewalTime(notBefore, notAfter)), () => {
      ident.reissue().then(
        (r) => {
          mtlsCreds.swap(mtlsContext(r.bundle));
          joinCreds.swap(joinContext(r.bundle));
          dashboard?.swap(r.bundle);
          Object.assign(peerSecurity, r.bundle);
          // NATS (the embedded server's certificate, our own client) and --metrics-tls use it too,
          // unless a bundle of their own was given (tests).
          if (!opts.natsTls) embeddedNats?.setTls(r.bundle).catch((e: unknown) => log.warn('embedded NATS kept its old certificate', { err: errMsg(e) }));
          obsRef?.renewed({ nats: opts.natsTls ? undefined : r.bundle, metrics: opts.metricsTls ? undefined : r.bundle });
          log.info('manager certificate renewed', { notAfter: new Date(r.notAfter).toISOString() });
          scheduleRenewal(r.notBefore, r.notAfter);
        },
        (e: unknown) => {
          log.warn('manager certificate renewal failed; retrying', { err: errMsg(e) });
          scheduleRenewal(Date.now(), Date.now() + 20_000);
        },
      );
    });
  };
  scheduleRenewal(ident.notBefore, ident.notAfter);
  undo.push(() => cancelRenewal?.());
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

  log.info('manager started', { addr: grpcAddr, etcd: endpoints.join(','), nats: natsUrl, metrics: obs.metricsAddr ?? '', dashboard: dashboard?.addr ?? '' });
  return {
    id,
    grpcAddr,
    joinAddr,
    tlsDir: path.join(opts.dataDir, TLS_SUBDIR),
    adminDir: path.join(opts.dataDir, ADMIN_SUBDIR),
    caFingerprint: ident.ca.fingerprint,
    etcdEndpoints: endpoints,
    etcdTls,
    natsUrl,
    metricsAddr: obs.metricsAddr,
    dashboardAddr: dashboard?.addr,
    syncNatsUsers,
    socketPath: secured.socket?.path,
    isLeader: () => leading,
    async stop() {
      stopped = true;
      if (natsSync) clearTimeout(natsSync);
      if (restand) clearTimeout(restand);
      leading = false;
      leader.stop();
      cancelRenewal?.();
      dispatcher.close();
      server.forceShutdown();
      await dashboard?.close();
      await secured.close();
      joinServer.forceShutdown();
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
