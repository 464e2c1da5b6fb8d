// The /metrics HTTP endpoint managers and agents serve (prom-client registry).
// Plaintext only on the address the operator gives (--metrics-listen; the
// default is loopback), or mutual TLS (--metrics-tls): the scraper presents
// a certificate of the cluster CA with a role that may read metrics
// (docs/security.md, "Metrics").
import * as http from 'node:http';
import * as https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { Registry } from 'prom-client';
import { identityFromCert, type Role, type TlsBundle } from './identity';

/**
 * Who may scrape a mutual-TLS /metrics: operators' identities (a Prometheus
 * gets a viewer certificate) and managers. Not workers: one node's
 * certificate reads no other node's figures.
 */
export const METRICS_READERS: readonly Role[] = ['admin', 'operator', 'viewer', 'manager'];

export interface MetricsTlsOptions {
  /** The serving process's certificate and key, and the cluster CA scrapers' certificates are checked against. */
  tls: TlsBundle;
  /** Roles admitted (default METRICS_READERS). */
  readers?: readonly Role[];
}

/**
 * Serves `registry` on http://listen/metrics, or https with a client
 * certificate required when `tls` is given; `refresh` runs before each
 * scrape. Returns the bound host:port and a close function.
 */
export async function serveMetrics(
  registry: Registry,
  listen: string,
  refresh?: () => Promise<void>,
  tls?: MetricsTlsOptions,
): Promise<{ addr: string; close(): Promise<void>; /** A renewed certificate for new connections (mutual TLS only; a no-op on plaintext). */ setTls(b: TlsBundle): void }> {
  const i = listen.lastIndexOf(':');
  if (i < 0) throw new Error(`metrics listen address "${listen}" is not host:port`);
  const host = listen.slice(0, i).replace(/^\[|\]$/g, '');
  if (!host) throw new Error(`metrics listen address "${listen}": name the address to listen on (127.0.0.1 for this host only)`);
  const port = Number(listen.slice(i + 1));
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`metrics listen address "${listen}": bad port`);
  const readers = tls?.readers ?? METRICS_READERS;
  const handler: http.RequestListener = (req, res) => {
    if (tls) {
      // The TLS layer verified the chain (requestCert + rejectUnauthorized); the role decides.
      const peer = (req.socket as TLSSocket).getPeerCertificate?.();
      const who = peer?.raw ? identityFromCert(peer.raw) : undefined;
      if (!who || !readers.includes(who.role)) {
        res.writeHead(403, { 'content-type': 'text/plain' }).end(`forbidden: ${who ? `role ${who.role} may not read metrics` : 'not a Convoy identity'}\n`);
        return;
      }
    }
    if (req.method !== 'GET' || (req.url !== '/metrics' && !req.url?.startsWith('/metrics?'))) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found; try /metrics\n');
      return;
    }
    (refresh ? refresh().catch(() => undefined) : Promise.resolve()).then(() => registry.metrics()).then(
      (body) => res.writeHead(200, { 'content-type': registry.contentType }).end(body),
      (e: unknown) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`metrics failed: ${e instanceof Error ? e.message : String(e)}\n`),
    );
  };
  const server = tls
    ? https.createServer({ ca: tls.tls.ca, cert: tls.tls.cert, key: tls.tls.key, requestCert: true, rejectUnauthorized: true, minVersion: 'TLSv1.2' }, handler)
    : http.createServer(handler);
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) => reject(new Error(`metrics listen address ${listen}: ${e.code === 'EADDRINUSE' ? 'already in use' : e.message}`)));
    server.listen(port, host, () => resolve());
  });
  const a = server.address() as AddressInfo;
  return {
    addr: `${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`,
    setTls(b) {
      if (server instanceof https.Server) server.setSecureContext({ ca: b.ca, cert: b.cert, key: b.key });
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
