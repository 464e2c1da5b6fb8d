// The per-user client config file, as ~/.docker/config.json for the docker
// CLI: $CONVOY_CONFIG, else ~/.convoy/config.json. {"host": "...",
// "tlsDir": "..."}; `lab` marks one that `convoy lab up` wrote (and `lab
// down` removes). Named clusters (`convoy context`, as `docker context`):
// "contexts": {"prod": {"host": "...", "tlsDir": "...", "description": ""}}
// and "currentContext" (what `convoy context use` set). Read by the CLI
// (cli/tls.ts), written by the lab and `convoy context`.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export const CONFIG_ENV = 'CONVOY_CONFIG';

/** One named cluster: the manager and the client bundle to reach it with. */
export interface ClientContext {
  host: string;
  tlsDir: string;
  description?: string;
}

export interface ClientConfig {
  host?: string;
  tlsDir?: string;
  /** The lab dir, when `convoy lab up` wrote this file. */
  lab?: string;
  /** `convoy context use NAME`; absent = the "default" context (host and tlsDir above). */
  currentContext?: string;
  contexts?: Record<string, ClientContext>;
}

export function configPath(env: NodeJS.ProcessEnv = process.env): string {
  return env[CONFIG_ENV] || path.join(env.HOME || os.homedir(), '.convoy', 'config.json');
}

/** The config file, {} when there is none; a broken one is an error naming the file. */
export function readClientConfig(env: NodeJS.ProcessEnv = process.env): ClientConfig {
  const p = configPath(env);
  let raw: string;
  try {
    raw = fs.readFileSync(p, 'utf8');
  } catch {
    return {};
  }
  let c: ClientConfig;
  try {
    c = JSON.parse(raw) as ClientConfig;
  } catch {
    throw new Error(`${p}: not JSON (want {"host": "...", "tlsDir": "..."})`);
  }
  const str = (v: unknown) => (typeof v === 'string' ? v : undefined);
  const out: ClientConfig = { host: str(c.host), tlsDir: str(c.tlsDir), lab: str(c.lab), currentContext: str(c.currentContext) };
  const raw2 = (c as { contexts?: unknown }).contexts;
  if (raw2 !== undefined && raw2 !== null) {
    if (typeof raw2 !== 'object' || Array.isArray(raw2)) throw new Error(`${p}: "contexts" is not an object of {"host": "...", "tlsDir": "..."}`);
    out.contexts = {};
    for (const [name, v] of Object.entries(raw2 as Record<string, unknown>)) {
      const x = v as Partial<ClientContext> | null;
      if (!x || typeof x !== 'object' || typeof x.host !== 'string' || typeof x.tlsDir !== 'string') throw new Error(`${p}: contexts.${name}: want {"host": "...", "tlsDir": "..."}`);
      out.contexts[name] = { host: x.host, tlsDir: x.tlsDir, ...(typeof x.description === 'string' && x.description ? { description: x.description } : {}) };
    }
  }
  return out;
}

/** Writes the config file (0600, its directory 0700). */
export function writeClientConfig(c: ClientConfig, env: NodeJS.ProcessEnv = process.env): string {
  const p = configPath(env);
  fs.mkdirSync(path.dirname(p), { recursive: true, mode: 0o700 });
  const tmp = `${p}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, JSON.stringify(c, null, 2) + '\n', { mode: 0o600 });
  fs.renameSync(tmp, p);
  return p;
}
