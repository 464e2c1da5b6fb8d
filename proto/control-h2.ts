// A Control API client on Node's own http2, without @grpc/grpc-js: the
// Control service is unary only, and a unary gRPC call is one HTTP/2 POST.
// The CLI uses it: a command makes a call or two and exits, and grpc-js's
// module start, its channel machinery (resolver, load balancer, subchannel
// states) and its wait for the server's SETTINGS before the first request
// were ~20 ms of a `convoy service ls` (docs/cli.md, "Start-up"). The
// long-lived programs (manager, agent, lab, e2e, benchmarks) keep grpc-js
// (proto/client.ts): streams, reconnection backoff, keepalive.
//
// The wire format (gRPC over HTTP/2, grpc/doc/PROTOCOL-HTTP2.md): POST
// /convoy.Control/Method with content-type application/grpc, te: trailers and
// grpc-timeout; the body is one length-prefixed message (a compressed flag
// byte, a 4-byte big-endian length); the status comes in the trailers
// (grpc-status, grpc-message percent-encoded) or, for a trailers-only
// answer, in the headers. Same security as grpc-js's client: mutual TLS
// against the cluster CA, server name MANAGER_SERVER_NAME checked by
// checkManager (a manager's certificate, not a worker's); plaintext only on
// a unix socket (`local`) or on loopback (`plaintext-test`).
import * as http2 from 'node:http2';
import * as net from 'node:net';
import * as tls from 'node:tls';
import type { Duplex } from 'node:stream';
import { LOADER_OPTIONS, servicesFromCodecs, type Codecs, type ServicesDefinition } from './definition';
import {
  CALL_DEADLINE_MS,
  checkManager,
  controlApiOf,
  isLoopbackTarget,
  MANAGER_SERVER_NAME,
  type ClientSecurity,
  type ControlConnection,
  type ControlInvoker,
  type ControlMethod,
  type ControlRequest,
  type ControlResponse,
} from './client-common';

/** gRPC status codes (grpc/doc/statuscodes.md; the same numbers as grpc-js's `status`, held by a test). */
export const GRPC_STATUS = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
} as const;

const STATUS_NAME = Object.fromEntries(Object.entries(GRPC_STATUS).map(([k, v]) => [v, k])) as Record<number, string>;

/** Largest answer read (gRPC's default for a client, as grpc-js's): a larger one fails RESOURCE_EXHAUSTED. */
export const DEFAULT_MAX_RECEIVE_BYTES = 4 * 1024 * 1024;

/** A failed call, shaped as grpc-js's ServiceError (code, details, metadata) plus the manager it came from. */
export class ControlCallError extends Error {
  override name = 'ControlCallError';
  constructor(
    readonly code: number,
    readonly details: string,
    readonly host: string,
    readonly metadata: Readonly<Record<string, string>> = {},
  ) {
    super(`${code} ${STATUS_NAME[code] ?? 'UNKNOWN'}: ${details}`);
  }
}

export interface H2ControlOptions {
  security: ClientSecurity;
  /** Deadline of each call (ms), connecting included. Default CALL_DEADLINE_MS. */
  deadlineMs?: number;
  /** Headers sent with every call. */
  metadata?: Readonly<Record<string, string>>;
  /** Largest answer read. Default DEFAULT_MAX_RECEIVE_BYTES. */
  maxReceiveBytes?: number;
}

type MethodDefinition = ServicesDefinition[string][string];
let control: Map<string, MethodDefinition> | undefined;

/** The Control service's methods (paths and codecs) by their camelCase names, from the build's codecs, once per process. */
function controlMethod(m: ControlMethod): MethodDefinition | undefined {
  // Required here, not imported: the codecs are the largest module of a CLI start, and only a call needs them.
  control ??= new Map(Object.values(servicesFromCodecs(require('./generated/control-codec') as Codecs, LOADER_OPTIONS)['convoy.Control']).map((d) => [d.originalName, d]));
  return control.get(m);
}

/** `unix:///path` or `unix:/path` → the path; host:port and [v6]:port → host and port. */
export function parseTarget(addr: string): { path: string } | { host: string; port: number } {
  if (addr.startsWith('unix:')) return { path: addr.replace(/^unix:(\/\/)?/, '') };
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(addr) ?? /^([^:]+):(\d+)$/.exec(addr);
  if (!m || +m[2] < 1 || +m[2] > 65535) throw new Error(`not a manager address (host:port): ${addr}`);
  return { host: m[1], port: +m[2] };
}

/** The socket a session runs on, as `security` says (the one place this client chooses it). */
function dial(addr: string, security: ClientSecurity): Duplex {
  const t = parseTarget(addr);
  switch (security.mode) {
    case 'mtls':
      if ('path' in t) throw new Error(`mutual TLS is for host:port targets, not ${addr}`);
      if (!security.ca || !security.cert || !security.key) throw new Error('mtls: ca, cert and key are all required');
      return tls.connect({
        host: t.host,
        port: t.port,
        ca: security.ca,
        cert: security.cert,
        key: security.key,
        servername: MANAGER_SERVER_NAME,
        checkServerIdentity: checkManager,
        ALPNProtocols: ['h2'],
      });
    case 'local':
      if (!('path' in t)) throw new Error(`local credentials are for unix sockets, not ${addr}`);
      return net.connect(t.path);
    case 'plaintext-test':
      if ('path' in t || !isLoopbackTarget(addr)) throw new Error(`plaintext is for test harnesses on loopback, not ${addr}`);
      return net.connect(t.port, t.host);
    case 'join':
      throw new Error('join security is for the join listener (NodeCA), not the Control API');
  }
}

/** grpc-timeout: at most 8 digits and a unit (PROTOCOL-HTTP2.md). */
function grpcTimeout(ms: number): string {
  const v = Math.max(1, Math.ceil(ms));
  return v < 1e8 ? `${v}m` : `${Math.min(99_999_999, Math.ceil(v / 1000))}S`;
}

/** What a stream reset means as a status (grpc-js's mapping). */
function rstStatus(code: number): number {
  const c = http2.constants;
  if (code === c.NGHTTP2_REFUSED_STREAM) return GRPC_STATUS.UNAVAILABLE;
  if (code === c.NGHTTP2_CANCEL) return GRPC_STATUS.CANCELLED;
  if (code === c.NGHTTP2_ENHANCE_YOUR_CALM) return GRPC_STATUS.RESOURCE_EXHAUSTED;
  if (code === c.NGHTTP2_INADEQUATE_SECURITY) return GRPC_STATUS.PERMISSION_DENIED;
  return GRPC_STATUS.INTERNAL;
}

/** The status an HTTP status stands for when the answer is not gRPC (PROTOCOL-HTTP2.md, http-grpc-status-mapping). */
function httpStatus(s: number): number {
  if (s === 400) return GRPC_STATUS.INTERNAL;
  if (s === 401) return GRPC_STATUS.UNAUTHENTICATED;
  if (s === 403) return GRPC_STATUS.PERMISSION_DENIED;
  if (s === 404) return GRPC_STATUS.UNIMPLEMENTED;
  if (s === 429 || s === 502 || s === 503 || s === 504) return GRPC_STATUS.UNAVAILABLE;
  return GRPC_STATUS.UNKNOWN;
}

function decodeMessage(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

function header(h: http2.IncomingHttpHeaders, k: string): string | undefined {
  const v = h[k];
  return Array.isArray(v) ? v[0] : v;
}

/** The non-reserved headers of an answer (what grpc-js calls its metadata). */
function metadataOf(h: http2.IncomingHttpHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(h)) if (!k.startsWith(':') && !k.startsWith('grpc-') && k !== 'content-type' && v !== undefined) out[k] = Array.isArray(v) ? v.join(',') : v;
  return out;
}

/**
 * A Control client to `addr` whose calls go over one HTTP/2 session, opened
 * at the first call and again at the next call after it closed. Failures
 * reject with a ControlCallError (code, details, `host` = `addr`): a
 * connection that cannot be made is UNAVAILABLE with "No connection
 * established" and the socket's error in its details, as grpc-js says it.
 */
export function connectControlH2(addr: string, o: H2ControlOptions): ControlConnection {
  const deadlineMs = o.deadlineMs ?? CALL_DEADLINE_MS;
  const maxReceive = o.maxReceiveBytes ?? DEFAULT_MAX_RECEIVE_BYTES;
  let session: http2.ClientHttp2Session | undefined;
  /** Why the current session failed (a TLS or socket error), for the calls it takes down. */
  let sessionError: Error | undefined;
  let connected = false;
  let closed = false;

  const open = (): http2.ClientHttp2Session => {
    if (session && !session.closed && !session.destroyed) return session;
    sessionError = undefined;
    connected = false;
    const s = http2.connect(addr.startsWith('unix:') ? 'http://localhost' : `https://${MANAGER_SERVER_NAME}`, {
      createConnection: () => {
        const sock = dial(addr, o.security);
        // The socket's own error (refused, a TLS alert) is the cause the calls report.
        sock.once('error', (e: Error) => {
          if (session === s) sessionError ??= e;
        });
        return sock;
      },
      settings: { enablePush: false },
    });
    s.once('connect', () => {
      connected = true;
    });
    s.on('error', (e: Error) => {
      sessionError ??= e;
    });
    s.once('close', () => {
      if (session === s) session = undefined;
    });
    // No call running: the session does not keep the process alive.
    s.unref();
    session = s;
    return s;
  };

  const invoke: ControlInvoker = <M extends ControlMethod>(m: M, req: ControlRequest<M>) =>
    new Promise<ControlResponse<M>>((resolve, reject) => {
      if (closed) return reject(new ControlCallError(GRPC_STATUS.CANCELLED, 'the connection was closed', addr));
      const def = controlMethod(m);
      if (!def) return reject(new ControlCallError(GRPC_STATUS.UNIMPLEMENTED, `no Control method ${m}`, addr));
      let body: Buffer;
      try {
        body = def.requestSerialize(req ?? {});
      } catch (e) {
        return reject(new ControlCallError(GRPC_STATUS.INTERNAL, `request serialization failure: ${(e as Error).message}`, addr));
      }
      let s: http2.ClientHttp2Session;
      let stream: http2.ClientHttp2Stream;
      try {
        s = open();
        s.ref();
        stream = s.request({
          ':method': 'POST',
          ':path': def.path,
          'content-type': 'application/grpc',
          te: 'trailers',
          'grpc-timeout': grpcTimeout(deadlineMs),
          'user-agent': 'convoy-control-h2/1',
          ...o.metadata,
        });
      } catch (e) {
        return reject(new ControlCallError(GRPC_STATUS.UNAVAILABLE, `No connection established. Last error: ${(e as Error).message}`, addr));
      }
      let done = false;
      const finish = (err: ControlCallError | undefined, res?: ControlResponse<M>) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        if (!stream.closed) stream.close(http2.constants.NGHTTP2_CANCEL);
        // The process may exit once no call runs (an idle session is unref'd).
        if (session === s && !s.destroyed) s.unref();
        if (err) reject(err);
        else resolve(res as ControlResponse<M>);
      };
      const fail = (code: number, details: string, md?: Record<string, string>) => finish(new ControlCallError(code, details, addr, md));
      const timer = setTimeout(() => fail(GRPC_STATUS.DEADLINE_EXCEEDED, 'Deadline exceeded'), deadlineMs);

      let headers: http2.IncomingHttpHeaders | undefined;
      let trailers: http2.IncomingHttpHeaders | undefined;
      const chunks: Buffer[] = [];
      let received = 0;
      stream.on('response', (h) => {
        headers = h;
      });
      stream.on('trailers', (t) => {
        trailers = t;
      });
      stream.on('data', (c: Buffer) => {
        received += c.length;
        if (received > maxReceive + 5) fail(GRPC_STATUS.RESOURCE_EXHAUSTED, `Received message larger than max (${received - 5} vs. ${maxReceive})`);
        else chunks.push(c);
      });
      stream.on('error', () => {
        /* the outcome is decided on 'close' */
      });
      stream.on('close', () => {
        if (done) return;
        if (!headers) {
          // Nothing came back. The connection failed (refused; a TLS alert, which TLS 1.3 sends after the client's
          // handshake is done: the server refused our certificate) or the server refused the stream. The socket's
          // error may come after the stream's end: decide on the next turn of the loop.
          return void setImmediate(() => {
            if (!connected || sessionError || s.destroyed || s.closed)
              return fail(GRPC_STATUS.UNAVAILABLE, `No connection established. Last error: ${sessionError?.message ?? 'the connection closed'}`);
            fail(rstStatus(stream.rstCode ?? http2.constants.NGHTTP2_INTERNAL_ERROR), `Received RST_STREAM with code ${stream.rstCode ?? '?'}`);
          });
        }
        const st = trailers ?? (header(headers, 'grpc-status') !== undefined ? headers : undefined);
        if (!st) {
          const http = Number(headers[':status']);
          if (http !== 200) return fail(httpStatus(http), `Received HTTP status code ${http}`);
          return fail(rstStatus(stream.rstCode ?? http2.constants.NGHTTP2_INTERNAL_ERROR), `Received RST_STREAM with code ${stream.rstCode ?? '?'} (no status)`);
        }
        const code = Number(header(st, 'grpc-status'));
        const md = { ...metadataOf(headers), ...(trailers ? metadataOf(trailers) : {}) };
        if (!Number.isInteger(code) || code < 0 || code > 16) return fail(GRPC_STATUS.UNKNOWN, `invalid grpc-status ${header(st, 'grpc-status')}`, md);
        if (code !== GRPC_STATUS.OK) return fail(code, decodeMessage(header(st, 'grpc-message') ?? ''), md);
        const all = Buffer.concat(chunks);
        if (all.length < 5) return fail(GRPC_STATUS.INTERNAL, 'no message in an OK answer', md);
        if (all[0] !== 0) return fail(GRPC_STATUS.INTERNAL, 'a compressed message, though none was asked for', md);
        const len = all.readUInt32BE(1);
        if (all.length !== 5 + len) return fail(GRPC_STATUS.INTERNAL, `message framing: ${all.length - 5} bytes for a message of ${len}`, md);
        let res: ControlResponse<M>;
        try {
          res = def.responseDeserialize(all.subarray(5)) as ControlResponse<M>;
        } catch (e) {
          return fail(GRPC_STATUS.INTERNAL, `response deserialization failure: ${(e as Error).message}`, md);
        }
        finish(undefined, res);
      });
      const frame = Buffer.allocUnsafe(5 + body.length);
      frame[0] = 0;
      frame.writeUInt32BE(body.length, 1);
      body.copy(frame, 5);
      stream.end(frame);
    });

  return Object.assign(controlApiOf(invoke), {
    addr,
    invoke,
    close: () => {
      closed = true;
      session?.close();
    },
  });
}
