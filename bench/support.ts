// What every benchmark needs: its flags, its statistics, and a bounded wait
// (a bound on I/O, never a timing assertion).

/** `--name N` from argv, or dflt. */
export function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
}

/** The middle value (the mean of the two middle ones for an even count). */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

/** Nearest-rank quantile (q = 0.99: the p99); NaN for no values. */
export function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))] : NaN;
}

/** Polls cond every pollMs until it holds; throws after timeoutMs. */
export async function until(what: string, cond: () => boolean | Promise<boolean>, timeoutMs: number, pollMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`bench: gave up waiting for ${what}`);
    await new Promise((r) => setTimeout(r, pollMs));
  }
}
