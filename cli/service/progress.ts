// Convergence you can watch: after `service create|update|scale|rollback`
// and `stack deploy` the CLI follows the service until it has converged, as
// `docker service create` does (docker/cli cli/command/service/progress).
//
// Three parts, each testable alone:
//   ConvergeTracker  a plain function of snapshots (service + its tasks) to
//                    a view: one line per slot (per node for global
//                    services), N/M, the reasons of rejections and health
//                    failures as they appear, and a verdict
//   ProgressPrinter  draws views: in place on a terminal (ANSI cursor moves),
//                    one plain line per change otherwise (no escape codes)
//   waitForServices  polls the Control API (GetService + ListTasks; there is
//                    no watch call, and `convoy events` needs NATS) and feeds
//                    the two until every service has a verdict
//
// What "converged" means (docs/cli.md "Waiting for convergence"): every slot's
// newest task runs the current spec (healthy when the spec has a healthcheck),
// no task is still stopping, no update is in progress, and this has held for
// the verify period: the service's update monitor (default 5 s, as Docker's
// "verify: Waiting 5 seconds to verify that tasks are stable..."). An update
// the manager reports completed has been monitored already and needs no
// second wait. Failure: the update paused, rolled back (the failure action
// of an update), every slot's task rejected, or --timeout elapsed.
import type { Service, Task, TaskStateName } from '../../proto/mod';
import { DEFAULT_UPDATE_CONFIG } from '../../proto/defaults';
import { CliError, GRPC_STATUS, grpcCode, type CliIO, type ControlApi } from '../client';
import { parseDuration } from '../flags';
import type { Command } from 'commander';

/** Which verb started the wait: a manual rollback that completes is a success, an update that rolls back is not. */
export type WaitOp = 'create' | 'update' | 'scale' | 'rollback' | 'deploy';

/** Between two looks at the cluster: quick enough to see each state, light on the manager (two calls per service). */
export const POLL_MS = 500;
/** Per-slot lines up to this many replicas (as Docker's progress bars, 20); beyond, only N/M. */
export const MAX_SLOT_LINES = 20;
/** Above this many replicas the watch asks for current tasks only (one per slot), bounding each answer. */
const FULL_HISTORY_MAX = MAX_SLOT_LINES;
/** Consecutive failed polls (a manager failing over) tolerated before the wait gives up. */
const MAX_POLL_FAILURES = 20;
/** A reason shown in a line is cut here (the terminal cuts again at its width). */
const REASON_MAX = 160;
/** How often node names are fetched again when an unknown node holds a task (global services). */
const NODE_REFRESH_MS = 10_000;

export interface Verdict {
  ok: boolean;
  /** "converged", "update paused: …", "rolled back: …", "every task rejected: …", "timed out …". */
  message: string;
}

export interface ProgressView {
  service: string;
  /** "web: overall progress: 2/3 tasks running". */
  title: string;
  /** One per slot (replicated: "2/3: running"), per node (global: "h1: running"). Empty above MAX_SLOT_LINES. */
  lines: string[];
  running: number;
  desired: number;
  /** Rejections, task failures, health failures and rollbacks first seen in this step, oldest first. */
  events: string[];
  /** "verify: Waiting 5 seconds to verify that tasks are stable..." while converged but not yet for long enough. */
  verify?: string;
  verdict?: Verdict;
}

export interface Snapshot {
  service: Service;
  tasks: readonly Task[];
  /** Node id → hostname, for global services' lines. */
  nodeNames?: ReadonlyMap<string, string>;
  now: number;
}

const ENDED: ReadonlySet<TaskStateName> = new Set<TaskStateName>(['COMPLETE', 'SHUTDOWN', 'FAILED', 'REJECTED', 'REMOVE', 'ORPHANED']);
const IN_PROGRESS = new Set(['UPDATING', 'ROLLBACK_STARTED']);

const ended = (t: Task) => ENDED.has(t.status?.state ?? 'NEW');
/** A slot's current task: desired to run (or to stay completed), whatever it is doing now. */
const wanted = (t: Task) => t.desiredState === 'RUNNING' || t.desiredState === 'COMPLETE';
/** Told to stop and not stopped yet. */
const stopping = (t: Task) => !wanted(t) && !ended(t);

function hasHealthcheck(t: Task): boolean {
  const test = t.spec?.container?.healthcheck?.test ?? [];
  return test.length > 0 && test[0] !== 'NONE';
}

/** The newest of a slot's tasks: created last (ties: higher spec version, then attempt). */
function newer(a: Task, b: Task): Task {
  const ca = Number(a.meta?.createdAt ?? 0);
  const cb = Number(b.meta?.createdAt ?? 0);
  if (ca !== cb) return ca > cb ? a : b;
  if (Number(a.specVersion) !== Number(b.specVersion)) return Number(a.specVersion) > Number(b.specVersion) ? a : b;
  return a.attempt >= b.attempt ? a : b;
}

function oneLine(s: string): string {
  const t = s.replace(/\s+/g, ' ').trim();
  return t.length > REASON_MAX ? t.slice(0, REASON_MAX - 1) + '…' : t;
}

/** Why a task failed or waits: its error, else its status message. */
function reasonOf(t: Task): string {
  return oneLine(t.status?.err || t.status?.message || '');
}

/** Follows one service through snapshots; step() is a plain function of what it has seen. */
export class ConvergeTracker {
  private readonly baselineStarted: number;
  private readonly baselineInProgress: boolean;
  /** A job's run when the command's write landed: a newer run is this command's. */
  private readonly baselineIteration: number;
  private readonly reported = new Set<string>();
  /** When the command's write landed (the manager's clock): failures before it are history, not news. */
  private readonly since: number;
  private convergedSince: number | undefined;
  private rollbackReason = '';
  private lastFailure = '';
  private verdict: Verdict | undefined;

  /**
   * `baseline`: the service as the write returned it (or as read right after
   * it): only update states that began with or after it are this command's.
   */
  constructor(
    readonly op: WaitOp,
    baseline: Service,
    private readonly verifyMsOverride?: number,
  ) {
    this.since = Number(baseline.meta?.updatedAt ?? 0);
    this.baselineStarted = Number(baseline.updateStatus?.startedAt ?? 0);
    this.baselineInProgress = IN_PROGRESS.has(baseline.updateStatus?.state ?? 'UPDATE_NONE');
    this.baselineIteration = op === 'create' ? 0 : Number(baseline.jobStatus?.iteration ?? 0);
  }

  /** The verify period: the service's update monitor, else Docker's 5 s. */
  verifyMs(svc: Service): number {
    if (this.verifyMsOverride !== undefined) return this.verifyMsOverride;
    const m = Number(svc.spec?.update?.monitorMs ?? 0);
    return m > 0 ? m : DEFAULT_UPDATE_CONFIG.monitorMs;
  }

  step(snap: Snapshot): ProgressView {
    const svc = snap.service;
    const name = svc.spec?.name || svc.id;
    const sv = Number(svc.specVersion);
    const global = svc.spec?.mode === 'GLOBAL';
    const events: string[] = [];
    const label = (t: Task) => (global ? `${name} on ${snap.nodeNames?.get(t.nodeId) || t.nodeId.slice(0, 12) || 'no node'}` : `${name}.${t.slot}`);

    // Slots (nodes for global services) and their newest task.
    const newest = new Map<string, Task>();
    let stoppingCount = 0;
    for (const t of snap.tasks) {
      if (t.serviceId && t.serviceId !== svc.id) continue;
      if (stopping(t)) stoppingCount++;
      const key = global ? `n:${t.nodeId}` : `s:${t.slot}`;
      const cur = newest.get(key);
      newest.set(key, cur ? newer(cur, t) : t);
    }
    const live = [...newest.values()].filter(wanted);
    live.sort((a, b) => (global ? label(a).localeCompare(label(b)) : a.slot - b.slot));
    const up = (t: Task) =>
      Number(t.specVersion) === sv &&
      ((t.status?.state === 'RUNNING' && (!hasHealthcheck(t) || t.status?.health === 'healthy')) || (t.status?.state === 'COMPLETE' && t.desiredState === 'COMPLETE'));
    const desired = global ? live.length : Math.max(0, Number(svc.spec?.replicas ?? 0));
    const running = Math.min(desired, live.filter(up).length);

    // Events: every failure or rejection, once per task, and every health failure.
    for (const t of snap.tasks) {
      const st = t.status?.state ?? 'NEW';
      if (st === 'FAILED' || st === 'REJECTED') {
        const key = `${t.id}:end`;
        if (!this.reported.has(key)) {
          this.reported.add(key);
          if (Number(t.status?.timestamp ?? 0) >= this.since) {
            const why = reasonOf(t) || 'no reason given';
            this.lastFailure = `${label(t)} ${st.toLowerCase()}: ${why}`;
            events.push(`${label(t)}: task ${t.id.slice(0, 12)} ${st.toLowerCase()}: ${why}`);
          }
        }
      } else if (st === 'RUNNING' && t.status?.health === 'unhealthy') {
        const key = `${t.id}:unhealthy`;
        if (!this.reported.has(key)) {
          this.reported.add(key);
          this.lastFailure = `${label(t)} unhealthy`;
          events.push(`${label(t)}: task ${t.id.slice(0, 12)} unhealthy${t.status?.message && !/^health: /.test(t.status.message) ? `: ${oneLine(t.status.message)}` : ''}`);
        }
      }
    }

    const mode = svc.spec?.mode;
    if (mode === 'REPLICATED_JOB' || mode === 'GLOBAL_JOB') return this.jobStep(svc, snap, name, label, events);

    // The update (or rollback) this command started or runs into.
    const us = svc.updateStatus;
    const started = Number(us?.startedAt ?? 0);
    const ours = !!us && (started > this.baselineStarted || (started === this.baselineStarted && this.baselineInProgress));
    const state = ours ? us!.state : 'UPDATE_NONE';
    const msg = oneLine(us?.message ?? '');
    let updateDone = false;
    let verdict = this.verdict;
    if (!verdict) {
      switch (state) {
        case 'UPDATE_PAUSED':
          verdict = { ok: false, message: msg.startsWith('update paused') ? msg : `update paused: ${msg || 'no reason given'}` };
          break;
        case 'ROLLBACK_PAUSED':
          verdict = { ok: false, message: msg.startsWith('rollback paused') ? msg : `rollback paused: ${msg || 'no reason given'}` };
          break;
        case 'ROLLBACK_STARTED':
          if (this.op !== 'rollback') {
            const why = msg.replace(/^rollback started: /, '');
            if (why !== this.rollbackReason) {
              this.rollbackReason = why;
              events.push(`${name}: rolling back: ${why}`);
            }
          }
          break;
        case 'ROLLBACK_COMPLETED':
          if (this.op === 'rollback') updateDone = true;
          else {
            // The manager keeps the reason in the completed status too (a poll may have missed ROLLBACK_STARTED).
            const kept = msg.startsWith('rollback completed: ') ? msg.slice('rollback completed: '.length) : '';
            verdict = { ok: false, message: `rolled back: ${this.rollbackReason || kept || this.lastFailure || 'the update failed'}` };
          }
          break;
        case 'UPDATE_COMPLETED':
          updateDone = true;
          break;
      }
    }

    const inProgress = IN_PROGRESS.has(state) || (!ours && IN_PROGRESS.has(us?.state ?? ''));
    const converged = !inProgress && running === desired && live.length === desired && stoppingCount === 0;
    let verify: string | undefined;
    if (!verdict) {
      if (desired > 0 && live.length >= desired && live.every((t) => t.status?.state === 'REJECTED')) {
        verdict = { ok: false, message: `every task rejected: ${reasonOf(live[live.length - 1]) || 'no reason given'}` };
      } else if (converged && updateDone) {
        verdict = { ok: true, message: 'converged' };
      } else if (converged) {
        const period = this.verifyMs(svc);
        this.convergedSince ??= snap.now;
        if (snap.now - this.convergedSince >= period) verdict = { ok: true, message: 'converged' };
        else {
          const n = Math.ceil(period / 1000);
          verify = `verify: Waiting ${n} second${n === 1 ? '' : 's'} to verify that tasks are stable...`;
        }
      } else {
        this.convergedSince = undefined;
      }
    }
    this.verdict = verdict;

    const lines: string[] = [];
    if (desired <= MAX_SLOT_LINES && live.length <= MAX_SLOT_LINES) {
      live.forEach((t, i) => {
        const where = global ? snap.nodeNames?.get(t.nodeId) || t.nodeId.slice(0, 12) || 'no node' : `${i + 1}/${desired}`;
        lines.push(`${where}: ${describeTask(t, sv)}`);
      });
    }
    const extra = stoppingCount ? `, ${stoppingCount} stopping` : '';
    return {
      service: name,
      title: `${name}: overall progress: ${running}/${desired} tasks running${extra}`,
      lines,
      running,
      desired,
      events,
      verify,
      verdict,
    };
  }

  /**
   * A job converges when its run finishes (docs/jobs.md): "N out of M complete",
   * then "job complete" or "job failed". A scheduled job has nothing to wait
   * for at create or update (each run is an event: convoy events --filter type=service).
   */
  private jobStep(svc: Service, snap: Snapshot, name: string, label: (t: Task) => string, events: string[]): ProgressView {
    const job = svc.spec?.job;
    const js = svc.jobStatus;
    const iteration = Number(js?.iteration ?? 0);
    const global = svc.spec?.mode === 'GLOBAL_JOB';
    if (job?.schedule && !(this.op === 'update' && js?.runRequested) && iteration <= this.baselineIteration) {
      const verdict = this.verdict ?? { ok: true, message: `scheduled (${job.schedule}${job.timezone ? ` ${job.timezone}` : ''}): each run is an event` };
      this.verdict = verdict;
      return { service: name, title: `${name}: scheduled job`, lines: [], running: 0, desired: 0, events, verdict };
    }
    const run = iteration > this.baselineIteration ? iteration : 0;
    const tasks = run ? snap.tasks.filter((t) => Number(t.jobIteration ?? 0) === run && (!t.serviceId || t.serviceId === svc.id)) : [];
    const newest = new Map<string, Task>();
    for (const t of tasks) {
      const key = global ? `n:${t.nodeId}` : `s:${t.slot}`;
      const cur = newest.get(key);
      newest.set(key, cur ? newer(cur, t) : t);
    }
    const slots = [...newest.values()].sort((a, b) => (global ? label(a).localeCompare(label(b)) : a.slot - b.slot));
    const desired = global ? slots.length : Math.max(0, Number(svc.spec?.replicas ?? 0));
    const completed = Math.min(desired, slots.filter((t) => t.status?.state === 'COMPLETE').length);
    let verdict = this.verdict;
    if (!verdict && run && Number(js?.finishedIteration ?? 0) === run)
      verdict = js?.finishedOk ? { ok: true, message: 'job complete' } : { ok: false, message: `job failed: ${this.lastFailure || oneLine(js?.message ?? '') || 'a task failed'}` };
    if (!verdict && desired > 0 && slots.length >= desired && slots.every((t) => t.status?.state === 'REJECTED'))
      verdict = { ok: false, message: `every task rejected: ${reasonOf(slots[slots.length - 1]) || 'no reason given'}` };
    this.verdict = verdict;
    const lines: string[] = [];
    if (slots.length <= MAX_SLOT_LINES)
      slots.forEach((t, i) => lines.push(`${global ? snap.nodeNames?.get(t.nodeId) || t.nodeId.slice(0, 12) || 'no node' : `${i + 1}/${desired}`}: ${describeTask(t, Number(svc.specVersion))}`));
    return { service: name, title: `${name}: job progress: ${completed} out of ${desired} complete`, lines, running: completed, desired, events, verdict };
  }
}

/** "running", "running (healthy)", "pending  no suitable node: …", "failed  exit code 1", "running (old spec)". */
export function describeTask(t: Task, specVersion: number): string {
  const st = (t.status?.state ?? 'NEW').toLowerCase();
  let s = st;
  const h = t.status?.health;
  if (t.status?.state === 'RUNNING' && h && h !== 'none') s += ` (${h})`;
  if (Number(t.specVersion) < specVersion) s += ' (old spec)';
  const st0 = t.status?.state;
  // The reason a task waits or ended: the scheduler's "no suitable node", the agent's error.
  if (st0 === 'PENDING' || st0 === 'FAILED' || st0 === 'REJECTED' || st0 === 'ORPHANED') {
    const why = reasonOf(t);
    if (why && why !== st) s += `  ${why}`;
  }
  return s;
}

// ---- drawing -----------------------------------------------------------------

const ESC = '\x1b[';

/** Draws the views of every service watched, together. */
export class ProgressPrinter {
  /** Lines of the block drawn last (terminal mode): moved up over and rewritten. */
  private drawn = 0;
  /** Plain mode: the last text printed per line key. */
  private readonly printed = new Map<string, string>();

  constructor(
    private readonly out: (s: string) => void,
    /** Terminal width; undefined = not a terminal: plain lines. */
    private readonly columns: number | undefined,
    /** Terminal height, when known. */
    private readonly rows?: number,
  ) {}

  draw(views: readonly ProgressView[]): void {
    const events = views.flatMap((v) => v.events);
    if (this.columns === undefined) return this.plain(views, events);
    const width = Math.max(20, this.columns - 1);
    const fit = (s: string) => (s.length > width ? s.slice(0, width - 1) + '…' : s);
    const blockOf = (withSlots: boolean) => {
      const block: string[] = [];
      for (const v of views) {
        block.push(v.title, ...(withSlots ? v.lines.map((l) => `  ${l}`) : []));
        if (v.verdict?.ok) block.push(`${views.length > 1 ? `${v.service}: ` : ''}verify: ${v.verdict.message}`);
        else if (v.verify) block.push(v.verify);
      }
      return block;
    };
    // The cursor cannot move above the screen's top: a block taller than the screen drops its slot lines.
    let block = blockOf(true);
    if (this.rows !== undefined && block.length > this.rows - 1) block = blockOf(false);
    // Up to the first line of the last block, clear to the end of the screen, then events (they stay) and the block.
    let s = this.drawn ? `${ESC}${this.drawn}A\r${ESC}J` : '';
    for (const e of events) s += fit(e) + '\n';
    for (const l of block) s += fit(l) + '\n';
    this.drawn = block.length;
    this.out(s);
  }

  private plain(views: readonly ProgressView[], events: string[]): void {
    let s = '';
    for (const e of events) s += e + '\n';
    for (const v of views) {
      const show = (key: string, text: string) => {
        if (this.printed.get(key) === text) return;
        this.printed.set(key, text);
        s += text + '\n';
      };
      show(`${v.service}#title`, v.title);
      // Slot lines keep their "2/3:" (or node) prefix, so a change names its slot.
      const slot = (l: string) => l.slice(0, l.indexOf(':'));
      for (const l of v.lines) show(`${v.service}#${slot(l)}`, `${v.service}: ${l}`);
      if (v.verify) show(`${v.service}#verify`, `${v.service}: ${v.verify}`);
      if (v.verdict?.ok) show(`${v.service}#verdict`, `${v.service}: verify: ${v.verdict.message}`);
    }
    if (s) this.out(s);
  }
}

// ---- waiting -----------------------------------------------------------------

export interface WaitFlags {
  detach?: boolean;
  timeout?: string;
}

/** -d/--detach and --timeout, on the verbs that wait (skipping a flag a verb already declares). */
export function addWaitOptions(cmd: Command): Command {
  const has = (long: string) => cmd.options.some((o) => o.long === long);
  if (!has('--detach')) cmd.option('-d, --detach', 'return at once, without waiting for the service to converge');
  if (!has('--timeout')) cmd.option('--timeout <duration>', 'give up waiting after this long (exit status 1); default: wait until converged or failed');
  return cmd;
}

/** --timeout as milliseconds (undefined: none), refused by name when malformed. */
export function waitTimeoutMs(f: WaitFlags): number | undefined {
  if (f.timeout === undefined) return undefined;
  const ms = parseDuration(f.timeout, '--timeout');
  if (ms <= 0) throw new CliError(`--timeout: "${f.timeout}" must be longer than 0`);
  return ms;
}

export interface WaitOptions {
  timeoutMs?: number;
  /** Print nothing while waiting (-q): the exit status still tells. */
  quiet?: boolean;
  pollMs?: number;
  sleep?: (ms: number) => Promise<void>;
  /** The verify period, overriding the services' update monitor (tests). */
  verifyMs?: number;
}

const realSleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Follows `services` (as their writes returned them) until each has a verdict,
 * drawing the progress on io.out. Failures are reported as `convoy: NAME:
 * REASON` on stderr with exit status 1. Resolves to whether all converged.
 */
export async function waitForServices(io: CliIO, api: ControlApi, services: readonly Service[], op: WaitOp, o: WaitOptions = {}): Promise<boolean> {
  if (!services.length) return true;
  const term = io.terminal?.();
  const printer = o.quiet ? undefined : new ProgressPrinter((s) => io.out(s), term?.columns, term?.rows);
  const trackers: Followed[] = services.map((s) => ({ id: s.id, name: s.spec?.name || s.id, tracker: new ConvergeTracker(op, s, o.verifyMs), view: undefined as ProgressView | undefined }));
  // As Docker: stopping the watch stops nothing in the cluster; say so, and where to look.
  const names = trackers.map((t) => t.name).join(' ');
  const off = io.onInterrupt?.(() => io.err(`\nconvoy: stopped watching; the change goes on (convoy service ps ${names})\n`));
  try {
    return await follow(io, api, trackers, printer, o);
  } finally {
    off?.();
  }
}

type Followed = { id: string; name: string; tracker: ConvergeTracker; view: ProgressView | undefined };

/** The poll loop of waitForServices: looks, steps each tracker, draws, until every service has a verdict. */
async function follow(io: CliIO, api: ControlApi, trackers: Followed[], printer: ProgressPrinter | undefined, o: WaitOptions): Promise<boolean> {
  const sleep = o.sleep ?? realSleep;
  const pollMs = o.pollMs ?? POLL_MS;
  const start = io.now();
  const nodeNames = new Map<string, string>();
  let nodesFetchedAt = -Infinity;
  let failures = 0;
  for (;;) {
    const now = io.now();
    try {
      for (const t of trackers) {
        if (t.view?.verdict) continue;
        let service: Service | null;
        try {
          service = (await api.getService({ service: t.id })).service;
        } catch (e) {
          if (grpcCode(e) === GRPC_STATUS.NOT_FOUND) {
            t.view = { ...(t.view ?? emptyView(t.name)), events: [], verify: undefined, verdict: { ok: false, message: 'the service was removed' } };
            continue;
          }
          throw e;
        }
        if (!service) throw new CliError(`service ${t.name}: the manager returned no service`);
        const big = service.spec?.mode !== 'GLOBAL' && Number(service.spec?.replicas ?? 0) > FULL_HISTORY_MAX;
        const { tasks } = await api.listTasks({ service: t.id, currentOnly: big });
        if (service.spec?.mode === 'GLOBAL' && tasks.some((k) => k.nodeId && !nodeNames.has(k.nodeId)) && now - nodesFetchedAt >= NODE_REFRESH_MS) {
          nodesFetchedAt = now;
          for (const n of (await api.listNodes({})).nodes) nodeNames.set(n.id, n.description?.hostname || n.id);
        }
        t.view = t.tracker.step({ service, tasks, nodeNames, now });
      }
      failures = 0;
    } catch (e) {
      // A manager failing over: keep looking for a while, then say why not.
      if (e instanceof CliError || ++failures >= MAX_POLL_FAILURES) throw e;
    }
    const timedOut = o.timeoutMs !== undefined && now - start >= o.timeoutMs;
    if (timedOut)
      for (const t of trackers)
        if (!t.view?.verdict) {
          const v = t.view ?? emptyView(t.name);
          t.view = { ...v, events: [], verify: undefined, verdict: { ok: false, message: `timed out after ${fmtSeconds(o.timeoutMs!)}: ${v.running}/${v.desired} tasks running` } };
        }
    const views = trackers.map((t) => t.view).filter((v): v is ProgressView => !!v);
    printer?.draw(views);
    for (const v of views) v.events = [];
    if (trackers.every((t) => t.view?.verdict)) break;
    await sleep(pollMs);
  }
  let ok = true;
  for (const t of trackers) {
    const v = t.view!.verdict!;
    if (v.ok) continue;
    ok = false;
    io.err(`convoy: ${t.name}: ${v.message}\n`);
  }
  if (!ok) io.setExitCode(1);
  return ok;
}

function emptyView(name: string): ProgressView {
  return { service: name, title: `${name}: overall progress: 0/0 tasks running`, lines: [], running: 0, desired: 0, events: [] };
}

function fmtSeconds(ms: number): string {
  return `${ms / 1000}s`;
}
