// The CLI's view of the Control API: one promisified method per RPC, a
// deadline on every call, and gRPC failures turned into one line an operator
// can act on. Verbs depend on the ControlApi interface only, so tests hand
// them an object literal instead of a manager.
import { CALL_DEADLINE_MS, type ClientSecurity, type ControlApi } from '../proto/client-common';
import { connectControlH2 as connect, GRPC_STATUS } from '../proto/control-h2';
import { clientSecurity, readConfig } from './tls';
import { DEFAULT_HOST, MANAGER_PORT } from '../proto/defaults';
import { installFastIpChecks } from './fast-ip';

export { DEFAULT_HOST, CALL_DEADLINE_MS };
export { CONTROL_METHODS, type ControlApi, type ControlMethod, type ControlRequest, type ControlResponse } from '../proto/client-common';
export { GRPC_STATUS };
/** Environment variable naming the manager (host:port), as DOCKER_HOST. */
export const HOST_ENV = 'CONVOY_HOST';

/** A manager's root-only unix socket: no TLS (its file mode is the check); the manager treats it as local root. */
const LOCAL_SOCKET: ClientSecurity = Object.freeze({ mode: 'local' });

/** An error the CLI reports as is: one line, no stack. */
export class CliError extends Error {
  override name = 'CliError';
  constructor(
    message: string,
    readonly exitCode = 1,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** A manager's root-only unix socket (`unix:///var/lib/convoy/manager/convoy.sock`), as docker's unix:// hosts. */
export function isUnixHost(host: string): boolean {
  return host.startsWith('unix:');
}

/**
 * --host, else $CONVOY_HOST, else DEFAULT_HOST (127.0.0.1:7420); a bare host
 * gets MANAGER_PORT; unix:///path (a manager's local socket) is kept as is.
 */
export function resolveHost(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  const given = (flag || env[HOST_ENV] || DEFAULT_HOST).trim();
  if (isUnixHost(given)) {
    if (!/^unix:\/\/\/./.test(given)) throw new CliError(`${HOST_ENV}/--host: "${given}" is not unix:///ABSOLUTE/PATH`);
    return given;
  }
  const raw = given.replace(/^(grpc|tcp|http):\/\//, '');
  if (!raw) return DEFAULT_HOST;
  // host:port, [v6]:port, or a bare host / bare v6 address.
  if (/^\[.*\]:\d+$/.test(raw) || /^[^:]+:\d+$/.test(raw)) return raw;
  if (raw.startsWith('[')) return `${raw}:${MANAGER_PORT}`;
  if (raw.includes(':')) return `[${raw}]:${MANAGER_PORT}`;
  return `${raw}:${MANAGER_PORT}`;
}

export interface ConnectedApi {
  api: ControlApi;
  close(): void;
}

/** A Control client to `host` with a deadline on every call (proto/control-h2.ts: plain HTTP/2, no grpc-js). */
export function connectControl(host: string, security: ClientSecurity, deadlineMs = CALL_DEADLINE_MS): ConnectedApi {
  // The local socket is root's by its file mode: no TLS on it (as docker.sock).
  const c = connect(host, { security: isUnixHost(host) ? LOCAL_SOCKET : security, deadlineMs });
  return { api: c, close: () => c.close() };
}

/** A gRPC failure, remembering which manager it came from. */
export interface GrpcFailure {
  code: number;
  details?: string;
  message?: string;
  host?: string;
}

function isGrpcFailure(e: unknown): e is GrpcFailure {
  return typeof e === 'object' && e !== null && typeof (e as { code?: unknown }).code === 'number' && ('details' in e || 'metadata' in e);
}

/**
 * One line for any failure: the manager's own message for a refused request
 * (it already names the field or the object), a hint for a transport failure.
 * Never a stack trace.
 */
export function describeError(e: unknown): string {
  if (e instanceof CliError) return e.message;
  if (isGrpcFailure(e)) {
    const details = (e.details || e.message || '').split('\n')[0].trim();
    const where = e.host ? ` at ${e.host}` : '';
    switch (e.code) {
      case GRPC_STATUS.UNAVAILABLE:
        if (/EACCES|EPERM/.test(details)) return `permission denied on the manager's socket${where} (it is root's only: run as root, or use a user certificate)`;
        if (/ECONNREFUSED|No connection established|connect|Name resolution failed|ENOTFOUND|EHOSTUNREACH|ETIMEDOUT/i.test(details))
          return `cannot reach a manager${where} (${shortCause(details)}); is \`convoy manager\` running? Set --host or ${HOST_ENV}`;
        return `manager${where} unavailable: ${details}`;
      case GRPC_STATUS.DEADLINE_EXCEEDED:
        return `manager${where} did not answer in time (${Math.round(CALL_DEADLINE_MS / 1000)}s)`;
      case GRPC_STATUS.ABORTED:
        // The manager says what changed; a version conflict is worth a retry.
        return details ? (/retry/.test(details) ? details : `${details}; retry`) : 'changed concurrently by another writer; retry';
      case GRPC_STATUS.UNIMPLEMENTED:
        return details && !/^\d+ UNIMPLEMENTED/.test(details) ? details : `the manager${where} does not implement this call (older version?)`;
      case GRPC_STATUS.CANCELLED:
        return 'cancelled';
      case GRPC_STATUS.INTERNAL:
      case GRPC_STATUS.UNKNOWN:
        return `manager error: ${details}`;
      default:
        return details || `request failed (gRPC code ${e.code})`;
    }
  }
  if (e instanceof Error) return e.message.split('\n')[0];
  return String(e);
}

function shortCause(details: string): string {
  const m = /(ECONNREFUSED|ENOTFOUND|EHOSTUNREACH|ETIMEDOUT|Name resolution failed[^,;]*)/.exec(details);
  if (m) return m[1] === 'ECONNREFUSED' ? 'connection refused' : m[1];
  return details.replace(/^No connection established\.?\s*/i, '').replace(/^Last error:\s*/i, '') || 'no connection';
}

/** gRPC status code of a failure, if it is one (NOT_FOUND checks and the like). */
export function grpcCode(e: unknown): number | undefined {
  return isGrpcFailure(e) ? e.code : undefined;
}

// ---- what every verb runs in ---------------------------------------------

/** The outside world of a verb: output streams, clock, environment, and how to reach a manager. */
export interface CliIO {
  out(s: string): void;
  err(s: string): void;
  now(): number;
  env: NodeJS.ProcessEnv;
  /** `security` is resolved only by a real connection (test doubles ignore it). */
  connect(host: string, security: () => ClientSecurity): ConnectedApi;
  /** Records the exit status (process.exitCode for the real binary). */
  setExitCode(code: number): void;
  /** stdout's width when it is a terminal (progress views redraw in place there); absent or undefined: not a terminal. */
  terminal?(): { columns: number; rows?: number } | undefined;
  /** Runs `say` on Ctrl-C, then exits with status 130 (the real binary); returns the undo. */
  onInterrupt?(say: () => void): () => void;
}

export function processIO(): CliIO {
  // node's IPv6 expression costs a start 5-15 ms on its first use; same answers without it (cli/fast-ip.ts).
  installFastIpChecks();
  // The reader went away (`convoy service logs -f | head`): end quietly, as cat does, not with an unhandled EPIPE.
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code !== 'EPIPE') throw e;
    process.exit(0);
  });
  return {
    out: (s) => void process.stdout.write(s),
    err: (s) => void process.stderr.write(s),
    now: () => Date.now(),
    env: process.env,
    // A manager's unix socket needs no bundle (cli/tls.ts is not even asked).
    connect: (host, security) => connectControl(host, isUnixHost(host) ? LOCAL_SOCKET : security()),
    setExitCode: (code) => {
      process.exitCode = code;
    },
    onInterrupt: (say) => {
      const h = () => {
        say();
        process.exit(130);
      };
      process.once('SIGINT', h);
      return () => void process.removeListener('SIGINT', h);
    },
    terminal: () => (process.stdout.isTTY && process.env.TERM !== 'dumb' ? { columns: process.stdout.columns || 80, rows: process.stdout.rows || undefined } : undefined),
  };
}

/** The subset of a commander Command `withApi` reads (--host on the verb or on `convoy`). */
export interface HostSource {
  opts(): Record<string, unknown>;
  parent: HostSource | null;
}

/** --host given on the verb, else on any enclosing command, else CONVOY_HOST, else the default. */
export function hostOf(cmd: HostSource, env: NodeJS.ProcessEnv): string {
  for (let c: HostSource | null = cmd; c; c = c.parent) {
    const h = c.opts().host;
    if (typeof h === 'string' && h) return resolveHost(h, env);
  }
  if (!env[HOST_ENV]) {
    // The per-user config file (cli/tls.ts) names a host when neither --host nor CONVOY_HOST does.
    const configured = readConfig(env).host;
    if (configured) return resolveHost(configured, {});
  }
  return resolveHost(undefined, env);
}

/** --tls-dir on the verb or an enclosing command (undefined: the environment and config decide, cli/tls.ts). */
export function tlsFlagOf(cmd: HostSource): string | undefined {
  for (let c: HostSource | null = cmd; c; c = c.parent) {
    const d = c.opts().tlsDir;
    if (typeof d === 'string' && d) return d;
  }
  return undefined;
}

/** The client's credentials for a verb run from `cmd` (its bundle, cli/tls.ts); throws a CliError naming what to do. */
export function securityOf(cmd: HostSource, env: NodeJS.ProcessEnv): ClientSecurity {
  try {
    return clientSecurity(tlsFlagOf(cmd), env);
  } catch (e) {
    throw new CliError((e as Error).message);
  }
}

/**
 * Runs a verb's body against the manager and turns any failure into
 * `convoy: <one line>` on stderr and exit status 1. The connection is closed
 * afterwards, so the process exits as soon as the output is written.
 */
export async function withApi(io: CliIO, cmd: HostSource, body: (api: ControlApi) => Promise<void>): Promise<void> {
  let conn: ConnectedApi | undefined;
  try {
    conn = io.connect(hostOf(cmd, io.env), () => securityOf(cmd, io.env));
    await body(conn.api);
  } catch (e) {
    reportError(io, e);
  } finally {
    conn?.close();
  }
}

/** Runs a body that needs no manager, with the same error reporting. */
export async function guarded(io: CliIO, body: () => Promise<void>): Promise<void> {
  try {
    await body();
  } catch (e) {
    reportError(io, e);
  }
}

export function reportError(io: CliIO, e: unknown): void {
  io.err(`convoy: ${describeError(e)}\n`);
  io.setExitCode(e instanceof CliError ? e.exitCode : 1);
}
