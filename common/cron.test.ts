// The cron parser and its fire times: grammar, names, steps, both day
// fields, time zones, daylight-saving gaps and folds, bad input named by field.
import { strict as assert } from 'node:assert';
import { CronError, lastFireIn, nextFire, parseCron, wallClock } from './cron';

const iso = (ms: number | undefined) => (ms === undefined ? 'never' : new Date(ms).toISOString());
const at = (s: string) => Date.parse(s);
/** The first n fire times after `from`. */
function fires(expr: string, from: string, n: number, tz = 'UTC'): string[] {
  const c = parseCron(expr, tz);
  const out: string[] = [];
  let t = at(from);
  for (let i = 0; i < n; i++) {
    const x = nextFire(c, t);
    out.push(iso(x));
    if (x === undefined) break;
    t = x;
  }
  return out;
}

describe('cron: grammar', () => {
  it('every minute, strictly after the given instant, on whole minutes', () => {
    assert.deepEqual(fires('* * * * *', '2026-01-01T00:00:00Z', 3), ['2026-01-01T00:01:00.000Z', '2026-01-01T00:02:00.000Z', '2026-01-01T00:03:00.000Z']);
    assert.deepEqual(fires('* * * * *', '2026-01-01T00:00:30.500Z', 1), ['2026-01-01T00:01:00.000Z']);
  });

  it('lists, ranges, steps on ranges and from a start value', () => {
    assert.deepEqual(fires('5,10-12 * * * *', '2026-01-01T00:00:00Z', 5), ['2026-01-01T00:05:00.000Z', '2026-01-01T00:10:00.000Z', '2026-01-01T00:11:00.000Z', '2026-01-01T00:12:00.000Z', '2026-01-01T01:05:00.000Z']);
    assert.deepEqual(fires('*/20 * * * *', '2026-01-01T00:00:00Z', 3), ['2026-01-01T00:20:00.000Z', '2026-01-01T00:40:00.000Z', '2026-01-01T01:00:00.000Z']);
    assert.deepEqual(fires('0 8-17/4 * * *', '2026-01-01T00:00:00Z', 4), ['2026-01-01T08:00:00.000Z', '2026-01-01T12:00:00.000Z', '2026-01-01T16:00:00.000Z', '2026-01-02T08:00:00.000Z']);
    assert.deepEqual(fires('50/5 * * * *', '2026-01-01T00:00:00Z', 3), ['2026-01-01T00:50:00.000Z', '2026-01-01T00:55:00.000Z', '2026-01-01T01:50:00.000Z']);
  });

  it('month and weekday names in any case; 0 and 7 are both Sunday', () => {
    // 2026-03-01 is a Sunday.
    assert.deepEqual(fires('0 0 * mar sun', '2026-02-01T00:00:00Z', 2), ['2026-03-01T00:00:00.000Z', '2026-03-08T00:00:00.000Z']);
    assert.deepEqual(fires('0 0 * 3 7', '2026-02-01T00:00:00Z', 1), ['2026-03-01T00:00:00.000Z']);
    assert.deepEqual(fires('0 12 * JAN-FEB MON-FRI', '2026-01-02T13:00:00Z', 2), ['2026-01-05T12:00:00.000Z', '2026-01-06T12:00:00.000Z']);
  });

  it('both day fields restricted: either matches (Vixie cron)', () => {
    // The 13th, or any Friday: 2026-02-06 is a Friday, then Feb 13 (also a Friday), then Feb 20.
    assert.deepEqual(fires('0 0 13 * 5', '2026-02-01T00:00:00Z', 3), ['2026-02-06T00:00:00.000Z', '2026-02-13T00:00:00.000Z', '2026-02-20T00:00:00.000Z']);
    // Day of month alone: 31st skips the short months.
    assert.deepEqual(fires('0 0 31 * *', '2026-01-31T00:00:00Z', 2), ['2026-03-31T00:00:00.000Z', '2026-05-31T00:00:00.000Z']);
  });

  it('leap days: Feb 29 fires only in leap years', () => {
    assert.deepEqual(fires('0 0 29 2 *', '2026-01-01T00:00:00Z', 2), ['2028-02-29T00:00:00.000Z', '2032-02-29T00:00:00.000Z']);
  });

  it('macros', () => {
    assert.deepEqual(fires('@hourly', '2026-01-01T00:30:00Z', 1), ['2026-01-01T01:00:00.000Z']);
    assert.deepEqual(fires('@daily', '2026-01-01T00:30:00Z', 1), ['2026-01-02T00:00:00.000Z']);
    assert.deepEqual(fires('@weekly', '2026-01-01T00:00:00Z', 1), ['2026-01-04T00:00:00.000Z']);
    assert.deepEqual(fires('@monthly', '2026-01-15T00:00:00Z', 1), ['2026-02-01T00:00:00.000Z']);
    assert.deepEqual(fires('@YEARLY', '2026-01-15T00:00:00Z', 1), ['2027-01-01T00:00:00.000Z']);
  });
});

describe('cron: bad input names the field', () => {
  const bad: [string, RegExp][] = [
    ['', /empty schedule/],
    ['* * * *', /needs 5 fields .* got 4/],
    ['* * * * * *', /got 6/],
    ['60 * * * *', /^minute: 60 is out of range 0-59/],
    ['* 24 * * *', /^hour: 24 is out of range 0-23/],
    ['* * 0 * *', /^day of month: 0 is out of range 1-31/],
    ['* * * 13 *', /^month: 13 is out of range 1-12/],
    ['* * * * 8', /^day of week: 8 is out of range 0-7/],
    ['* * * FOO *', /^month: "FOO" is not a number or a name/],
    ['* * * * MONDAY', /^day of week: "MONDAY"/],
    ['5-1 * * * *', /^minute: range 5-1 goes backwards/],
    ['*/0 * * * *', /^minute: step "0" must be a number/],
    ['*/x * * * *', /^minute: step "x"/],
    ['1/2/3 * * * *', /^minute: "1\/2\/3" has two steps/],
    ['1,,2 * * * *', /^minute: empty list entry/],
    ['1-2-3 * * * *', /^minute: "1-2-3" is not a range/],
    ['-1 * * * *', /^minute: "-1" is not a range/],
    ['0 0 30 2 *', /^day of month: no chosen month has day 30: the schedule never fires/],
    ['@often', /"@often" is not a macro/],
    ['*'.repeat(300), /longer than 256 characters/],
  ];
  for (const [expr, re] of bad)
    it(`refuses ${JSON.stringify(expr.slice(0, 20))}`, () => {
      assert.throws(() => parseCron(expr), (e: Error) => e instanceof CronError && re.test(e.message), `for ${expr}`);
    });

  it('refuses a time zone Intl does not know, and accepts IANA names', () => {
    assert.throws(() => parseCron('* * * * *', 'Mars/Olympus'), /time zone: "Mars\/Olympus" is not an IANA time zone/);
    assert.throws(() => parseCron('* * * * *', ''), /time zone: empty/);
    for (const tz of ['UTC', 'Europe/Paris', 'America/New_York', 'Asia/Kolkata', 'Australia/Lord_Howe']) parseCron('* * * * *', tz);
  });

  it('day of week restricted with an impossible day of month still fires (either matches)', () => {
    assert.equal(fires('0 0 30 2 1', '2026-01-01T00:00:00Z', 1)[0], '2026-02-02T00:00:00.000Z'); // the first Monday of February
  });
});

describe('cron: time zones and daylight saving', () => {
  it('fires at the zone\'s wall-clock time, following its offset through the year', () => {
    // 09:00 in Paris: UTC+1 in winter, UTC+2 in summer.
    assert.deepEqual(fires('0 9 * * *', '2026-01-10T00:00:00Z', 1, 'Europe/Paris'), ['2026-01-10T08:00:00.000Z']);
    assert.deepEqual(fires('0 9 * * *', '2026-07-10T00:00:00Z', 1, 'Europe/Paris'), ['2026-07-10T07:00:00.000Z']);
    // A half-hour zone.
    assert.deepEqual(fires('0 9 * * *', '2026-07-10T00:00:00Z', 1, 'Asia/Kolkata'), ['2026-07-10T03:30:00.000Z']);
  });

  it('a wall time in the spring-forward gap fires at the end of the gap, once', () => {
    // New York, 2026-03-08: 02:00 EST jumps to 03:00 EDT (07:00Z).
    assert.deepEqual(fires('30 2 * * *', '2026-03-07T12:00:00Z', 3, 'America/New_York'), ['2026-03-08T07:00:00.000Z', '2026-03-09T06:30:00.000Z', '2026-03-10T06:30:00.000Z']);
    // Every quarter hour of the missing hour: one fire at 03:00 EDT, then 03:15 is not in hour 2.
    assert.deepEqual(fires('*/15 2 * * *', '2026-03-08T06:50:00Z', 2, 'America/New_York'), ['2026-03-08T07:00:00.000Z', '2026-03-09T06:00:00.000Z']);
  });

  it('a wall time in the fall-back fold fires once, at its first occurrence', () => {
    // New York, 2026-11-01: 02:00 EDT goes back to 01:00 EST; 01:30 happens at 05:30Z and 06:30Z.
    assert.deepEqual(fires('30 1 * * *', '2026-10-31T12:00:00Z', 2, 'America/New_York'), ['2026-11-01T05:30:00.000Z', '2026-11-02T06:30:00.000Z']);
    // Hourly through the fold: 01:00 EDT, then the wall clock goes on from 01:00 (02:00 EST is next).
    assert.deepEqual(fires('0 * * * *', '2026-11-01T04:30:00Z', 3, 'America/New_York'), ['2026-11-01T05:00:00.000Z', '2026-11-01T07:00:00.000Z', '2026-11-01T08:00:00.000Z']);
  });

  it('an instant inside the second pass of the fold continues from there (never in the past)', () => {
    const c = parseCron('* * * * *', 'America/New_York');
    const inSecondPass = at('2026-11-01T06:10:00Z'); // 01:10 EST, the second 01:10
    assert.equal(iso(nextFire(c, inSecondPass)), '2026-11-01T06:11:00.000Z');
  });

  it('wallClock reads the zone\'s fields', () => {
    assert.equal(new Date(wallClock(at('2026-07-01T12:00:00Z'), 'Europe/Paris')).toISOString(), '2026-07-01T14:00:00.000Z');
  });
});

describe('cron: the latest fire in a window (missed schedules)', () => {
  const c = parseCron('*/10 * * * *');
  it('finds the last fire time at or before the end, after the start', () => {
    assert.equal(iso(lastFireIn(c, at('2026-01-01T00:00:00Z'), at('2026-01-01T00:35:00Z'))), '2026-01-01T00:30:00.000Z');
    assert.equal(iso(lastFireIn(c, at('2026-01-01T00:00:00Z'), at('2026-01-01T00:30:00Z'))), '2026-01-01T00:30:00.000Z');
    assert.equal(lastFireIn(c, at('2026-01-01T00:30:00Z'), at('2026-01-01T00:39:00Z')), undefined);
  });
  it('stays bounded over years of a minutely schedule', () => {
    const m = parseCron('* * * * *');
    assert.equal(iso(lastFireIn(m, at('2020-01-01T00:00:00Z'), at('2026-01-01T00:00:30Z'))), '2026-01-01T00:00:00.000Z');
    const y = parseCron('0 0 1 1 *');
    assert.equal(iso(lastFireIn(y, at('2020-06-01T00:00:00Z'), at('2026-06-01T00:00:00Z'))), '2026-01-01T00:00:00.000Z');
  });
});
