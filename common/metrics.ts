// The /metrics HTTP endpoint managers and agents serve (prom-client registry).
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';

/**
 * Serves `registry` on http://listen/metrics; `refresh` runs before each
 * scrape. Returns the bound host:port and a close function.
 */
export async function serveMetrics(registry: Registry, listen: string, refresh?: () => Promise<void>): Promise<{ addr: string; close(): Promise<void> }> {
  const i = listen.lastIndexOf(':');
  if (i < 0) throw new Error(`metrics listen address "${listen}" is not host:port`);
  const host = listen.slice(0, i).replace(/^\[|\]$/g, '') || '0.0.0.0';
  const port = Number(listen.slice(i + 1));
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`metrics listen address "${listen}": bad port`);
  const server = http.createServer((req, res) => {
    if (req.method !== 'GET' || (req.url !== '/metrics' && !req.url?.startsWith('/metrics?'))) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found; try /metrics\n');
      return;
    }
    (refresh ? refresh().catch(() => undefined) : Promise.resolve()).then(() => registry.metrics()).then(
      (body) => res.writeHead(200, { 'content-type': registry.contentType }).end(body),
      (e: unknown) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`metrics failed: ${e instanceof Error ? e.message : String(e)}\n`),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) => reject(new Error(`metrics listen address ${listen}: ${e.code === 'EADDRINUSE' ? 'already in use' : e.message}`)));
    server.listen(port, host, () => resolve());
  });
  const a = server.address() as AddressInfo;
  return {
    addr: `${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
