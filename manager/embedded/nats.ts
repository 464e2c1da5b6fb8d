// The embedded default's NATS: a manager started with no etcd endpoints and
// no NATS URL runs Debian's nats-server (with JetStream, for event replay)
// in its data dir, on a free loopback port, and stops it by pid.
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { canConnect, freePort, stopChild } from '../../common/net';

export interface EmbeddedNats {
  url: string;
  pid: number;
  stop(): Promise<void>;
}

/**
 * `host` is where it listens (default loopback; "0.0.0.0" for every
 * address), `advertiseHost` what its URL names (default: `host`, or loopback
 * for "0.0.0.0") so agents on other hosts can reach it.
 */
export async function startNats(opts: { dataDir: string; port?: number; host?: string; advertiseHost?: string }): Promise<EmbeddedNats> {
  const host = opts.host ?? '127.0.0.1';
  const urlHost = opts.advertiseHost ?? (host === '0.0.0.0' ? '127.0.0.1' : host);
  const port = opts.port ?? (await freePort(host));
  fs.mkdirSync(opts.dataDir, { recursive: true });
  const logPath = path.join(opts.dataDir, 'nats.log');
  const logFile = fs.openSync(logPath, 'a');
  const child: ChildProcess = spawn('nats-server', ['-a', host, '-p', String(port), '-js', '-sd', path.join(opts.dataDir, 'jetstream')], {
    stdio: ['ignore', logFile, logFile],
  });
  fs.closeSync(logFile);
  let dead = false;
  child.once('exit', () => (dead = true));
  child.once('error', () => (dead = true));
  const deadline = Date.now() + 10_000;
  while (!(await canConnect(`${host === '0.0.0.0' ? '127.0.0.1' : host}:${port}`))) {
    if (dead) throw new Error(`nats-server exited at start; see ${logPath}`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`nats-server did not listen on ${host}:${port}; see ${logPath}`);
    }
    await new Promise((r) => setTimeout(r, 30));
  }
  return {
    url: `nats://${urlHost}:${port}`,
    pid: child.pid!,
    stop: () => stopChild(child),
  };
}
