// The local audit log: JSON lines, 0600 even over an existing file, rotated
// by size keeping a bounded number of files, and never throwing.
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { AuditEvent } from '../../proto/events';
import { AuditLog, teeAudit } from './audit';

const rec = (i: number): AuditEvent => ({
  type: 'audit',
  action: 'ScaleService',
  time: i,
  source: 'manager/m1',
  who: { id: 'alice', role: 'admin', serial: 'AB', via: 'tls' },
  target: { kind: 'service', id: `s${i}`, name: 'web' },
  result: { ok: true },
});

describe('audit log', () => {
  let dir: string;
  beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'convoy-audit-'))));
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('appends one JSON line per record to a 0600 file, also when the file existed with a looser mode', () => {
    const file = path.join(dir, 'audit.log');
    fs.writeFileSync(file, '', { mode: 0o644 });
    fs.chmodSync(file, 0o644);
    const log = new AuditLog(file);
    log.record(rec(1));
    log.record(rec(2));
    log.close();
    assert.equal(fs.statSync(file).mode & 0o777, 0o600);
    assert.deepEqual(fs.readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as AuditEvent), [rec(1), rec(2)]);
    // Reopened: appends.
    const again = new AuditLog(file);
    again.record(rec(3));
    again.close();
    assert.equal(fs.readFileSync(file, 'utf8').trim().split('\n').length, 3);
  });

  it('rotates at the size bound, keeping `keep` older files, each under the bound', () => {
    const file = path.join(dir, 'audit.log');
    const line = Buffer.byteLength(`${JSON.stringify(rec(100))}\n`);
    const log = new AuditLog(file, { maxBytes: line * 3, keep: 2 });
    for (let i = 100; i < 120; i++) log.record(rec(i));
    log.close();
    const files = fs.readdirSync(dir).sort();
    assert.deepEqual(files, ['audit.log', 'audit.log.1', 'audit.log.2']);
    for (const f of files) {
      assert.ok(fs.statSync(path.join(dir, f)).size <= line * 3, f);
      assert.equal(fs.statSync(path.join(dir, f)).mode & 0o777, 0o600, f);
    }
    const times = (f: string) => fs.readFileSync(path.join(dir, f), 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as AuditEvent).time);
    assert.deepEqual(times('audit.log'), [118, 119]);
    assert.deepEqual(times('audit.log.1'), [115, 116, 117]);
    assert.deepEqual(times('audit.log.2'), [112, 113, 114]);
  });

  it('never throws: a write that fails is logged, and the other sinks still get the record', () => {
    const file = path.join(dir, 'audit.log');
    const errors: string[] = [];
    const log = new AuditLog(file, { logger: { error: (m: string) => void errors.push(m) } as never });
    log.close();
    fs.rmSync(dir, { recursive: true, force: true });
    fs.mkdirSync(file, { recursive: true }); // the path is now a directory: open fails
    const got: AuditEvent[] = [];
    const tee = teeAudit(log, { record: () => { throw new Error('boom'); } }, { record: (r) => void got.push(r) });
    tee.record(rec(1));
    assert.deepEqual(got, [rec(1)]);
    assert.deepEqual(errors, ['audit log write failed']);
  });
});
