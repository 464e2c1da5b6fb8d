// Output of the CLI: aligned tables for people (Docker's look: columns padded
// to the widest cell plus three spaces), JSON for scripts (`--format json`),
// and the small renderers the tables share (ages, sizes, ports, states).
import type { Command } from 'commander';
import type { Node, PortConfig, Service, Task } from '../proto/mod';
import { CliError } from './client';

export type OutputFormat = 'table' | 'json';

/** Gap between table columns (Docker's tabwriter padding). */
const COLUMN_GAP = 3;
/** Ids are shown this long unless --no-trunc (Docker's short id). */
export const SHORT_ID = 12;

/** `--format`: "table" (default) or "json"; anything else is refused by name. */
export function parseFormat(v: string | undefined): OutputFormat {
  if (v === undefined || v === '' || v === 'table') return 'table';
  if (v === 'json') return 'json';
  throw new CliError(`--format: "${v}" is not supported (use table or json)`);
}

/** Rows under headers, each column as wide as its widest cell; the last column is not padded. */
export function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] + COLUMN_GAP)))
      .join('')
      .trimEnd();
  return [line(headers), ...rows.map(line)].join('\n') + '\n';
}

/** Stable, indented JSON with a trailing newline. */
export function json(v: unknown): string {
  return JSON.stringify(v, null, 2) + '\n';
}

/** "key: value" lines, the keys aligned (inspect's human view). */
export function keyValues(pairs: [string, string][]): string {
  const w = Math.max(0, ...pairs.map(([k]) => k.length));
  return pairs.map(([k, v]) => `${(k + ':').padEnd(w + 2)}${v}`).join('\n') + '\n';
}

export function shortId(id: string, noTrunc = false): string {
  return noTrunc ? id : id.slice(0, SHORT_ID);
}

/** Docker's units.HumanDuration: "5 seconds", "About a minute", "3 hours", "2 days". */
export function humanDuration(ms: number): string {
  const s = Math.floor(Math.max(0, ms) / 1000);
  if (s < 1) return 'Less than a second';
  if (s === 1) return '1 second';
  if (s < 60) return `${s} seconds`;
  const m = Math.round(s / 60);
  if (m === 1) return 'About a minute';
  if (m < 60) return `${m} minutes`;
  const h = Math.round(s / 3600);
  if (h === 1) return 'About an hour';
  if (h < 48) return `${h} hours`;
  if (h < 24 * 7 * 2) return `${Math.floor(h / 24)} days`;
  if (h < 24 * 30 * 2) return `${Math.floor(h / 24 / 7)} weeks`;
  if (h < 24 * 365 * 2) return `${Math.floor(h / 24 / 30)} months`;
  return `${Math.floor(h / 24 / 365)} years`;
}

/** "5 seconds ago"; "-" for a missing time. */
export function ago(at: number, now: number): string {
  if (!at) return '-';
  return `${humanDuration(now - at)} ago`;
}

/** Binary sizes as Docker prints them: "512B", "64MiB", "1.5GiB". */
export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  const s = Number.isInteger(v) ? String(v) : v.toFixed(v < 10 ? 2 : 1).replace(/\.?0+$/, '');
  return `${s}${units[i]}`;
}

/** Nano-CPUs as a CPU count: 500000000 → "0.5". */
export function formatCpus(nano: number): string {
  return String(Math.round(nano / 1e6) / 1000);
}

/** Milliseconds as a Go-style duration: 90000 → "1m30s", 500 → "500ms", 0 → "0s". */
export function formatDuration(ms: number): string {
  if (!ms) return '0s';
  if (ms < 1000) return `${ms}ms`;
  let rest = ms;
  let out = '';
  const h = Math.floor(rest / 3_600_000);
  rest -= h * 3_600_000;
  const m = Math.floor(rest / 60_000);
  rest -= m * 60_000;
  if (h) out += `${h}h`;
  if (h || m) out += `${m}m`;
  const s = rest / 1000;
  if (s || !out) out += `${Number.isInteger(s) ? s : s.toFixed(3).replace(/0+$/, '')}s`;
  return out;
}

/** One port as Docker's service ls shows it: "*:8080->80/tcp", host mode marked. */
export function formatPort(p: PortConfig): string {
  const proto = p.protocol || 'tcp';
  const published = p.publishedPort ? String(p.publishedPort) : '';
  const host = p.publishMode === 'HOST' ? ' (host)' : '';
  return `*:${published}->${p.targetPort}/${proto}${host}`;
}

export function formatPorts(ports: PortConfig[] | undefined | null): string {
  return (ports ?? []).map(formatPort).join(', ');
}

/** "RUNNING" → "Running", "ON_FAILURE" → "On-failure". */
export function titleCase(s: string): string {
  const l = s.toLowerCase().replace(/_/g, '-');
  return l.charAt(0).toUpperCase() + l.slice(1);
}

export function modeName(svc: Service): string {
  switch (svc.spec?.mode) {
    case 'GLOBAL':
      return 'global';
    case 'REPLICATED_JOB':
      return svc.spec.job?.schedule ? 'replicated job (scheduled)' : 'replicated job';
    case 'GLOBAL_JOB':
      return svc.spec.job?.schedule ? 'global job (scheduled)' : 'global job';
    default:
      return 'replicated';
  }
}

/** "web.3" for a replicated slot, "web.<node id>" for a global task (Docker's names). */
export function taskName(t: Task, noTrunc = false): string {
  return t.slot ? `${t.serviceName}.${t.slot}` : `${t.serviceName}.${shortId(t.nodeId, noTrunc) || '?'}`;
}

/** "Running 5 seconds ago", "Pending 3 minutes ago". */
export function taskCurrentState(t: Task, now: number): string {
  const state = titleCase(t.status?.state ?? 'NEW');
  const at = Number(t.status?.timestamp ?? 0) || Number(t.meta?.updatedAt ?? 0);
  return at ? `${state} ${ago(at, now)}` : state;
}

/** Error column of service ps: the error, else a pending task's reason, else empty. */
export function taskError(t: Task): string {
  const err = t.status?.err ?? '';
  if (err) return err;
  if (t.status?.state === 'PENDING' && t.status.message) return t.status.message;
  return '';
}

export function nodeHostname(n: Node): string {
  return n.description?.hostname || n.id;
}

/** "NODE_READY" → "Ready". */
export function nodeStateName(n: Node): string {
  return titleCase((n.status?.state ?? 'NODE_UNKNOWN').replace(/^NODE_/, ''));
}

/** Map "k=v" → "k=v, k2=v2" in key order. */
export function formatLabels(m: Record<string, string> | undefined | null): string {
  return Object.keys(m ?? {})
    .sort()
    .map((k) => `${k}=${(m ?? {})[k]}`)
    .join(', ');
}

/** A cell that truncates long text with an ellipsis (errors in ps). */
export function clip(s: string, max: number): string {
  return s.length > max ? `${s.slice(0, Math.max(0, max - 1))}…` : s;
}

/** Output flags of the listing verbs: --format table|json, -q (ids only), --no-trunc. */
export interface OutputFlags {
  format?: string;
  quiet?: boolean;
  /** commander's negatable --no-trunc: false when given. */
  trunc?: boolean;
}

export function addOutputOptions(cmd: Command, opts: { quiet?: boolean; trunc?: boolean } = {}): Command {
  cmd.option('--format <format>', 'table (default) or json');
  if (opts.quiet !== false) cmd.option('-q, --quiet', 'only display ids');
  if (opts.trunc !== false) cmd.option('--no-trunc', 'do not truncate ids and errors');
  return cmd;
}
