// The web dashboard every manager serves (docs/dashboard.md): an HTTPS
// listener with mutual TLS (a client certificate of the cluster CA, the same
// identities as the Control API), the page's static files, a JSON API and a
// Server-Sent Events stream of the whole view, pushed within a second of a
// change in the manager's state cache.
//
// Every read and every action goes through the *authorized* Control
// handlers (manager/auth): the call carries the HTTPS peer's certificate, so
// the role table, the revocation check and the audit trail are exactly those
// of gRPC. A viewer's POST is refused (403) and audited as refused by the
// same code that refuses its ScaleService over gRPC.
//
//   GET  /, /app.js, /app.css             the page (CSP: nothing inline, nothing from elsewhere)
//   GET  /api/session                     who you are, which actions your role may take
//   GET  /api/state                       the view (view.ts)
//   GET  /api/watch                       SSE: `state` (the view), `event` (cluster events)
//   GET  /api/services/:ref/logs?tail=N   the service's merged logs (logs.ts)
//   POST /api/services/:ref/scale         {"replicas": n}          ScaleService
//   POST /api/services/:ref/rollback      {}                       RollbackService
//   POST /api/services/:ref/force-update  {}                       UpdateService with force
//   POST /api/nodes/:ref/availability     {"availability": "..."}  UpdateNode
//
// Against cross-site use by a browser holding an operator's certificate:
// every POST must carry the header `X-Convoy-Dashboard: 1` and a JSON body
// (neither is possible in a simple cross-site request, and no CORS is ever
// answered), and an Origin, when sent, must be this listener's.
import * as fs from 'node:fs';
import * as https from 'node:https';
import type * as http from 'node:http';
import * as path from 'node:path';
import type * as tls from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import { identityFromCert, type Identity, type TlsBundle } from '../../common/identity';
import { errMsg, nullLogger, type Logger } from '../../common/logger';
import type { ConvoyEvent } from '../../proto/events';
import type { Node, Service, Task } from '../../proto/mod';
import { mayCall } from '../auth/roles';
import type { TaskUsage } from '../autoscale/autoscale';
import { refusal } from '../ca/tls';
import { LOGS_DEFAULT_TAIL, LOGS_MAX_TAIL, type DashboardLogs } from './logs';
import { buildView, type DashboardView } from './view';

/** The header every POST must carry (a custom header: no simple cross-site request can). */
export const CSRF_HEADER = 'x-convoy-dashboard';
/** Largest request body read (the actions' bodies are a few bytes). */
export const MAX_BODY_BYTES = 4 * 1024;
/** Longest URL accepted. */
export const MAX_URL_CHARS = 2048;
/** Live streams this manager serves at once (each costs one view build per change). */
export const MAX_WATCHERS = 64;
/** Changes within this window are pushed as one state (a burst of task updates). */
export const PUSH_DEBOUNCE_MS = 100;
/** A state is pushed at least this often, for the usage charts (agents sample every few seconds). */
export const PUSH_EVERY_MS = 3_000;
/** Cluster events kept for a page that connects (its first screen). */
export const EVENTS_KEPT = 200;
/** How long an action's body may take to arrive. */
const BODY_TIMEOUT_MS = 10_000;
/** Connections this listener holds at most (live pages are long-lived ones). */
const MAX_CONNECTIONS = 256;
/** SSE comment lines this often, so proxies keep the stream open. */
const KEEPALIVE_MS = 15_000;
/** Object references (service and node names, ids, prefixes) as the Control API takes them. */
const REF_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
const AVAILABILITIES = ['ACTIVE', 'PAUSE', 'DRAIN'] as const;
/** The largest replica count asked for from the page (the spec's own bound is checked by the Control API too). */
export const MAX_SCALE = 10_000;

export interface DashboardDeps {
  /** The Control service definition (serializers: a call sees exactly what gRPC would give it). */
  service: grpc.ServiceDefinition;
  /** The authorized Control handlers (manager/auth secureControl().handlers). */
  handlers: object;
  /** Called on every change of the manager's state cache. */
  onChange(fn: () => void): void;
  /** Latest usage sample of a task (the agents' stats over NATS), if any. */
  usage?: (taskId: string) => TaskUsage | undefined;
  /** A service's logs from its tasks' nodes (logs.ts over NATS); none: 503. */
  logs?: (tasks: { id: string; nodeId: string }[], tail: number) => Promise<DashboardLogs>;
  /** The cluster id certificates must name, and the revocation check (the gRPC listener's identityGate). */
  cluster: () => string;
  isRevoked: (who: Identity) => boolean;
  /** The page's files; default static/ next to this module (or in the source tree). */
  staticDir?: string;
  log?: Logger;
  now?: () => number;
}

export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

const GRPC_TO_HTTP: Partial<Record<grpc.status, number>> = {
  [grpc.status.INVALID_ARGUMENT]: 400,
  [grpc.status.OUT_OF_RANGE]: 400,
  [grpc.status.UNAUTHENTICATED]: 401,
  [grpc.status.PERMISSION_DENIED]: 403,
  [grpc.status.NOT_FOUND]: 404,
  [grpc.status.ALREADY_EXISTS]: 409,
  [grpc.status.FAILED_PRECONDITION]: 409,
  [grpc.status.ABORTED]: 409,
  [grpc.status.RESOURCE_EXHAUSTED]: 429,
  [grpc.status.UNAVAILABLE]: 503,
  [grpc.status.DEADLINE_EXCEEDED]: 504,
};

/** Where the page's files are: next to the compiled module, else in the source tree (dist/ has no copies). */
export function defaultStaticDir(): string {
  const here = path.join(__dirname, 'static');
  if (fs.existsSync(path.join(here, 'index.html'))) return here;
  return path.join(__dirname, '..', '..', '..', 'manager', 'dashboard', 'static');
}

const STATIC: Record<string, string> = { '/': 'index.html', '/index.html': 'index.html', '/app.js': 'app.js', '/app.css': 'app.css' };
const TYPES: Record<string, string> = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8' };
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

function peerIdentity(req: http.IncomingMessage): { who?: Identity; raw?: Buffer } {
  const sock = req.socket as tls.TLSSocket;
  const raw = typeof sock.getPeerCertificate === 'function' ? sock.getPeerCertificate(false)?.raw : undefined;
  return raw ? { who: identityFromCert(raw), raw } : {};
}

export interface DashboardHandler {
  handle(req: http.IncomingMessage, res: http.ServerResponse): void;
  /** A cluster event for the live pages (the manager's observer tees its events here). */
  event(e: ConvoyEvent): void;
  /** Live streams open now. */
  readonly watchers: number;
  close(): void;
}

export function createDashboardHandler(d: DashboardDeps): DashboardHandler {
  const log = d.log ?? nullLogger;
  const now = d.now ?? Date.now;
  const dir = d.staticDir ?? defaultStaticDir();
  const files = new Map<string, Buffer>();
  for (const f of new Set(Object.values(STATIC))) {
    try {
      files.set(f, fs.readFileSync(path.join(dir, f)));
    } catch (e) {
      log.warn('dashboard file missing', { file: path.join(dir, f), err: errMsg(e) });
    }
  }
  const handlers = d.handlers as Record<string, (call: unknown, cb: (err: grpc.ServiceError | null, res?: unknown) => void) => void>;

  /** One Control call as `raw`'s holder, through the authorized handler (roles, revocation, audit). */
  const invoke = <Res>(rpc: string, request: object, raw: Buffer, peer: string): Promise<Res> => {
    const def = d.service[rpc];
    const h = handlers[rpc];
    if (!def || !h) return Promise.reject(new HttpError(500, `${rpc}: not served`));
    const req = def.requestDeserialize(def.requestSerialize(request));
    const call = { request: req, metadata: new grpc.Metadata(), getAuthContext: () => ({ sslPeerCertificate: { raw } }), getPeer: () => peer, getDeadline: () => Infinity, cancelled: false };
    return new Promise<Res>((resolve, reject) =>
      h(call, (err, res) => {
        if (err) return reject(new HttpError(GRPC_TO_HTTP[err.code as grpc.status] ?? 500, err.details || err.message));
        try {
          resolve(def.responseDeserialize(def.responseSerialize(res)) as Res);
        } catch (e) {
          reject(e);
        }
      }),
    );
  };

  const view = async (raw: Buffer, peer: string): Promise<DashboardView> => {
    const [n, s, t] = await Promise.all([
      invoke<{ nodes: Node[]; leader: string }>('ListNodes', { role: '' }, raw, peer),
      invoke<{ services: { service: Service; counts: { running: number; desired: number } }[] }>('ListServices', {}, raw, peer),
      invoke<{ tasks: Task[] }>('ListTasks', { currentOnly: true }, raw, peer),
    ]);
    return buildView({ nodes: n.nodes, leader: n.leader, services: s.services, tasks: t.tasks }, d.usage ?? (() => undefined), now());
  };

  // ---- live streams ---------------------------------------------------------------
  interface Watcher {
    res: http.ServerResponse;
    raw: Buffer;
    peer: string;
    who: Identity;
    busy: boolean;
    again: boolean;
  }
  const watchers = new Set<Watcher>();
  const events: ConvoyEvent[] = [];
  const send = (w: Watcher, type: string, data: unknown) => w.res.write(`event: ${type}\ndata: ${JSON.stringify(data)}\n\n`);
  const push = (w: Watcher) => {
    if (w.busy) {
      w.again = true;
      return;
    }
    w.busy = true;
    const why = refusal(w.who, { cluster: d.cluster, isRevoked: d.isRevoked, now });
    if (why) {
      // Revoked or expired while watching: the stream ends.
      send(w, 'error', { error: why });
      w.res.end();
      return;
    }
    view(w.raw, w.peer)
      .then((v) => send(w, 'state', v))
      .catch((e) => {
        send(w, 'error', { error: errMsg(e) });
        if (e instanceof HttpError && (e.status === 401 || e.status === 403)) w.res.end();
      })
      .finally(() => {
        w.busy = false;
        if (w.again && !w.res.writableEnded) {
          w.again = false;
          push(w);
        }
      });
  };
  let debounce: NodeJS.Timeout | undefined;
  const pushAll = () => {
    debounce = undefined;
    for (const w of watchers) push(w);
  };
  d.onChange(() => {
    if (!debounce && watchers.size) debounce = setTimeout(pushAll, PUSH_DEBOUNCE_MS);
  });
  const periodic = setInterval(() => watchers.size && pushAll(), PUSH_EVERY_MS);
  const keepalive = setInterval(() => {
    for (const w of watchers) w.res.write(': keepalive\n\n');
  }, KEEPALIVE_MS);
  periodic.unref();
  keepalive.unref();

  // ---- requests -------------------------------------------------------------------
  const json = (res: http.ServerResponse, status: number, body: unknown) => {
    const b = Buffer.from(JSON.stringify(body));
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': b.length, 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' });
    res.end(b);
  };
  const readBody = (req: http.IncomingMessage): Promise<Record<string, unknown>> =>
    new Promise((resolve, reject) => {
      const declared = Number(req.headers['content-length'] ?? 0);
      if (declared > MAX_BODY_BYTES) return reject(new HttpError(413, `body: more than ${MAX_BODY_BYTES} bytes`));
      const chunks: Buffer[] = [];
      let size = 0;
      req.on('data', (c: Buffer) => {
        size += c.length;
        if (size > MAX_BODY_BYTES) {
          reject(new HttpError(413, `body: more than ${MAX_BODY_BYTES} bytes`));
          req.destroy();
        } else chunks.push(c);
      });
      req.on('error', reject);
      req.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        if (!text) return resolve({});
        try {
          const v: unknown = JSON.parse(text);
          if (!v || typeof v !== 'object' || Array.isArray(v)) return reject(new HttpError(400, 'body: not a JSON object'));
          resolve(v as Record<string, unknown>);
        } catch {
          reject(new HttpError(400, 'body: not JSON'));
        }
      });
    });

  const may = (role: string) => ({
    scale: mayCall(role, 'ScaleService'),
    rollback: mayCall(role, 'RollbackService'),
    forceUpdate: mayCall(role, 'UpdateService') && mayCall(role, 'GetService'),
    nodeAvailability: mayCall(role, 'UpdateNode') && mayCall(role, 'GetNode'),
  });

  const action = async (kind: string, ref: string, verb: string, body: Record<string, unknown>, raw: Buffer, peer: string): Promise<unknown> => {
    if (!REF_RE.test(ref)) throw new HttpError(400, `${kind === 'services' ? 'service' : 'node'}: not a name or id (letters, digits, . _ -; at most 128)`);
    if (kind === 'services' && verb === 'scale') {
      const n = body.replicas;
      if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > MAX_SCALE) throw new HttpError(400, `replicas: an integer from 0 to ${MAX_SCALE}`);
      return invoke('ScaleService', { service: ref, replicas: n }, raw, peer);
    }
    if (kind === 'services' && verb === 'rollback') return invoke('RollbackService', { service: ref }, raw, peer);
    if (kind === 'services' && verb === 'force-update') {
      // The role is checked before the read: a viewer's attempt is refused (and audited) as an UpdateService.
      if (!mayCall(identityFromCert(raw)?.role ?? '', 'UpdateService')) return invoke('UpdateService', { service: ref }, raw, peer);
      const { service } = await invoke<{ service: Service }>('GetService', { service: ref }, raw, peer);
      return invoke('UpdateService', { service: service.id, version: service.meta?.version ?? 0, spec: service.spec, force: true }, raw, peer);
    }
    if (kind === 'nodes' && verb === 'availability') {
      const a = body.availability;
      if (typeof a !== 'string' || !(AVAILABILITIES as readonly string[]).includes(a)) throw new HttpError(400, `availability: one of ${AVAILABILITIES.join(', ').toLowerCase()}`);
      if (!mayCall(identityFromCert(raw)?.role ?? '', 'UpdateNode')) return invoke('UpdateNode', { node: ref }, raw, peer);
      const { node } = await invoke<{ node: Node }>('GetNode', { node: ref }, raw, peer);
      return invoke('UpdateNode', { node: node.id, version: node.meta?.version ?? 0, spec: { ...node.spec, availability: a } }, raw, peer);
    }
    throw new HttpError(404, `no action ${verb} on ${kind}`);
  };

  const decodeRef = (enc: string, what: string): string => {
    let ref: string;
    try {
      ref = decodeURIComponent(enc);
    } catch {
      throw new HttpError(400, `${what}: bad URL encoding`);
    }
    if (!REF_RE.test(ref)) throw new HttpError(400, `${what}: not a name or id (letters, digits, . _ -; at most 128)`);
    return ref;
  };

  /** Logs are 'read' (STREAM_ACCESS): the caller must be allowed to list the service's tasks, which names the tasks asked for. */
  const logs = async (enc: string, url: string, raw: Buffer, peer: string): Promise<DashboardLogs & { tasks: Record<string, string> }> => {
    const ref = decodeRef(enc, 'service');
    const q = new URLSearchParams(url.includes('?') ? url.slice(url.indexOf('?') + 1) : '');
    const t = q.get('tail');
    const tail = t === null ? LOGS_DEFAULT_TAIL : /^\d{1,5}$/.test(t) ? Number(t) : NaN;
    if (!(tail >= 0 && tail <= LOGS_MAX_TAIL)) throw new HttpError(400, `tail: an integer from 0 to ${LOGS_MAX_TAIL}`);
    const { tasks } = await invoke<{ tasks: Task[] }>('ListTasks', { service: ref }, raw, peer);
    if (!d.logs) throw new HttpError(503, 'logs: this manager has no NATS connection');
    // The newest attempts first: the ones an operator is looking for.
    const wanted = [...tasks].filter((x) => x.nodeId).sort((a, b) => Number(b.meta?.createdAt ?? 0) - Number(a.meta?.createdAt ?? 0));
    const r = await d.logs(wanted.map((x) => ({ id: x.id, nodeId: x.nodeId })), tail);
    const labels: Record<string, string> = {};
    for (const x of wanted) labels[x.id] = `${x.serviceName}.${x.slot || x.nodeId}.${x.id.slice(0, 12)}`;
    return { ...r, tasks: labels };
  };

  const route = async (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> => {
    const url = req.url ?? '/';
    if (url.length > MAX_URL_CHARS) throw new HttpError(414, `URL: longer than ${MAX_URL_CHARS} characters`);
    const { who, raw } = peerIdentity(req);
    const why = refusal(who, { cluster: d.cluster, isRevoked: d.isRevoked, now });
    if (why || !who || !raw) throw new HttpError(401, why ?? 'no client certificate');
    const pathname = url.split('?')[0];
    const peer = `${req.socket.remoteAddress ?? ''}:${req.socket.remotePort ?? ''}`;
    const method = req.method ?? 'GET';

    if (method === 'GET' || method === 'HEAD') {
      const file = STATIC[pathname];
      if (file) {
        const b = files.get(file);
        if (!b) throw new HttpError(404, `${pathname}: not installed`);
        res.writeHead(200, {
          'content-type': TYPES[path.extname(file)],
          'content-length': b.length,
          'content-security-policy': CSP,
          'x-frame-options': 'DENY',
          'x-content-type-options': 'nosniff',
          'referrer-policy': 'no-referrer',
          'cache-control': 'no-cache',
        });
        res.end(method === 'HEAD' ? undefined : b);
        return;
      }
      if (pathname === '/api/session') return json(res, 200, { id: who.id, role: who.role, may: may(who.role) });
      if (pathname === '/api/state') return json(res, 200, await view(raw, peer));
      if (pathname === '/api/watch') {
        // The first state before the stream opens: a role that may not read is refused with its status.
        const first = await view(raw, peer);
        if (watchers.size >= MAX_WATCHERS) throw new HttpError(503, `${MAX_WATCHERS} live pages are open on this manager; close one or use another manager`);
        res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', 'x-content-type-options': 'nosniff', connection: 'keep-alive' });
        const w: Watcher = { res, raw, peer, who, busy: false, again: false };
        watchers.add(w);
        const gone = () => watchers.delete(w);
        req.on('close', gone);
        res.on('close', gone);
        send(w, 'state', first);
        for (const e of events) send(w, 'event', e);
        return;
      }
      const lm = /^\/api\/services\/([^/]+)\/logs$/.exec(pathname);
      if (lm) return json(res, 200, await logs(lm[1], url, raw, peer));
      throw new HttpError(404, `${pathname}: not found`);
    }
    if (method !== 'POST') throw new HttpError(405, `${method}: only GET and POST`);
    // CSRF: the custom header, a JSON body, and no foreign Origin.
    if (req.headers[CSRF_HEADER] !== '1') throw new HttpError(403, `${CSRF_HEADER}: header missing (actions come from the dashboard page only)`);
    const ctype = String(req.headers['content-type'] ?? '');
    if (!/^application\/json\s*(;|$)/i.test(ctype)) throw new HttpError(415, 'content-type: application/json only');
    const origin = req.headers.origin;
    if (origin !== undefined && origin !== `https://${req.headers.host ?? ''}`) throw new HttpError(403, `origin: ${origin.slice(0, 100)} is not this dashboard`);
    const m = /^\/api\/(services|nodes)\/([^/]+)\/([a-z-]+)$/.exec(pathname);
    if (!m) throw new HttpError(404, `${pathname}: not found`);
    let ref: string;
    try {
      ref = decodeURIComponent(m[2]);
    } catch {
      throw new HttpError(400, 'reference: bad URL encoding');
    }
    // A body trickled in slowly holds a connection: it must be whole within BODY_TIMEOUT_MS.
    req.setTimeout(BODY_TIMEOUT_MS, () => req.destroy(new HttpError(408, 'body: not received in time')));
    const body = await readBody(req);
    await action(m[1], ref, m[3], body, raw, peer);
    json(res, 200, { ok: true });
  };

  return {
    handle(req, res) {
      route(req, res).catch((e: unknown) => {
        const status = e instanceof HttpError ? e.status : 500;
        if (status >= 500) log.warn('dashboard request failed', { url: (req.url ?? '').slice(0, 200), err: errMsg(e) });
        if (!res.headersSent) json(res, status, { error: errMsg(e).slice(0, 1000) });
        else res.end();
      });
    },
    event(e) {
      events.push(e);
      if (events.length > EVENTS_KEPT) events.shift();
      for (const w of watchers) send(w, 'event', e);
    },
    get watchers() {
      return watchers.size;
    },
    close() {
      if (debounce) clearTimeout(debounce);
      clearInterval(periodic);
      clearInterval(keepalive);
      for (const w of watchers) w.res.end();
      watchers.clear();
    },
  };
}

export interface DashboardServer {
  /** host:port it listens on. */
  addr: string;
  handler: DashboardHandler;
  /** New connections use this certificate (the manager's renewal). */
  swap(b: TlsBundle): void;
  close(): Promise<void>;
}

function contextOf(b: TlsBundle): tls.SecureContextOptions {
  return { ca: b.ca, cert: b.cert, key: b.key, minVersion: 'TLSv1.2' };
}

/** The dashboard's HTTPS listener: client certificates required and verified against the cluster CA. */
export async function startDashboard(o: DashboardDeps & { listen: string; bundle: TlsBundle }): Promise<DashboardServer> {
  const handler = createDashboardHandler(o);
  const server = https.createServer({ ...contextOf(o.bundle), requestCert: true, rejectUnauthorized: true }, (req, res) => handler.handle(req, res));
  server.headersTimeout = 10_000;
  server.requestTimeout = 0; // the live stream stays open
  server.maxHeadersCount = 64;
  server.maxConnections = MAX_CONNECTIONS;
  const host = o.listen.slice(0, o.listen.lastIndexOf(':'));
  const port = Number(o.listen.slice(o.listen.lastIndexOf(':') + 1));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host.replace(/^\[|\]$/g, ''), () => {
      server.off('error', reject);
      resolve();
    });
  });
  const a = server.address();
  const bound = typeof a === 'object' && a ? a.port : port;
  return {
    addr: `${host}:${bound}`,
    handler,
    swap(b) {
      server.setSecureContext(contextOf(b));
    },
    async close() {
      handler.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
