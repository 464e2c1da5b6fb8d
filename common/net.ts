// Small TCP and process facts the programs' launchers, the lab and the tests need.
import type { ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';

/** The kernel's range of ephemeral ports (source ports of outgoing connections, and listen(0)'s picks). */
export function ephemeralPortRange(file = '/proc/sys/net/ipv4/ip_local_port_range'): [number, number] {
  try {
    const [lo, hi] = fs.readFileSync(file, 'utf8').trim().split(/\s+/).map(Number);
    if (lo > 0 && hi >= lo && hi <= 65535) return [lo, hi];
  } catch {
    // not Linux, or not readable: Linux's default
  }
  return [32768, 60999];
}

/** Random ports freePort tries below the ephemeral range before it lets the kernel pick one. */
const FREE_PORT_TRIES = 20;

/**
 * Ports freePort handed out in this process lately, and how far around
 * each it keeps clear: a manager started on port P also binds P+3 (join)
 * and P+4 (dashboard), and until it does, its embedded etcd or NATS (in
 * the same process, choosing their ports meanwhile) must not be handed P
 * or a neighbour. A CI run failed on that once (EADDRINUSE on a test
 * manager's port).
 */
const handedOut = new Map<number, number>();
const HANDED_OUT_SPAN = 4;
const HANDED_OUT_MS = 5 * 60_000;

function nearHandedOut(port: number, now = Date.now()): boolean {
  for (let p = port - HANDED_OUT_SPAN; p <= port + HANDED_OUT_SPAN; p++) {
    const at = handedOut.get(p);
    if (at !== undefined && now - at < HANDED_OUT_MS) return true;
  }
  return false;
}

function handOut(port: number): number {
  const now = Date.now();
  for (const [p, at] of handedOut) if (now - at >= HANDED_OUT_MS) handedOut.delete(p);
  handedOut.set(port, now);
  return port;
}

/** Binds and releases host:port; resolves the port, or undefined when it is taken (or `port` is 0 and the kernel's pick is returned). */
function tryPort(host: string, port: number): Promise<number | undefined> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', (e: NodeJS.ErrnoException) => (e.code === 'EADDRINUSE' || e.code === 'EACCES' ? resolve(undefined) : reject(e)));
    s.listen(port, host, () => {
      const got = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(got));
    });
  });
}

/**
 * A port nothing listens on right now, for a listener the caller starts
 * next. Chosen at random below the kernel's ephemeral range: a port of
 * that range (what listen(0) hands out) can become the source port of
 * any outgoing connection between this call and the caller's bind (a
 * manager's to its etcd, say), and the bind then fails with EADDRINUSE, as
 * a test run once did. Below the range only another listener can take it.
 */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  const [lo] = ephemeralPortRange();
  const from = Math.max(1024, lo - 12_000);
  if (lo - from >= 1000) {
    for (let i = 0; i < FREE_PORT_TRIES; i++) {
      const candidate = from + Math.floor(Math.random() * (lo - from));
      if (nearHandedOut(candidate)) continue;
      const got = await tryPort(host, candidate);
      if (got !== undefined) return handOut(got);
    }
  }
  const got = await tryPort(host, 0);
  if (got === undefined) throw new Error(`no free port on ${host}`);
  return got;
}

/** True when something accepts TCP connections on host:port. */
export function canConnect(hostPort: string): Promise<boolean> {
  const i = hostPort.lastIndexOf(':');
  return new Promise((resolve) => {
    const s = net.connect(Number(hostPort.slice(i + 1)), hostPort.slice(0, i));
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/** SIGTERM, then SIGKILL after graceMs; resolves once the child (one we spawned) has exited. */
export async function stopChild(child: ChildProcess | undefined, graceMs = 5_000): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill('SIGTERM');
  const t = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(t);
}
