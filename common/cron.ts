// Five-field cron expressions (minute hour day-of-month month day-of-week)
// for scheduled jobs (docs/jobs.md), evaluated in an IANA time zone through
// Intl (no dependency: package.json has no cron library). Vixie cron's
// grammar: `*`, numbers, ranges `a-b`, lists `a,b`, steps `*/n`, `a-b/n`
// and `a/n`, month and weekday names (JAN-DEC, SUN-SAT, any case), 0 or 7
// for Sunday, and the macros @yearly @annually @monthly @weekly @daily
// @midnight @hourly. When both day fields are restricted (neither starts
// with `*`), a day matches either one, as in every cron.
//
// Time is wall-clock time in the zone. Across daylight-saving changes:
// - a wall time that does not exist (spring forward, 02:30 in a 02:00→03:00
//   gap) fires at the first instant after the gap (as Vixie cron runs
//   such jobs right after the change);
// - a wall time that occurs twice (fall back) fires once, at its first
//   occurrence (the search continues from the wall time of the last fire).
// Pure: no clock, no I/O.

export class CronError extends Error {}

export interface Cron {
  readonly source: string;
  readonly timezone: string;
  minutes: ReadonlySet<number>;
  hours: ReadonlySet<number>;
  days: ReadonlySet<number>;
  months: ReadonlySet<number>;
  weekdays: ReadonlySet<number>;
  /** Day of month / day of week was given as `*` (or `*`/n): the other day field alone decides. */
  anyDay: boolean;
  anyWeekday: boolean;
}

/** Longest expression and time zone name accepted (they are stored in every spec). */
export const CRON_MAX_CHARS = 256;
export const TIMEZONE_MAX_CHARS = 64;

const MONTHS = ['JAN', 'FEB', 'MAR', 'APR', 'MAY', 'JUN', 'JUL', 'AUG', 'SEP', 'OCT', 'NOV', 'DEC'];
const WEEKDAYS = ['SUN', 'MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT'];
const MACROS: Record<string, string> = {
  '@yearly': '0 0 1 1 *',
  '@annually': '0 0 1 1 *',
  '@monthly': '0 0 1 * *',
  '@weekly': '0 0 * * 0',
  '@daily': '0 0 * * *',
  '@midnight': '0 0 * * *',
  '@hourly': '0 * * * *',
};

interface FieldDef {
  name: string;
  min: number;
  max: number;
  names?: string[];
  /** The first name stands for this number (months: JAN = 1). */
  nameBase?: number;
}

const FIELDS: FieldDef[] = [
  { name: 'minute', min: 0, max: 59 },
  { name: 'hour', min: 0, max: 23 },
  { name: 'day of month', min: 1, max: 31 },
  { name: 'month', min: 1, max: 12, names: MONTHS, nameBase: 1 },
  { name: 'day of week', min: 0, max: 7, names: WEEKDAYS, nameBase: 0 },
];

function value(f: FieldDef, s: string): number {
  if (/^\d{1,2}$/.test(s)) {
    const n = Number(s);
    if (n < f.min || n > f.max) throw new CronError(`${f.name}: ${n} is out of range ${f.min}-${f.max}`);
    return n;
  }
  const i = f.names?.indexOf(s.toUpperCase()) ?? -1;
  if (i >= 0 && s.length === 3) return i + (f.nameBase ?? 0);
  throw new CronError(`${f.name}: ${JSON.stringify(s.slice(0, 20))} is not a number${f.names ? ' or a name' : ''} in ${f.min}-${f.max}`);
}

function field(f: FieldDef, text: string): { set: Set<number>; any: boolean } {
  const set = new Set<number>();
  if (!text) throw new CronError(`${f.name}: empty`);
  const parts = text.split(',');
  if (parts.length > 64) throw new CronError(`${f.name}: more than 64 list entries`);
  for (const part of parts) {
    if (!part) throw new CronError(`${f.name}: empty list entry in ${JSON.stringify(text.slice(0, 40))}`);
    const [range, stepText, extra] = part.split('/');
    if (extra !== undefined) throw new CronError(`${f.name}: ${JSON.stringify(part.slice(0, 40))} has two steps`);
    let step = 1;
    if (stepText !== undefined) {
      if (!/^\d{1,2}$/.test(stepText) || Number(stepText) < 1) throw new CronError(`${f.name}: step ${JSON.stringify(stepText.slice(0, 20))} must be a number from 1 to ${f.max}`);
      step = Number(stepText);
      if (step > f.max) throw new CronError(`${f.name}: step ${step} is larger than ${f.max}`);
    }
    let lo: number;
    let hi: number;
    if (range === '*') {
      lo = f.min;
      hi = f.max;
    } else if (range.includes('-')) {
      const [a, b, c] = range.split('-');
      if (c !== undefined || !a || !b) throw new CronError(`${f.name}: ${JSON.stringify(range.slice(0, 40))} is not a range a-b`);
      lo = value(f, a);
      hi = value(f, b);
      if (lo > hi) throw new CronError(`${f.name}: range ${lo}-${hi} goes backwards`);
    } else {
      lo = value(f, range);
      // "a/n" means from a to the end, stepping n (Vixie cron).
      hi = stepText !== undefined ? f.max : lo;
    }
    for (let v = lo; v <= hi; v += step) set.add(v);
  }
  return { set, any: text.startsWith('*') };
}

const DAYS_IN_MONTH = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/** Parses and checks an expression and its time zone; throws CronError naming the field. */
export function parseCron(expr: string, timezone = 'UTC'): Cron {
  if (typeof expr !== 'string' || !expr.trim()) throw new CronError('empty schedule');
  if (expr.length > CRON_MAX_CHARS) throw new CronError(`longer than ${CRON_MAX_CHARS} characters`);
  checkTimezone(timezone);
  const src = expr.trim();
  const text = src.startsWith('@') ? MACROS[src.toLowerCase()] : src;
  if (!text) throw new CronError(`${JSON.stringify(src.slice(0, 20))} is not a macro (${Object.keys(MACROS).join(' ')})`);
  const parts = text.split(/\s+/);
  if (parts.length !== 5) throw new CronError(`needs 5 fields (minute hour day-of-month month day-of-week), got ${parts.length}`);
  const [mi, h, d, mo, wd] = parts.map((p, i) => field(FIELDS[i], p));
  const weekdays = new Set([...wd.set].map((x) => x % 7));
  const c: Cron = { source: src, timezone, minutes: mi.set, hours: h.set, days: d.set, months: mo.set, weekdays, anyDay: d.any, anyWeekday: wd.any };
  // A day-of-month list that no chosen month has ("0 0 30 2 *") never fires.
  if (!c.anyDay && c.anyWeekday) {
    const possible = [...c.months].some((m) => [...c.days].some((day) => day <= DAYS_IN_MONTH[m - 1]));
    if (!possible) throw new CronError(`day of month: no chosen month has day ${[...c.days].sort((a, b) => a - b).join(',')}: the schedule never fires`);
  }
  return c;
}

/** Throws CronError unless `tz` is an IANA time zone name Intl knows. */
export function checkTimezone(tz: string): void {
  if (typeof tz !== 'string' || !tz) throw new CronError('time zone: empty');
  if (tz.length > TIMEZONE_MAX_CHARS) throw new CronError(`time zone: longer than ${TIMEZONE_MAX_CHARS} characters`);
  try {
    formatter(tz);
  } catch {
    throw new CronError(`time zone: ${JSON.stringify(tz)} is not an IANA time zone (e.g. UTC, Europe/Paris)`);
  }
}

const formatters = new Map<string, Intl.DateTimeFormat>();
function formatter(tz: string): Intl.DateTimeFormat {
  let f = formatters.get(tz);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', { timeZone: tz, hourCycle: 'h23', year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric', second: 'numeric' });
    if (formatters.size > 256) formatters.clear();
    formatters.set(tz, f);
  }
  return f;
}

/** The wall-clock time of `instant` in `tz`, as the UTC epoch ms of the same fields. */
export function wallClock(instant: number, tz: string): number {
  const p: Record<string, number> = {};
  for (const x of formatter(tz).formatToParts(new Date(instant))) if (x.type !== 'literal') p[x.type] = Number(x.value);
  return Date.UTC(p.year, p.month - 1, p.day, p.hour % 24, p.minute, p.second);
}

const MIN = 60_000;
const HOUR = 60 * MIN;

/**
 * The instant of wall time `wall` in `tz` that is later than `after`: the
 * earliest such occurrence (a fall-back hour has two), or the end of the gap
 * when the wall time does not exist.
 */
function instantOf(wall: number, tz: string, after: number): number | undefined {
  const cands = new Set<number>();
  for (const probe of [wall - 12 * HOUR, wall, wall + 12 * HOUR]) {
    const c = wall - (wallClock(probe, tz) - probe);
    cands.add(c);
  }
  const valid = [...cands].filter((c) => wallClock(c, tz) === wall && c > after).sort((a, b) => a - b);
  if (valid.length) return valid[0];
  if ([...cands].some((c) => wallClock(c, tz) === wall)) return undefined; // exists, but not after `after`
  // A gap: the first minute whose wall time is past `wall`, searched between the two offsets' readings.
  let lo = Math.min(...cands) - 3 * HOUR;
  let hi = Math.max(...cands) + 3 * HOUR;
  while (hi - lo > MIN) {
    const mid = lo + Math.floor((hi - lo) / 2 / MIN) * MIN;
    if (wallClock(mid, tz) > wall) hi = mid;
    else lo = mid;
  }
  return hi > after ? hi : undefined;
}

function dayMatches(c: Cron, wall: Date): boolean {
  const dom = c.days.has(wall.getUTCDate());
  const dow = c.weekdays.has(wall.getUTCDay());
  if (c.anyDay && c.anyWeekday) return true;
  if (c.anyDay) return dow;
  if (c.anyWeekday) return dom;
  return dom || dow;
}

/** How far ahead next() looks before it says the schedule never fires again. */
const HORIZON_MS = 8 * 366 * 24 * HOUR;

/** The first fire time strictly after `after` (epoch ms), or undefined within eight years. */
export function nextFire(c: Cron, after: number): number | undefined {
  const tz = c.timezone;
  // Start at the next whole wall-clock minute.
  let w = Math.floor(wallClock(after, tz) / MIN) * MIN + MIN;
  const end = w + HORIZON_MS;
  for (let guard = 0; guard < 200_000 && w < end; guard++) {
    const d = new Date(w);
    if (!c.months.has(d.getUTCMonth() + 1)) {
      w = Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1);
      continue;
    }
    if (!dayMatches(c, d)) {
      w = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate() + 1);
      continue;
    }
    if (!c.hours.has(d.getUTCHours())) {
      w = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate(), d.getUTCHours() + 1);
      continue;
    }
    if (!c.minutes.has(d.getUTCMinutes())) {
      w += MIN;
      continue;
    }
    const at = instantOf(w, tz, after);
    if (at !== undefined) return at;
    w += MIN;
  }
  return undefined;
}

/**
 * The latest fire time in (from, to], or undefined. Bounded work: the scan
 * walks forward from `from` but never more than `maxSteps` fires (a gap of
 * years over a `* * * * *` schedule starts at the window's end instead).
 */
export function lastFireIn(c: Cron, from: number, to: number, maxSteps = 10_000): number | undefined {
  // Narrow the window from the end: a schedule that fires often is found close to `to`.
  for (const span of [2 * MIN, HOUR, 25 * HOUR, 32 * 24 * HOUR, 367 * 24 * HOUR, Infinity]) {
    const start = Math.max(from, to - span);
    let t = nextFire(c, start);
    if (t === undefined || t > to) {
      if (start === from) return undefined;
      continue;
    }
    let last = t;
    for (let i = 0; i < maxSteps; i++) {
      t = nextFire(c, last);
      if (t === undefined || t > to) return last;
      last = t;
    }
    return last;
  }
  return undefined;
}
