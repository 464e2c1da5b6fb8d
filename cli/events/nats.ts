// How CLI verbs reach NATS: --nats, else $CONVOY_NATS, else the URL the
// managers advertise (Control GetClusterInfo.natsUrl).
import type { NatsConnection } from 'nats';
import { readBundle, type TlsBundle } from '../../common/identity';
import { natsTlsOptions } from '../../common/nats-tls';
import { CliError, tlsFlagOf, withApi, type CliIO, type ControlApi, type HostSource } from '../client';
import { configPath, tlsDirOf, TLS_DIR_ENV } from '../tls';

export const NATS_ENV = 'CONVOY_NATS';

/** --nats on the verb or an enclosing command. */
function natsFlag(cmd: HostSource): string | undefined {
  for (let c: HostSource | null = cmd; c; c = c.parent) {
    const v = c.opts().nats;
    if (typeof v === 'string' && v) return v;
  }
  return undefined;
}

export async function natsUrlFor(io: CliIO, cmd: HostSource, api: ControlApi): Promise<string> {
  const given = natsFlag(cmd) ?? io.env[NATS_ENV];
  if (given) return given;
  const info = await api.getClusterInfo({});
  if (!info.natsUrl) throw new CliError('the cluster has no NATS (managers run with --nats none); events, logs and autoscaling need it');
  return info.natsUrl;
}

/**
 * The nats library, loaded by the verbs that talk to NATS only: loading it
 * costs every other CLI verb a sixth of its start-up.
 */
export function natsLib(): typeof import('nats') {
  return require('nats') as typeof import('nats');
}

/**
 * The client bundle NATS requires (TLS with client certificates only): the
 * one the Control API uses (cli/tls.ts: --tls-dir, $CONVOY_TLS_DIR, "tlsDir"
 * in the per-user config, ~/.convoy/tls), so `convoy events` works wherever
 * `convoy service ls` does.
 */
export function natsBundleFor(io: CliIO, cmd: HostSource): TlsBundle {
  const dir = tlsDirOf(tlsFlagOf(cmd), io.env);
  if (!dir) throw new CliError(`NATS needs your client certificate: give --tls-dir, set ${TLS_DIR_ENV}, or set "tlsDir" in ${configPath(io.env)} (a bundle from \`convoy user create\`, or a manager's <data dir>/admin)`);
  try {
    return readBundle(dir);
  } catch (e) {
    throw new CliError(`client certificate for NATS (${dir}): ${e instanceof Error ? e.message : String(e)}`);
  }
}

export async function connectNats(url: string, tls: TlsBundle): Promise<NatsConnection> {
  try {
    return await natsLib().connect({ servers: url, tls: natsTlsOptions(url, tls), name: 'convoy-cli', timeout: 5_000, maxReconnectAttempts: -1, reconnectTimeWait: 500 });
  } catch (e) {
    throw new CliError(`cannot reach NATS at ${url}: ${e instanceof Error ? e.message : String(e)}`);
  }
}

/** withApi, plus a NATS connection that is closed afterwards. */
export async function withNats(io: CliIO, cmd: HostSource, body: (api: ControlApi, nc: NatsConnection) => Promise<void>): Promise<void> {
  await withApi(io, cmd, async (api) => {
    const nc = await connectNats(await natsUrlFor(io, cmd, api), natsBundleFor(io, cmd));
    try {
      await body(api, nc);
    } finally {
      await nc.close().catch(() => undefined);
    }
  });
}

/** Resolves on SIGINT/SIGTERM (the way a follower ends); the listeners go away afterwards. */
export function interrupted(): { promise: Promise<void>; dispose(): void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  const on = () => resolve();
  process.once('SIGINT', on);
  process.once('SIGTERM', on);
  return {
    promise,
    dispose: () => {
      process.off('SIGINT', on);
      process.off('SIGTERM', on);
    },
  };
}

/** "10m" (ago), RFC 3339, or epoch seconds → epoch ms. */
export function parseSince(s: string, now: number, flag = '--since'): number {
  const t = s.trim();
  if (/^\d+(\.\d+)?$/.test(t)) return Math.round(Number(t) * 1000);
  if (/^\d{4}-\d\d-\d\d/.test(t)) {
    const ms = Date.parse(t);
    if (Number.isFinite(ms)) return ms;
  }
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h)/gy;
  const units: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  let total = 0;
  let end = 0;
  for (let m = re.exec(t); m; m = re.exec(t)) {
    total += Number(m[1]) * units[m[2]];
    end = re.lastIndex;
  }
  if (!t || end !== t.length) throw new CliError(`${flag}: "${s}" is not a duration (10m, 1h30m), an RFC 3339 time or epoch seconds`);
  return now - Math.round(total);
}
