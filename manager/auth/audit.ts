// The audit trail: one record per mutating Control call, per exec, per
// handing out of credentials and per refused call (docs/security.md). Each
// record goes two ways: a line of JSON in the manager's local audit log
// (<dataDir>/audit.log, 0600, rotated by size) and an event on the events
// path (`convoy events --filter type=audit`). Writing never throws: a full
// disk is logged, and the call it records is not failed for it.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { AuditEvent } from '../../proto/events';
import { errMsg, nullLogger, type Logger } from '../../common/logger';

export const AUDIT_LOG_FILE = 'audit.log';
/** Size at which audit.log is rotated to audit.log.1 (the others shift up). */
export const DEFAULT_AUDIT_MAX_BYTES = 10 * 1024 * 1024;
/** Rotated files kept besides audit.log: at most (1 + this) × max bytes on disk. */
export const DEFAULT_AUDIT_KEEP = 5;

/** Where audit records go. Must not throw or block for long. */
export interface AuditSink {
  record(r: AuditEvent): void;
}

export const nullAuditSink: AuditSink = { record() {} };

export interface AuditLogOptions {
  maxBytes?: number;
  keep?: number;
  logger?: Logger;
}

/**
 * A JSON-lines file, appended with one write per record (synchronously:
 * the record is on disk before the call's answer leaves), rotated when the
 * next line would take it past `maxBytes`.
 */
export class AuditLog implements AuditSink {
  private fd: number | undefined;
  private size = 0;
  private readonly maxBytes: number;
  private readonly keep: number;
  private readonly log: Logger;

  constructor(
    readonly file: string,
    o: AuditLogOptions = {},
  ) {
    this.maxBytes = o.maxBytes ?? DEFAULT_AUDIT_MAX_BYTES;
    this.keep = Math.max(0, o.keep ?? DEFAULT_AUDIT_KEEP);
    this.log = o.logger ?? nullLogger;
    fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    this.open();
  }

  private open(): void {
    this.fd = fs.openSync(this.file, 'a', 0o600);
    // An existing file keeps its mode; an audit log is for root only.
    fs.fchmodSync(this.fd, 0o600);
    this.size = fs.fstatSync(this.fd).size;
  }

  private rotate(): void {
    if (this.fd !== undefined) fs.closeSync(this.fd);
    this.fd = undefined;
    if (this.keep === 0) fs.rmSync(this.file, { force: true });
    else {
      fs.rmSync(`${this.file}.${this.keep}`, { force: true });
      for (let i = this.keep - 1; i >= 1; i--) if (fs.existsSync(`${this.file}.${i}`)) fs.renameSync(`${this.file}.${i}`, `${this.file}.${i + 1}`);
      fs.renameSync(this.file, `${this.file}.1`);
    }
    this.open();
  }

  record(r: AuditEvent): void {
    const line = `${JSON.stringify(r)}\n`;
    const bytes = Buffer.byteLength(line);
    try {
      if (this.fd === undefined) this.open();
      if (this.size > 0 && this.size + bytes > this.maxBytes) this.rotate();
      fs.writeSync(this.fd as number, line);
      this.size += bytes;
    } catch (e) {
      this.log.error('audit log write failed', { file: this.file, err: errMsg(e), 'audit.action': r.action, 'audit.who': r.who.id });
    }
  }

  close(): void {
    if (this.fd !== undefined) fs.closeSync(this.fd);
    this.fd = undefined;
  }
}

/** Every record to each sink (a sink that throws does not stop the others). */
export function teeAudit(...sinks: AuditSink[]): AuditSink {
  return {
    record(r) {
      for (const s of sinks) {
        try {
          s.record(r);
        } catch {
          /* a sink never fails the call it records */
        }
      }
    },
  };
}
