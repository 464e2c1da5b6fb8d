// convoy dashboard [--port N] [--upstream HOST:PORT]: the web dashboard in a
// local browser, through an authenticated proxy on 127.0.0.1 that reaches a
// manager's dashboard with the operator's own bundle (proxy.ts; as `kubectl
// proxy` does). Prints the URL to open (it carries the token) and runs until
// interrupted.
import * as https from 'node:https';
import { Command } from 'commander';
import { CliError, guarded, hostOf, isUnixHost, securityOf, type CliIO } from '../client';
import { startDashboardProxy } from './proxy';

/** The manager's dashboard listens on its gRPC port + this, by default (manager/manager.ts). */
export const DASHBOARD_PORT_OFFSET = 4;
/** How long the first check of the manager may take. */
const CHECK_TIMEOUT_MS = 10_000;

export function upstreamOf(grpcHost: string, flag: string | undefined): string {
  if (flag !== undefined) {
    const m = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]{1,253}):(\d{1,5})$/.exec(flag);
    if (!m || Number(m[2]) < 1 || Number(m[2]) > 65535) throw new CliError(`--upstream: "${flag.slice(0, 100)}" is not host:port`);
    return flag;
  }
  if (isUnixHost(grpcHost)) throw new CliError('dashboard: the manager is given as a unix socket; give --host HOST:PORT (its TLS address) or --upstream HOST:PORT (its dashboard)');
  const i = grpcHost.lastIndexOf(':');
  const port = Number(grpcHost.slice(i + 1));
  if (i < 0 || !Number.isInteger(port)) throw new CliError(`dashboard: manager address "${grpcHost}" has no port`);
  return `${grpcHost.slice(0, i)}:${port + DASHBOARD_PORT_OFFSET}`;
}

export function parsePort(v: string | undefined): number {
  if (v === undefined) return 0;
  const n = /^\d{1,5}$/.test(v) ? Number(v) : NaN;
  if (!(n >= 0 && n <= 65535)) throw new CliError(`--port: "${v.slice(0, 40)}" is not a port (0-65535)`);
  return n;
}

/** GET /api/session through the proxy: the first failure (wrong address, refused identity) shows at once. */
function check(url: string): Promise<{ id: string; role: string }> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const token = u.searchParams.get('token') ?? '';
    const req = (u.protocol === 'https:' ? https : require('node:http')).get(
      { host: u.hostname, port: u.port, path: '/api/session', headers: { cookie: `convoy_dashboard_${u.port}=${token}` }, timeout: CHECK_TIMEOUT_MS },
      (res: import('node:http').IncomingMessage) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c.length + body.length < 65536 ? c : ''));
        res.on('end', () => {
          try {
            const v = JSON.parse(body) as { id: string; role: string; error?: string };
            if (res.statusCode === 200) resolve(v);
            else reject(new CliError(`dashboard: ${v.error ?? `status ${res.statusCode}`}`));
          } catch {
            reject(new CliError(`dashboard: status ${res.statusCode} from the manager`));
          }
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error('no answer')));
    req.on('error', (e: Error) => reject(new CliError(`dashboard: ${e.message}`)));
  });
}

export function dashboardCommand(io: CliIO): Command {
  return new Command('dashboard')
    .description("Open the web dashboard: a local proxy on 127.0.0.1 to a manager's dashboard, with your identity")
    .option('--port <port>', 'local port (default: a free one)')
    .option('--upstream <host:port>', "the manager's dashboard listener (default: the manager's host, its port + 4)")
    .action(async (f: { port?: string; upstream?: string }, c: Command) =>
      guarded(io, async () => {
        const port = parsePort(f.port);
        const upstream = upstreamOf(hostOf(c, io.env), f.upstream);
        const sec = securityOf(c, io.env);
        if (sec.mode !== 'mtls') throw new CliError('dashboard: needs your TLS bundle (ca.pem, cert.pem, key.pem): --tls-dir, $CONVOY_TLS_DIR or ~/.convoy/tls');
        const proxy = await startDashboardProxy({ upstream, ca: sec.ca, cert: sec.cert, key: sec.key, port });
        try {
          const who = await check(proxy.url);
          io.out(`Dashboard of ${upstream} as ${who.role} "${who.id}":\n  ${proxy.url}\nOpen it in a browser on this machine. Ctrl-C stops the proxy.\n`);
          await new Promise<void>((resolve) => {
            const on = () => {
              process.off('SIGINT', on);
              process.off('SIGTERM', on);
              resolve();
            };
            process.on('SIGINT', on);
            process.on('SIGTERM', on);
          });
        } finally {
          await proxy.close();
        }
      }),
    );
}
