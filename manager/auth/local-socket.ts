// The manager's root-only unix socket, as docker.sock: the Control API for
// local root (`CONVOY_HOST=unix://<dataDir>/convoy.sock convoy ...`), with
// no certificate. Calls on it are LOCAL_ROOT (admin): this server's wrapper
// marks each with LOCAL_SOCKET, which identityOf() reads; the TCP listener
// never sets it. Only root can connect: the socket is 0600 and root's, and
// it is made in a private 0700 directory and renamed into place, so there is
// no moment at which someone else could connect to it.
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { nullLogger, type Logger } from '../../common/logger';
import { LOCAL_SOCKET } from './identity';

/** The socket's name in the manager's data dir (the default path). */
export const LOCAL_SOCKET_FILE = 'convoy.sock';
/** Longest unix socket path Linux binds (sun_path is 108 bytes with its NUL). */
export const SOCKET_PATH_MAX = 107;
/** The private directory the socket is bound in before it is renamed into place ('.cs-' + 6 random). */
const TMP_OVERHEAD = '/.cs-XXXXXX/s'.length;

/** Whether a socket can be made at `p` (bound in its private directory first). */
export function socketPathFits(p: string): boolean {
  const dir = path.dirname(path.resolve(p));
  return Buffer.byteLength(path.resolve(p)) <= SOCKET_PATH_MAX && Buffer.byteLength(dir) + TMP_OVERHEAD <= SOCKET_PATH_MAX;
}

export interface LocalSocketOptions {
  path: string;
  service: grpc.ServiceDefinition;
  /** The authorized handlers (authorize.ts): the same the TCP listener serves. */
  handlers: object;
  /** Make the socket's directory 0700 even when it exists (the manager's data dir). */
  privateDir?: boolean;
  logger?: Logger;
}

export interface LocalSocket {
  readonly path: string;
  close(): Promise<void>;
}

type Handler = (call: Record<PropertyKey, unknown>, ...rest: unknown[]) => unknown;

/** `handlers` with every call marked as arriving on the local socket. */
export function markLocal<H extends object>(handlers: H): H {
  const out: Record<string, Handler> = {};
  for (const [k, h] of Object.entries(handlers as Record<string, Handler>)) {
    out[k] = (call, ...rest) => {
      call[LOCAL_SOCKET] = true;
      return h(call, ...rest);
    };
  }
  return out as H;
}

/** Whether something listens on the unix socket at `p`. */
function listening(p: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(p);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

export async function startLocalSocket(o: LocalSocketOptions): Promise<LocalSocket> {
  const log = o.logger ?? nullLogger;
  const p = path.resolve(o.path);
  const dir = path.dirname(p);
  if (!socketPathFits(p)) throw new Error(`--socket ${p}: too long for a unix socket (Linux binds ${SOCKET_PATH_MAX} bytes, and the socket is made first in a private directory beside it); choose a shorter path`);
  if (!fs.existsSync(dir) || o.privateDir) {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    fs.chmodSync(dir, 0o700);
  }
  const st = fs.lstatSync(p, { throwIfNoEntry: false });
  if (st) {
    if (!st.isSocket()) throw new Error(`--socket ${p}: exists and is not a socket (not replaced)`);
    if (await listening(p)) throw new Error(`--socket ${p}: another process serves it`);
    fs.rmSync(p, { force: true }); // a killed manager's
  }
  const server = new grpc.Server();
  server.addService(o.service, markLocal(o.handlers) as grpc.UntypedServiceImplementation);
  let ino = 0;
  const tmp = fs.mkdtempSync(path.join(dir, '.cs-'));
  const tmpSock = path.join(tmp, 's');
  try {
    await new Promise<void>((resolve, reject) => server.bindAsync(`unix://${tmpSock}`, grpc.ServerCredentials.createInsecure(), (e) => (e ? reject(e) : resolve())));
    fs.chmodSync(tmpSock, 0o600);
    if (process.getuid?.() === 0) fs.chownSync(tmpSock, 0, 0);
    fs.renameSync(tmpSock, p);
    ino = fs.lstatSync(p).ino;
  } catch (e) {
    server.forceShutdown();
    throw e;
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  log.info('local socket listening (root only: LOCAL_ROOT is admin)', { path: p });
  let closed: Promise<void> | undefined;
  return {
    path: p,
    close() {
      closed ??= new Promise<void>((resolve) => {
        server.forceShutdown();
        // Only our own socket: another manager may have replaced it since.
        if (fs.lstatSync(p, { throwIfNoEntry: false })?.ino === ino) fs.rmSync(p, { force: true });
        resolve();
      });
      return closed;
    },
  };
}
