// The agent's session with the managers (Dispatcher API client).
//
// One attempt = Session stream opened on one manager + heartbeats +
// Assignments stream (+ Network stream when the agent programs the host).
// An attempt ends when any of them fails; then:
//   - PERMISSION_DENIED on Session (wrong/rotated token): fatal, JoinRefusedError, no retry;
//   - NOT_FOUND "session invalid" on any call: re-register (same manager), after a short backoff;
//   - anything else (stream ended, manager gone, deadline): next manager in the list, after backoff.
// The backoff resets once a session proved healthy (a heartbeat went through).
import type { NetworkState, Node, NodeDescription } from '../../proto/mod';
import type { ClientSecurity } from '../../proto/client';
import { nullLogger, type Logger } from '../../common/logger';
import { AssignmentTracker, type AssignmentsResult } from './assignments';
import { Backoff } from './backoff';
import { sharedClientPool, type ClientLease, type DispatcherClientPool } from './client-pool';
import {
  NotConnectedError,
  SessionInvalidError,
  classifyGrpcError,
  grpcDetails,
  joinRefused,
  type JoinRefusedError,
} from './errors';

/** Used until the manager tells us its period. */
export const DEFAULT_HEARTBEAT_PERIOD_MS = 5_000;
/**
 * Heartbeat this fraction into the period: the contract is "call again within
 * the period", and the remaining fifth absorbs RPC latency and timer drift.
 */
export const HEARTBEAT_FRACTION = 0.8;
/** Deadline of unary calls (Heartbeat, UpdateTaskStatus). A manager slower than this is as good as gone. */
export const RPC_TIMEOUT_MS = 5_000;
/** How long a manager may take to send the first Session message (it registers the node in etcd first). */
export const SESSION_OPEN_TIMEOUT_MS = 10_000;
/** Retry delay of the Network stream while the session itself is fine. */
export const NETWORK_RETRY_MS = 1_000;

export interface SessionInfo {
  sessionId: string;
  nodeId: string;
  node: Node | null;
  /** Manager addresses, in failover order. */
  managers: string[];
  natsUrl: string;
  /** The manager this session is held with. */
  manager: string;
}

export interface SessionHandlers {
  /** A session was established (first time or after a reconnect). */
  onEstablished(info: SessionInfo): void;
  /** A COMPLETE or INCREMENTAL assignments message was applied (gaps are handled here). */
  onAssignments(result: Exclude<AssignmentsResult, { kind: 'gap' }>): void;
  /** A NetworkState snapshot (only when network: true). */
  onNetwork?(state: NetworkState): void;
  /** The join was refused; the session stopped for good. */
  onFatal(err: JoinRefusedError): void;
}

export interface SessionOptions {
  managers: string[];
  /** The credentials to dial with now (the node's certificate; renewed ones once renewed). */
  security: () => ClientSecurity;
  /** Sent in the Session request only to plaintext test doubles (real managers take the node from its certificate). */
  joinToken: string;
  /** Remembered node id ('' for a new node). */
  nodeId: string;
  description: NodeDescription;
  /** Underlay address other nodes reach this one at. */
  addr: string;
  labels: Record<string, string>;
  /** Open the Network stream. */
  network: boolean;
  handlers: SessionHandlers;
  logger?: Logger;
  pool?: DispatcherClientPool;
  random?: () => number;
}

type Outcome =
  | { kind: 'stopped' }
  | { kind: 'fatal'; err: JoinRefusedError }
  | { kind: 'invalid'; err: unknown }
  | { kind: 'failed'; err: unknown };

interface Attempt {
  addr: string;
  lease: ClientLease;
  sessionId: string;
  finish(o: Outcome): void;
}

/** Addresses a client cannot dial (a manager advertising its wildcard listen address). */
function dialable(addr: string): boolean {
  return !!addr && !/^(0\.0\.0\.0|\[::\]|::|):/.test(addr);
}

export class DispatcherSession {
  private managers: string[];
  private nodeId: string;
  private current: Attempt | undefined;
  private stopped = false;
  private wake: (() => void) | undefined;
  private readonly backoff: Backoff;
  private readonly pool: DispatcherClientPool;
  private readonly log: Logger;
  private loop: Promise<void> | undefined;
  /** Sessions established so far (1 = first join; more = reconnects). */
  sessions = 0;

  constructor(private readonly opts: SessionOptions) {
    if (!opts.managers.length) throw new Error('no manager address given');
    this.managers = [...opts.managers];
    this.nodeId = opts.nodeId;
    this.backoff = new Backoff(undefined, undefined, opts.random);
    this.pool = opts.pool ?? sharedClientPool;
    this.log = opts.logger ?? nullLogger;
  }

  /** Manager addresses known now, in failover order. */
  get managerList(): string[] {
    return [...this.managers];
  }

  /** The manager the current session is held with, if any. */
  get manager(): string | undefined {
    return this.current?.sessionId ? this.current.addr : undefined;
  }

  start(): void {
    if (!this.loop) this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.current?.finish({ kind: 'stopped' });
    this.wake?.();
    await this.loop;
  }

  /**
   * The node's certificate was renewed: the current session moves to a
   * channel with the new one (re-registers at once; tasks keep running).
   */
  credentialsChanged(): void {
    this.current?.finish({ kind: 'invalid', err: new Error('certificate renewed: reconnecting with it') });
  }

  /** Sends one batch of status updates on the current session. */
  sendStatus(updates: { taskId: string; status: import('../../proto/mod').TaskStatus }[]): Promise<void> {
    const a = this.current;
    if (!a || !a.sessionId) return Promise.reject(new NotConnectedError());
    return new Promise((resolve, reject) => {
      a.lease.client.UpdateTaskStatus(
        { sessionId: a.sessionId, updates },
        { deadline: Date.now() + RPC_TIMEOUT_MS },
        (err) => {
          if (!err) return resolve();
          if (classifyGrpcError(err) === 'invalid') {
            a.finish({ kind: 'invalid', err });
            return reject(new SessionInvalidError('session invalid', err));
          }
          reject(err);
        },
      );
    });
  }

  private async run(): Promise<void> {
    let addr = this.managers[0];
    while (!this.stopped) {
      const outcome = await this.attempt(addr);
      if (outcome.kind === 'stopped' || this.stopped) return;
      if (outcome.kind === 'fatal') {
        this.log.error(outcome.err.message, { manager: addr });
        this.stopped = true;
        this.opts.handlers.onFatal(outcome.err);
        return;
      }
      if (outcome.kind === 'failed') addr = this.nextManager(addr);
      const delay = this.backoff.next();
      this.log.warn(outcome.kind === 'invalid' ? 'session invalid, registering again' : 'session lost, reconnecting', {
        err: grpcDetails(outcome.err),
        'next.manager': addr,
        'backoff.ms': delay,
      });
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, delay);
        this.wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
      this.wake = undefined;
    }
  }

  private nextManager(addr: string): string {
    const i = this.managers.indexOf(addr);
    return this.managers[(i + 1) % this.managers.length];
  }

  private mergeManagers(peers: { addr: string }[]): void {
    const list: string[] = [];
    for (const a of [...peers.map((p) => p.addr), ...this.opts.managers]) {
      if (dialable(a) && !list.includes(a)) list.push(a);
    }
    if (list.length) this.managers = list;
  }

  private attempt(addr: string): Promise<Outcome> {
    return new Promise<Outcome>((resolve) => {
      const security = this.opts.security();
      const lease = this.pool.acquire(addr, security);
      const client = lease.client;
      const calls: { cancel(): void }[] = [];
      const timers = new Set<NodeJS.Timeout>();
      let done = false;
      let heartbeatOk = false;
      let period = DEFAULT_HEARTBEAT_PERIOD_MS;
      const tracker = new AssignmentTracker();
      const log = this.log.child({ manager: addr });

      const later = (ms: number, fn: () => void) => {
        const t = setTimeout(() => {
          timers.delete(t);
          fn();
        }, ms);
        timers.add(t);
      };

      const attempt: Attempt = {
        addr,
        lease,
        sessionId: '',
        finish: (o: Outcome) => {
          if (done) return;
          done = true;
          for (const t of timers) clearTimeout(t);
          timers.clear();
          for (const c of calls) c.cancel();
          if (this.current === attempt) this.current = undefined;
          lease.release();
          resolve(o);
        },
      };
      this.current = attempt;
      const finish = attempt.finish;

      /** Stream failures: NOT_FOUND → re-register, the rest → fail over. */
      const streamOutcome = (err: unknown): Outcome =>
        classifyGrpcError(err) === 'invalid' ? { kind: 'invalid', err } : { kind: 'failed', err };

      const heartbeat = () => {
        if (done) return;
        client.Heartbeat({ sessionId: attempt.sessionId }, { deadline: Date.now() + RPC_TIMEOUT_MS }, (err, res) => {
          if (done) return;
          if (err) return finish(streamOutcome(err));
          if (!heartbeatOk) {
            heartbeatOk = true;
            this.backoff.reset();
          }
          if (res && res.periodMs > 0) period = res.periodMs;
          later(period * HEARTBEAT_FRACTION, heartbeat);
        });
      };

      const openAssignments = () => {
        if (done) return;
        tracker.reset();
        const call = client.Assignments({ sessionId: attempt.sessionId });
        calls.push(call);
        let cancelled = false;
        call.on('data', (msg) => {
          if (done || cancelled) return;
          const r = tracker.apply(msg);
          if (r.kind === 'gap') {
            log.warn('assignments gap, resyncing', { expected: r.expected ?? '', got: r.got });
            cancelled = true;
            call.cancel();
            calls.splice(calls.indexOf(call), 1);
            openAssignments();
            return;
          }
          this.opts.handlers.onAssignments(r);
        });
        call.on('error', () => {});
        call.on('status', (st) => {
          if (done || cancelled) return;
          finish(st.code === 0 ? { kind: 'failed', err: new Error('assignments stream ended') } : streamOutcome(st));
        });
      };

      const openNetwork = () => {
        if (done || !this.opts.network) return;
        const call = client.Network({ sessionId: attempt.sessionId });
        calls.push(call);
        call.on('data', (st) => {
          if (!done) this.opts.handlers.onNetwork?.(st);
        });
        call.on('error', () => {});
        call.on('status', (st) => {
          if (done) return;
          calls.splice(calls.indexOf(call), 1);
          if (classifyGrpcError(st) === 'invalid') return finish({ kind: 'invalid', err: st });
          if (st.code === 12 /* UNIMPLEMENTED */) {
            log.warn('manager does not serve the Network stream');
            return;
          }
          log.warn('network stream ended, reopening', { err: grpcDetails(st) });
          later(NETWORK_RETRY_MS, openNetwork);
        });
      };

      const req = {
        description: this.opts.description,
        joinToken: security.mode === 'plaintext-test' ? this.opts.joinToken : '',
        nodeId: this.nodeId,
        addr: this.opts.addr,
        labels: this.opts.labels,
      };
      try {
        const call = client.Session(req);
        calls.push(call);
        later(SESSION_OPEN_TIMEOUT_MS, () => {
          if (!attempt.sessionId) finish({ kind: 'failed', err: new Error(`no session from ${addr} within ${SESSION_OPEN_TIMEOUT_MS} ms`) });
        });
        call.on('data', (msg) => {
          if (done) return;
          if (msg.managers?.length) this.mergeManagers(msg.managers);
          if (msg.node?.id) this.nodeId = msg.node.id;
          if (!attempt.sessionId) {
            if (!msg.sessionId) return;
            attempt.sessionId = msg.sessionId;
            if (msg.heartbeatPeriodMs > 0) period = msg.heartbeatPeriodMs;
            this.sessions++;
            log.info('session established', { 'node.id': this.nodeId, 'session.id': msg.sessionId, 'heartbeat.ms': period });
            this.opts.handlers.onEstablished({
              sessionId: msg.sessionId,
              nodeId: this.nodeId,
              node: msg.node,
              managers: [...this.managers],
              natsUrl: msg.natsUrl,
              manager: addr,
            });
            later(period * HEARTBEAT_FRACTION, heartbeat);
            openAssignments();
            openNetwork();
          }
        });
        call.on('error', () => {});
        call.on('status', (st) => {
          if (done) return;
          if (!attempt.sessionId && classifyGrpcError(st) === 'refused') return finish({ kind: 'fatal', err: joinRefused(st) });
          if (st.code === 0) return finish({ kind: 'failed', err: new Error('session stream ended by the manager') });
          finish(streamOutcome(st));
        });
      } catch (e) {
        finish({ kind: 'failed', err: e });
      }
    }).catch((e: unknown) => ({ kind: 'failed', err: e }) as Outcome);
  }
}

