// The store janitor's decisions, on a fake maintenance API: NOSPACE reported
// once each way and reclaimed (compact, defragment, disarm) only with
// `reclaim`; defragmentation only when mostly free, big enough and not too soon.
import { strict as assert } from 'node:assert';
import { nullLogger } from '../../common/logger';
import { StoreJanitor } from './maintenance';
import type { StoreMaintenance, StoreStatus } from './store';

function fake(st: StoreStatus) {
  const calls: string[] = [];
  const m: StoreMaintenance = {
    status: async () => ({ ...st, alarms: [...st.alarms] }),
    compact: async (rev) => void calls.push(`compact ${rev}`),
    defragment: async () => {
      calls.push('defragment');
      st.dbSizeBytes = st.dbSizeInUseBytes;
    },
    disarmNoSpace: async () => {
      calls.push('disarm');
      st.alarms = [];
    },
  };
  return { m, calls, st };
}

const MB = 1024 * 1024;

describe('StoreJanitor', () => {
  it('reports NOSPACE once and, with reclaim, compacts, defragments and disarms, then reports recovery', async () => {
    const f = fake({ dbSizeBytes: 100 * MB, dbSizeInUseBytes: 90 * MB, revision: 42, alarms: ['NOSPACE'] });
    const reports: string[] = [];
    const j = new StoreJanitor(f.m, { reclaim: true, log: nullLogger, report: { status: () => undefined, full: (full) => void reports.push(full ? 'full' : 'recovered'), defragmented: () => void reports.push('defrag') } });
    await j.check();
    await j.check();
    assert.deepEqual(f.calls, ['compact 42', 'defragment', 'disarm']);
    assert.deepEqual(reports, ['full', 'defrag', 'recovered']);
  });

  it('without reclaim (external etcd) only reports, once, until the alarm clears', async () => {
    const f = fake({ dbSizeBytes: 100 * MB, dbSizeInUseBytes: 10 * MB, revision: 7, alarms: ['NOSPACE'] });
    const reports: string[] = [];
    const j = new StoreJanitor(f.m, { reclaim: false, log: nullLogger, report: { status: () => undefined, full: (full) => void reports.push(full ? 'full' : 'recovered'), defragmented: () => void reports.push('defrag') } });
    await j.check();
    await j.check();
    f.st.alarms = [];
    await j.check();
    assert.deepEqual(f.calls, []);
    assert.deepEqual(reports, ['full', 'recovered']);
  });

  it('defragments only a mostly free file above the floor, at most once per interval', async () => {
    const f = fake({ dbSizeBytes: 200 * MB, dbSizeInUseBytes: 150 * MB, revision: 1, alarms: [] });
    const j = new StoreJanitor(f.m, { reclaim: true, log: nullLogger, report: { status: () => undefined, full: () => undefined, defragmented: () => undefined } });
    await j.check(); // 75% in use: no
    assert.deepEqual(f.calls, []);
    f.st.dbSizeInUseBytes = 50 * MB;
    await j.check(); // 25% in use: yes
    assert.deepEqual(f.calls, ['defragment']);
    f.st.dbSizeBytes = 200 * MB;
    await j.check(); // again mostly free, but too soon
    assert.deepEqual(f.calls, ['defragment']);
    const small = fake({ dbSizeBytes: 10 * MB, dbSizeInUseBytes: 1 * MB, revision: 1, alarms: [] });
    await new StoreJanitor(small.m, { reclaim: true, log: nullLogger, report: { status: () => undefined, full: () => undefined, defragmented: () => undefined } }).check();
    assert.deepEqual(small.calls, [], 'below the floor: not worth it');
  });
});
