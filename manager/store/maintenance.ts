// Store maintenance: the manager watching its etcd's size and alarms, off the
// hot path (one status call per CHECK_MS, never in a tick or a request).
//
// - NOSPACE: etcd raised its alarm (the database reached its quota) and
//   refuses every write. Reported (event, metric) once when it appears and
//   once when it clears. With an embedded etcd (`reclaim`) the manager runs
//   etcd's documented recovery itself: compact at the current revision,
//   defragment, disarm. Live state is small next to the quota, so this gives
//   room back unless the live state itself outgrew it (then the alarm comes
//   back at once and an operator must raise the quota: docs/etcd.md).
// - Defragmentation: compaction frees pages inside the database file but
//   does not shrink it, and the quota counts the file. When less than
//   DEFRAG_IN_USE_RATIO of the file is in use, and it is big enough to be
//   worth it, defragment: at most once per DEFRAG_MIN_INTERVAL_MS (a
//   defragmentation blocks the member while it rewrites the file).
//   Only with `reclaim` (each manager for its own embedded member): an
//   external etcd is its operators' (docs/etcd.md).
import { errMsg, type Logger } from '../../common/logger';
import type { StoreMaintenance, StoreStatus } from './store';

/** How often the status is read: NOSPACE is reported within this. */
export const CHECK_MS = 10_000;
/** Defragment when less than this share of the file is in use. */
export const DEFRAG_IN_USE_RATIO = 0.5;
/** Files smaller than this are never worth a defragmentation (etcd's own file starts at a few MB of free pages). */
export const DEFRAG_MIN_BYTES = 64 * 1024 * 1024;
/** At most one defragmentation per this (a NOSPACE recovery is not held to it). */
export const DEFRAG_MIN_INTERVAL_MS = 10 * 60_000;

export interface MaintenanceReport {
  /** Every status read (the size gauges). */
  status(st: StoreStatus): void;
  /** The NOSPACE alarm appeared (full) or cleared. */
  full(full: boolean, message: string): void;
  /** A defragmentation ran: the file's size before and after. */
  defragmented(beforeBytes: number, afterBytes: number, seconds: number): void;
}

export interface MaintenanceOptions {
  /** Compact, defragment and disarm this store's member itself (an embedded etcd). */
  reclaim: boolean;
  log: Logger;
  report: MaintenanceReport;
  checkMs?: number;
  defragMinBytes?: number;
  defragMinIntervalMs?: number;
}

export class StoreJanitor {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private full = false;
  private lastDefrag = 0;
  private stopped = false;

  constructor(
    private readonly m: StoreMaintenance,
    private readonly o: MaintenanceOptions,
  ) {}

  start(): this {
    this.schedule();
    return this;
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.running = this.check().finally(() => {
        this.running = undefined;
        this.schedule();
      });
    }, this.o.checkMs ?? CHECK_MS);
    this.timer.unref();
  }

  /** One round: status, NOSPACE report and recovery, defragmentation when due. Never throws. */
  async check(): Promise<void> {
    try {
      let st = await this.m.status();
      this.o.report.status(st);
      const nospace = st.alarms.includes('NOSPACE');
      if (nospace && !this.full) {
        this.full = true;
        this.o.log.error('etcd store full (NOSPACE): writes refused, running tasks unaffected', { 'etcd.db_bytes': st.dbSizeBytes, 'etcd.db_in_use_bytes': st.dbSizeInUseBytes });
        this.o.report.full(true, `etcd raised NOSPACE at ${mb(st.dbSizeBytes)} MB: writes are refused until space is reclaimed`);
      }
      if (nospace && this.o.reclaim) {
        await this.reclaim(st, true);
        st = await this.m.status();
        this.o.report.status(st);
      } else if (this.o.reclaim && this.dueForDefrag(st)) {
        await this.reclaim(st, false);
      }
      if (this.full && !st.alarms.includes('NOSPACE')) {
        this.full = false;
        this.o.log.info('etcd store has room again: writes accepted', { 'etcd.db_bytes': st.dbSizeBytes });
        this.o.report.full(false, `etcd NOSPACE cleared (${mb(st.dbSizeBytes)} MB): writes accepted again`);
      }
    } catch (e) {
      this.o.log.warn('etcd maintenance failed', { err: errMsg(e) });
    }
  }

  private dueForDefrag(st: StoreStatus): boolean {
    return (
      st.dbSizeBytes >= (this.o.defragMinBytes ?? DEFRAG_MIN_BYTES) &&
      st.dbSizeInUseBytes < st.dbSizeBytes * DEFRAG_IN_USE_RATIO &&
      Date.now() - this.lastDefrag >= (this.o.defragMinIntervalMs ?? DEFRAG_MIN_INTERVAL_MS)
    );
  }

  /** Compact (NOSPACE only: otherwise etcd's auto-compaction keeps its window), defragment, disarm. */
  private async reclaim(st: StoreStatus, nospace: boolean): Promise<void> {
    const t0 = performance.now();
    if (nospace) await this.m.compact(st.revision);
    await this.m.defragment();
    this.lastDefrag = Date.now();
    const after = await this.m.status();
    const seconds = (performance.now() - t0) / 1000;
    this.o.log.info('etcd defragmented', { 'etcd.db_bytes_before': st.dbSizeBytes, 'etcd.db_bytes_after': after.dbSizeBytes, 'etcd.nospace': nospace, seconds });
    this.o.report.defragmented(st.dbSizeBytes, after.dbSizeBytes, seconds);
    if (nospace) await this.m.disarmNoSpace();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
  }
}

const mb = (b: number) => (b / 1024 / 1024).toFixed(1);
