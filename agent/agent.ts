// The agent: ties the session with the managers, the task controllers, the
// executor (runtime), host networking and event publishing together.
import { status as grpcStatus } from '@grpc/grpc-js';
import type { NetworkState, NodeDescription } from '../proto/mod';
import { errMsg, nullLogger, type Logger } from '../common/logger';
import type { TlsBundle } from '../common/identity';
import { nullEventSink, type EventSink } from '../proto/events';
import type { Executor, NetworkAttacher, NetworkProgrammer } from './executor';
import { HollowExecutor } from './hollow/executor';
import { ContainerExecutor, type ContainerExecutorOptions } from './runtime/executor';
import { FileValues } from './files/values';
import { hostAddresses, listeningPorts } from './network/listening';
import { StatusReporter, type ReporterOptions } from './controller/reporter';
import { Worker } from './controller/worker';
import { DispatcherSession, type SessionInfo } from './session/session';
import type { DispatcherClientPool } from './session/client-pool';
import type { JoinRefusedError } from './session/errors';
import { loadNodeId, saveNodeId } from './state/node-state';
import { AgentObservability } from './observe/mod';
import { agentSocketPath, DEFAULT_RUN_DIR, startExecServer, type ExecServer } from './exec/mod';
import { DEFAULT_STATE_DIR } from '../proto/defaults';
import { mtls, type ClientSecurity } from '../proto/client';
import { renewCertificate, renewalTime, runAt } from '../proto/join';
import { loadOrJoin, identityOfBundle, saveBundle, type NodeIdentity } from './session/identity';

/** Wait before a failed network programming is tried again (with the same state, unless a newer one came). */
export const NETWORK_APPLY_RETRY_MS = 1000;

export { DEFAULT_STATE_DIR };

export interface AgentOptions {
  /** Manager gRPC addresses (host:port); the first reachable one is used, the others are failover targets. */
  managers: string[];
  /** Needed once, to join (no certificate in <stateDir>/tls yet); a joined node authenticates with its certificate. */
  joinToken?: string;
  /** host:port of a manager's join listener. Default: the first manager's host, its port + 3 (7423). */
  joinAddr?: string;
  /**
   * Unit tests against a plaintext fake manager only: dial with this and skip
   * the join (the token then goes in the Session request, as the fake checks it).
   */
  testSecurity?: ClientSecurity;
  /** Where node.json (and the runtime's state) live. Default /var/lib/convoy. */
  stateDir?: string;
  /** Node hostname; default: what the executor reports. */
  hostname?: string;
  /** Underlay address other nodes reach this one at. */
  advertiseAddr: string;
  labels?: Record<string, string>;
  /** 'container' = Convoy's runtime; 'hollow' = pretend (scale tests); or an Executor instance (the caller owns it). */
  executor: 'container' | 'hollow' | Executor;
  /** Extra options of the container runtime (insecure registries, credentials, log rotation...). */
  runtime?: Omit<ContainerExecutorOptions, 'stateDir' | 'network' | 'logger'>;
  /** Host networking: the attacher goes to the container executor; the programmer gets every NetworkState. */
  network?: { attacher: NetworkAttacher; programmer: NetworkProgrammer };
  /** Task state events are published here. */
  events?: EventSink;
  /**
   * Called on every (re)established session: the node id and the NATS URL the
   * managers advertise are known from here on (log/stat shippers connect then).
   */
  onSession?: (info: { nodeId: string; natsUrl: string; manager: string }) => void;
  /** host:port for /metrics (served by agent/metrics). */
  metricsListen?: string;
  /** --metrics-tls: serve /metrics only with mutual TLS; needs metricsTls. */
  metricsMutualTls?: boolean;
  /** The certificate /metrics is served with under mutual TLS (this node's own), and the cluster CA. */
  metricsTls?: TlsBundle;
  /** NATS URL for events, stats and logs instead of the one the managers advertise (agent/observe). */
  natsUrl?: string;
  /**
   * This node's certificate (OU=worker, CN=node id) and the cluster CA for
   * NATS, read at every (re)connect so a renewed one is used; without it the
   * agent stays off NATS (no plaintext link).
   */
  natsTls?: () => TlsBundle | undefined;
  /**
   * Where the local socket for `convoy task exec` goes: <dir>/agent-<node id>.sock
   * (agent/exec, proto/agent.proto). Default /run/convoy; '' = no socket.
   * Only served when the executor can exec (the container runtime).
   */
  runDir?: string;
  logger?: Logger;
  /** Status batching knobs (tests, benchmarks). */
  reporter?: ReporterOptions;
  /** Dispatcher client pool (default: one per process, shared by every agent in it). */
  pool?: DispatcherClientPool;
  /** Aborts a startAgent() still waiting for its first session. */
  signal?: AbortSignal;
  /**
   * The host's listening ports and addresses for the node description.
   * Default: read at start (/proc/net, the interfaces). The hollow fleet
   * reads them once for its thousand agents of one host: with their
   * connections open /proc/net/tcp is thousands of lines (~17 ms a read).
   */
  hostFacts?: () => HostFacts;
}

/** What the node description says of the host's network (agent/network/listening.ts). */
export type HostFacts = ReturnType<typeof listeningPorts> & { addresses: string[] };

/** The host's listening ports and addresses, read now. */
export function readHostFacts(): HostFacts {
  return { ...listeningPorts(), addresses: hostAddresses() };
}

export interface AgentHandle {
  /** The node id the managers gave this agent ('' before the first join). */
  nodeId(): string;
  /** NATS URL the managers advertise ('' = none). */
  natsUrl(): string;
  /** The manager the current session is held with (undefined while reconnecting). */
  manager(): string | undefined;
  /** Stops the agent. Idempotent. Containers keep running, to be adopted by the next agent on this host. */
  stop(): Promise<void>;
  /** Resolves when the agent was stopped; rejects (JoinRefusedError) when the managers refused it for good. */
  done: Promise<void>;
  /** The executor in use (tests inspect a HollowExecutor through it). */
  readonly executor: Executor;
  /** Sessions established so far (1 = first join, more = reconnects). */
  sessions(): number;
}

/** The runtime's ContainerExecutor (agent/runtime/executor.ts), with the agent's state dir, attacher and logger. */
function createContainerExecutor(opts: AgentOptions, stateDir: string, logger: Logger, files: FileValues, bindAllow: () => readonly string[] | undefined): Executor {
  // With host networking the agent receives the cluster's NetworkState, and with it the bind allow list.
  return new ContainerExecutor({ ...opts.runtime, stateDir, network: opts.network?.attacher, logger, files, bindAllow: opts.network ? bindAllow : undefined });
}

export class Agent implements AgentHandle {
  readonly executor: Executor;
  readonly done: Promise<void>;
  private readonly ownsExecutor: boolean;
  private readonly stateDir: string;
  private readonly log: Logger;
  private readonly events: EventSink;
  private readonly reporter: StatusReporter;
  private readonly worker: Worker;
  /** Secrets and configs of this node's tasks: memory only (agent/files/values.ts). */
  readonly files = new FileValues();
  private session: DispatcherSession | undefined;
  private id = '';
  private nats = '';
  private stopping: Promise<void> | undefined;
  private resolveDone!: () => void;
  private rejectDone!: (e: Error) => void;
  private firstSession: { resolve: () => void; reject: (e: Error) => void } | undefined;
  private netLatest: NetworkState | undefined;
  /** The cluster's bind allow list from the newest NetworkState (undefined until one arrives). */
  private bindAllow: string[] | undefined;
  private netApplying = false;
  /** A failed programming's retry (the manager sends a state only when it changes, so a failure is retried here). */
  private netRetry: NodeJS.Timeout | undefined;
  /** /metrics, and events, stats and logs over NATS (agent/observe). */
  private readonly obs: AgentObservability;
  private execServer: Promise<ExecServer | undefined> | undefined;
  private identity: NodeIdentity | undefined;
  private security: ClientSecurity | undefined;
  private cancelRenewal: (() => void) | undefined;

  constructor(private readonly opts: AgentOptions) {
    if (opts.metricsMutualTls && opts.metricsListen && !opts.metricsTls) throw new Error('--metrics-tls: no certificate to serve /metrics with (metricsTls)');
    this.stateDir = opts.stateDir ?? DEFAULT_STATE_DIR;
    this.log = opts.logger ?? nullLogger;
    this.obs = new AgentObservability({
      executor: () => this.executor,
      tasks: () => this.worker.taskIds().flatMap((id) => {
        const c = this.worker.controller(id);
        return c ? [{ task: c.current, state: c.state }] : [];
      }),
      nodeId: () => this.id,
      // Hollow fleets (thousands of agents in one process) stay off NATS.
      nats: () => !(this.executor instanceof HollowExecutor),
      metricsListen: opts.metricsListen,
      metricsTls: opts.metricsMutualTls ? opts.metricsTls : undefined,
      // NATS with the node's own certificate (from the cluster CA at join, renewed in place); opts.natsTls overrides it (tests).
      natsTls: opts.natsTls ?? (() => this.identity?.bundle),
      logger: this.log,
    });
    this.events = this.obs.sink(opts.events ?? nullEventSink);
    if (opts.executor === 'hollow') {
      this.executor = new HollowExecutor({ hostname: opts.hostname });
      this.ownsExecutor = true;
    } else if (opts.executor === 'container') {
      this.executor = createContainerExecutor(opts, this.stateDir, this.log.child({ component: 'runtime' }), this.files, () => this.bindAllow);
      this.ownsExecutor = true;
    } else {
      this.executor = opts.executor;
      this.ownsExecutor = false;
    }
    this.done = new Promise<void>((resolve, reject) => {
      this.resolveDone = resolve;
      this.rejectDone = reject;
    });
    this.done.catch(() => {}); // observed through startAgent / the handle; never an unhandled rejection
    this.reporter = new StatusReporter((batch) => this.sendStatus(batch), { logger: this.log, ...opts.reporter });
    this.worker = new Worker({
      executor: this.executor,
      reporter: this.reporter,
      events: this.events,
      nodeId: () => this.id,
      logger: this.log,
    });
  }

  nodeId(): string {
    return this.id;
  }

  natsUrl(): string {
    return this.nats;
  }

  manager(): string | undefined {
    return this.session?.manager;
  }

  sessions(): number {
    return this.session?.sessions ?? 0;
  }

  /** Resolves once the first session is established; rejects when the join is refused. */
  async start(): Promise<void> {
    this.id = await loadNodeId(this.stateDir);
    if (this.opts.testSecurity) this.security = this.opts.testSecurity;
    else {
      const first = this.opts.managers[0] ?? '';
      const joinAddr = this.opts.joinAddr ?? `${first.slice(0, first.lastIndexOf(':'))}:${Number(first.slice(first.lastIndexOf(':') + 1)) + 3}`;
      try {
        this.identity = await loadOrJoin({ stateDir: this.stateDir, joinToken: this.opts.joinToken, joinAddr, log: this.log, signal: this.opts.signal });
      } catch (e) {
        this.rejectDone(e as Error);
        throw e;
      }
      this.security = mtls(this.identity.bundle);
      if (!natsTlsGiven(this.opts)) this.obs.tlsChanged();
      // The certificate names the node: it is the node id from now on.
      if (this.identity.nodeId !== this.id) {
        this.id = this.identity.nodeId;
        await saveNodeId(this.stateDir, this.id);
      }
      this.scheduleRenewal();
    }
    await this.worker.init();
    await this.obs.start();
    const info = await this.executor.describe();
    const description: NodeDescription = {
      hostname: this.opts.hostname ?? info.hostname,
      platform: { os: info.os, arch: info.arch },
      resources: { nanoCpus: info.nanoCpus, memoryBytes: info.memoryBytes, pids: 0 },
      engineLabels: info.engineLabels,
      ...(this.opts.hostFacts ?? readHostFacts)(),
    };
    const first = new Promise<void>((resolve, reject) => {
      this.firstSession = { resolve, reject };
    });
    this.session = new DispatcherSession({
      managers: this.opts.managers,
      security: () => this.security!,
      joinToken: this.opts.joinToken ?? '',
      nodeId: this.id,
      description,
      addr: this.opts.advertiseAddr,
      labels: this.opts.labels ?? {},
      network: !!this.opts.network,
      logger: this.log,
      pool: this.opts.pool,
      handlers: {
        onEstablished: (s) => this.onEstablished(s),
        onAssignments: (r) => {
          // Values first: the tasks of the same message may need them.
          if (r.kind === 'complete') this.files.replace(r.files?.updates ?? []);
          else if (r.files) this.files.apply(r.files);
          if (r.kind === 'complete') this.worker.applyComplete(r.tasks);
          else this.worker.applyIncremental(r.updates, r.removes);
        },
        onNetwork: (st) => this.onNetwork(st),
        onFatal: (e) => this.onFatal(e),
      },
    });
    const onAbort = () => this.firstSession?.reject(new Error('agent start aborted'));
    this.opts.signal?.addEventListener('abort', onAbort, { once: true });
    this.session.start();
    try {
      await first;
    } catch (e) {
      await this.stop();
      throw e;
    } finally {
      this.opts.signal?.removeEventListener('abort', onAbort);
    }
  }

  stop(): Promise<void> {
    if (!this.stopping) this.stopping = this.doStop();
    return this.stopping;
  }

  private async doStop(): Promise<void> {
    // Last statuses first, while the session may still be up (best effort).
    if (this.session?.manager && this.reporter.size > 0) {
      await Promise.race([this.reporter.flush(), new Promise((r) => setTimeout(r, 1_000).unref())]);
    }
    this.cancelRenewal?.();
    if (this.netRetry) clearTimeout(this.netRetry);
    this.worker.close();
    this.reporter.close();
    this.files.clear();
    await this.session?.stop();
    await this.obs.close().catch((e: unknown) => this.log.warn('observability close failed', { err: errMsg(e) }));
    await (await this.execServer?.catch(() => undefined))?.close();
    if (this.ownsExecutor) await this.executor.close().catch((e: unknown) => this.log.warn('executor close failed', { err: errMsg(e) }));
    this.log.info('agent stopped', { 'node.id': this.id });
    this.firstSession?.reject(new Error('agent stopped before it joined'));
    this.resolveDone();
  }

  /** Renews the node certificate at 50-80% of its life over the current session's manager; retries on failure. */
  private scheduleRenewal(retryAt?: number): void {
    const id = this.identity;
    if (!id || this.stopping) return;
    // Never sooner than a second from now (a certificate already past its renewal point renews at once, once).
    const at = Math.max(Date.now() + 1_000, retryAt ?? renewalTime(id.notBefore, id.notAfter));
    this.cancelRenewal = runAt(at, () => {
      const addr = this.session?.manager ?? this.opts.managers[0];
      renewCertificate(addr, id.bundle).then(
        (r) => {
          if (this.stopping) return;
          saveBundle(this.stateDir, r.bundle);
          this.identity = identityOfBundle(r.bundle);
          this.security = mtls(r.bundle);
          if (!natsTlsGiven(this.opts)) this.obs.tlsChanged();
          this.log.info('node certificate renewed', { 'node.id': this.id, notAfter: new Date(r.notAfter).toISOString() });
          this.session?.credentialsChanged();
          this.scheduleRenewal();
        },
        (e: unknown) => {
          // Again after a tenth of what is left (at least 5 s): the old certificate is still good meanwhile.
          const left = Math.max(0, id.notAfter - Date.now());
          this.log.warn('node certificate renewal failed; retrying', { err: errMsg(e) });
          this.scheduleRenewal(Date.now() + Math.max(5_000, left / 10));
        },
      );
    });
  }

  /** Certificate renewals so far are visible through this (tests): the current certificate's not-after. */
  certificateNotAfter(): number | undefined {
    return this.identity?.notAfter;
  }

  private sendStatus(batch: { taskId: string; status: import('../proto/mod').TaskStatus }[]): Promise<void> {
    if (!this.session) return Promise.reject(new Error('not started'));
    return this.session.sendStatus(batch).catch((e: unknown) => {
      // A batch the manager will never accept must not block the ones after it.
      const code = (e as { code?: unknown }).code;
      if (code === grpcStatus.INVALID_ARGUMENT || code === grpcStatus.FAILED_PRECONDITION) {
        this.log.warn('status batch refused by the manager, dropped', { err: errMsg(e), updates: batch.length });
        return;
      }
      throw e;
    });
  }

  private onEstablished(s: SessionInfo): void {
    this.nats = s.natsUrl;
    if (s.nodeId && s.nodeId !== this.id) {
      this.id = s.nodeId;
      saveNodeId(this.stateDir, s.nodeId).catch((e: unknown) =>
        this.log.warn('could not remember the node id', { err: errMsg(e), dir: this.stateDir }),
      );
    }
    this.reporter.kick();
    this.obs.session(s.nodeId || this.id, this.opts.natsUrl || s.natsUrl);
    this.serveExec();
    try {
      this.opts.onSession?.({ nodeId: s.nodeId, natsUrl: s.natsUrl, manager: s.manager });
    } catch (e) {
      this.log.warn('onSession callback failed', { err: errMsg(e) });
    }
    const f = this.firstSession;
    this.firstSession = undefined;
    f?.resolve();
  }

  private onFatal(e: JoinRefusedError): void {
    this.firstSession?.reject(e);
    this.firstSession = undefined;
    this.rejectDone(e);
    void this.stop();
  }

  /** Applies NetworkState snapshots one at a time; a burst collapses to the newest. */
  private onNetwork(st: NetworkState): void {
    this.obs.network(st);
    this.bindAllow = st.bindAllow ?? [];
    if (!this.opts.network?.programmer) return;
    this.netLatest = st;
    if (this.netRetry) clearTimeout(this.netRetry);
    this.netRetry = undefined;
    this.programNetwork();
  }

  private programNetwork(): void {
    const programmer = this.opts.network?.programmer;
    if (!programmer || this.netApplying) return;
    this.netApplying = true;
    void (async () => {
      while (this.netLatest) {
        const next = this.netLatest;
        this.netLatest = undefined;
        try {
          await programmer.apply(next);
        } catch (e) {
          this.log.warn('network programming failed, retrying', { err: errMsg(e), version: next.version, retryMs: NETWORK_APPLY_RETRY_MS });
          // The manager sends a state only when it changes: a failure is retried here, unless a
          // newer state comes first (it replaces this one).
          if (!this.netLatest && !this.stopping) {
            this.netRetry = setTimeout(() => {
              this.netRetry = undefined;
              if (this.stopping || this.netLatest) return;
              this.netLatest = next;
              this.programNetwork();
            }, NETWORK_APPLY_RETRY_MS);
            this.netRetry.unref();
          }
        }
      }
      this.netApplying = false;
    })();
  }

  /** The local exec socket, once the node id is known (and again should it change). */
  private serveExec(): void {
    const dir = this.opts.runDir ?? DEFAULT_RUN_DIR;
    const target = this.executor instanceof ContainerExecutor ? this.executor : undefined;
    if (!dir || !target || this.stopping) return;
    const socketPath = agentSocketPath(dir, this.id);
    const previous = this.execServer;
    this.execServer = (async () => {
      const old = await previous?.catch(() => undefined);
      if (old?.socketPath === socketPath) return old;
      await old?.close();
      return startExecServer({ socketPath, target, logger: this.log.child({ component: 'exec' }) });
    })().catch((e: unknown) => {
      this.log.warn('local exec socket not served', { err: errMsg(e), path: socketPath });
      return undefined;
    });
  }

  /** The bundle natsTls() returns changed (first issued, renewed): NATS reconnects with it. */
  natsTlsChanged(): void {
    this.obs.tlsChanged();
  }

  /** host:port the agent's /metrics is served on (undefined without metricsListen). */
  metricsAddr(): string | undefined {
    return this.obs.metricsAddr;
  }

  /** Test/bench access to the worker. */
  get tasks(): Worker {
    return this.worker;
  }
}

/** Whether the caller gave NATS credentials of its own (then the node certificate is not NATS's). */
function natsTlsGiven(o: AgentOptions): boolean {
  return o.natsTls !== undefined;
}
