// The local side of `convoy dashboard`, as `kubectl proxy` or Jupyter's
// server: an HTTP listener on 127.0.0.1 that forwards the page and its API to
// a manager's dashboard over mutual TLS with the operator's own bundle, so
// the browser needs no certificate. What keeps other local users and other
// web pages out (docs/dashboard.md):
//
//   - a random token in the printed URL, exchanged on first load for an
//     HttpOnly, SameSite=Strict cookie (named after the port: cookies are not
//     kept apart by port); every request without it is refused (401);
//   - the Host header must be this listener's own (127.0.0.1:PORT or
//     localhost:PORT): a DNS-rebound name is refused (403);
//   - actions (POST) need the dashboard's custom header and, when the browser
//     says where the request comes from (Origin, Sec-Fetch-Site), this origin;
//   - bounded URLs and bodies; only the dashboard's paths are forwarded.
import * as crypto from 'node:crypto';
import * as http from 'node:http';
import * as https from 'node:https';
import * as tls from 'node:tls';
import type { AddressInfo } from 'node:net';

/** The TLS name every manager certificate carries (proto/client.ts MANAGER_SERVER_NAME). */
const MANAGER_SERVER_NAME = 'convoy-manager';
/** The header the page sets on actions; the manager requires it too. */
export const CSRF_HEADER = 'x-convoy-dashboard';
export const MAX_URL_CHARS = 2048;
export const MAX_BODY_BYTES = 4 * 1024;
/** Paths forwarded to the manager; anything else is 404 here. */
const FORWARDED = /^\/(?:$|index\.html$|app\.js$|app\.css$|api\/)/;

export interface ProxyOptions {
  /** host:port of the manager's dashboard listener. */
  upstream: string;
  /** The operator's bundle (PEM). */
  ca: string;
  cert: string;
  key: string;
  /** Local port; 0 = a free one. */
  port?: number;
  /** The token (tests); default 32 random bytes. */
  token?: string;
}

export interface DashboardProxy {
  /** The URL to open: it carries the token. */
  url: string;
  port: number;
  token: string;
  close(): Promise<void>;
}

function splitHostPort(hp: string): { host: string; port: number } {
  const i = hp.lastIndexOf(':');
  return { host: hp.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(hp.slice(i + 1)) };
}

function cookieValue(header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

function same(a: string | undefined, b: string): boolean {
  if (a === undefined) return false;
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && crypto.timingSafeEqual(x, y);
}

function refuse(res: http.ServerResponse, status: number, error: string): void {
  const b = Buffer.from(JSON.stringify({ error }));
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': b.length, 'cache-control': 'no-store' });
  res.end(b);
}

export async function startDashboardProxy(o: ProxyOptions): Promise<DashboardProxy> {
  const token = o.token ?? crypto.randomBytes(32).toString('base64url');
  const up = splitHostPort(o.upstream);
  const agent = new https.Agent({
    keepAlive: true,
    ca: o.ca,
    cert: o.cert,
    key: o.key,
    servername: MANAGER_SERVER_NAME,
    minVersion: 'TLSv1.2',
    // "A manager of this cluster", whichever address was dialled: the chain to the CA (checked by TLS), the name, OU=manager.
    checkServerIdentity: (_host, cert) => {
      const e = tls.checkServerIdentity(MANAGER_SERVER_NAME, cert);
      if (e) return e;
      const ou = (cert.subject as unknown as Record<string, string | string[]> | undefined)?.OU;
      return (Array.isArray(ou) ? ou[0] : ou) === 'manager' ? undefined : new Error("the dashboard's certificate does not name a manager");
    },
  });
  let port = 0;
  let cookie = '';
  const server = http.createServer((req, res) => {
    const url = req.url ?? '/';
    if (url.length > MAX_URL_CHARS) return refuse(res, 414, `URL: longer than ${MAX_URL_CHARS} characters`);
    const ownHosts = [`127.0.0.1:${port}`, `localhost:${port}`];
    const host = req.headers.host ?? '';
    if (!ownHosts.includes(host)) return refuse(res, 403, `host: "${host.slice(0, 100)}" is not this proxy (open http://127.0.0.1:${port}/)`);
    const q = url.indexOf('?');
    const pathname = q < 0 ? url : url.slice(0, q);
    const method = req.method ?? 'GET';
    // The printed URL: trade its token for the cookie, and drop it from the address bar.
    if (pathname === '/' && q >= 0 && method === 'GET') {
      const given = new URLSearchParams(url.slice(q + 1)).get('token') ?? undefined;
      if (!same(given, token)) return refuse(res, 401, 'token: wrong (open the URL `convoy dashboard` printed)');
      res.writeHead(302, { location: '/', 'set-cookie': `${cookie}=${token}; HttpOnly; SameSite=Strict; Path=/`, 'cache-control': 'no-store', 'referrer-policy': 'no-referrer' });
      return res.end();
    }
    if (!same(cookieValue(req.headers.cookie, cookie), token)) return refuse(res, 401, 'not signed in: open the URL `convoy dashboard` printed (it carries the token)');
    if (!FORWARDED.test(pathname)) return refuse(res, 404, `${pathname.slice(0, 100)}: not found`);
    if (method !== 'GET' && method !== 'HEAD') {
      if (method !== 'POST') return refuse(res, 405, `${method.slice(0, 10)}: only GET and POST`);
      if (req.headers[CSRF_HEADER] !== '1') return refuse(res, 403, `${CSRF_HEADER}: header missing (actions come from the dashboard page only)`);
      const origin = req.headers.origin;
      if (origin !== undefined && !ownHosts.map((h) => `http://${h}`).includes(origin)) return refuse(res, 403, `origin: ${origin.slice(0, 100)} is not this dashboard`);
      const site = req.headers['sec-fetch-site'];
      if (site !== undefined && site !== 'same-origin') return refuse(res, 403, `sec-fetch-site: ${String(site).slice(0, 30)} (actions come from the dashboard page only)`);
      if (Number(req.headers['content-length'] ?? 0) > MAX_BODY_BYTES) return refuse(res, 413, `body: more than ${MAX_BODY_BYTES} bytes`);
    }
    // Forward what the manager needs, nothing that identifies the browser's session here.
    const headers: Record<string, string> = { host: o.upstream, accept: req.headers.accept ?? '*/*' };
    for (const h of ['content-type', 'content-length', CSRF_HEADER, 'last-event-id']) {
      const v = req.headers[h];
      if (typeof v === 'string') headers[h] = v;
    }
    const upReq = https.request({ host: up.host, port: up.port, path: url, method, headers, agent }, (upRes) => {
      const out: http.OutgoingHttpHeaders = {};
      for (const [k, v] of Object.entries(upRes.headers)) if (k !== 'connection' && k !== 'keep-alive' && k !== 'transfer-encoding' && v !== undefined) out[k] = v;
      res.writeHead(upRes.statusCode ?? 502, out);
      upRes.pipe(res);
    });
    upReq.setTimeout(0);
    upReq.on('error', (e) => {
      if (!res.headersSent) refuse(res, 502, `manager ${o.upstream}: ${e.message}`);
      else res.destroy();
    });
    // The browser went away (a closed page ends its live stream): stop the upstream request too.
    res.on('close', () => {
      if (!res.writableFinished) upReq.destroy();
    });
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY_BYTES) {
        upReq.destroy();
        if (!res.headersSent) refuse(res, 413, `body: more than ${MAX_BODY_BYTES} bytes`);
        req.destroy();
      } else upReq.write(c);
    });
    req.on('end', () => upReq.end());
  });
  server.headersTimeout = 10_000;
  server.requestTimeout = 0; // the live stream stays open
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port ?? 0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  port = (server.address() as AddressInfo).port;
  cookie = `convoy_dashboard_${port}`;
  return {
    url: `http://127.0.0.1:${port}/?token=${token}`,
    port,
    token,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      agent.destroy();
    },
  };
}
