// The embedded default's NATS: a manager started with no etcd endpoints and
// no NATS URL runs Debian's nats-server (with JetStream, for event replay)
// in its data dir and stops it by pid. Also the configuration every NATS
// Convoy starts runs with (the lab's shared one too): TLS only, every client
// presents a certificate of the cluster CA whose subject is one of the users
// (verify_and_map; permissions per identity: proto/nats-auth.ts), JetStream
// with byte limits. docs/security.md, "NATS".
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { TlsBundle } from '../../common/identity';
import { canConnect, freePort, stopChild } from '../../common/net';
import { eventually } from '../../common/eventually';
import { natsUsers, type NatsIdentity } from '../../proto/nats-auth';

export interface EmbeddedNats {
  /** tls://host:port */
  url: string;
  pid: number;
  /** Replaces the users (identities) the server admits and reloads it; resolves once it reloaded. */
  setIdentities(ids: Iterable<NatsIdentity>): Promise<void>;
  /**
   * A renewed server certificate: rewrites the TLS files and reloads, so new
   * connections get it (open ones keep theirs); resolves once it reloaded.
   */
  setTls(tls: TlsBundle): Promise<void>;
  stop(): Promise<void>;
}

/** JetStream file storage the server may use at most (the events stream has its own, lower, limit). */
export const NATS_MAX_FILE_STORE_BYTES = 1024 * 1024 * 1024;
/** JetStream memory storage (ordered consumers of `convoy events`). */
export const NATS_MAX_MEMORY_STORE_BYTES = 64 * 1024 * 1024;
/** Largest message a client may publish (a log batch is far smaller). */
export const NATS_MAX_PAYLOAD_BYTES = 1024 * 1024;
/** Seconds a client has to finish the TLS handshake. */
const TLS_TIMEOUT_S = 2;
/** Bound on a configuration reload (the server rereads one small file). */
const RELOAD_MS = 10_000;

export interface NatsServerFiles {
  dir: string;
  caFile: string;
  certFile: string;
  keyFile: string;
}

/** Writes the server's TLS material into `dir` (0700; files 0600) and returns the paths. */
export function writeNatsTls(dir: string, tls: TlsBundle): NatsServerFiles {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  fs.chmodSync(dir, 0o700);
  const files = { dir, caFile: path.join(dir, 'ca.pem'), certFile: path.join(dir, 'cert.pem'), keyFile: path.join(dir, 'key.pem') };
  for (const [f, text] of [
    [files.caFile, tls.ca],
    [files.certFile, tls.cert],
    [files.keyFile, tls.key],
  ] as const) {
    fs.writeFileSync(`${f}.tmp`, text, { mode: 0o600 });
    fs.renameSync(`${f}.tmp`, f);
  }
  return files;
}

/**
 * A nats-server configuration (JSON, a subset of its format): listen on
 * host:port, TLS with client certificates verified against the cluster CA
 * and mapped to `identities`, JetStream in `storeDir` with byte limits.
 * A certificate that maps to no user is refused, so an empty list admits
 * nobody.
 */
export function natsServerConfig(o: {
  host: string;
  port: number;
  tls: NatsServerFiles;
  storeDir: string;
  identities: Iterable<NatsIdentity>;
  maxFileStoreBytes?: number;
}): string {
  const users = natsUsers(o.identities);
  const conf = {
    host: o.host,
    port: o.port,
    max_payload: NATS_MAX_PAYLOAD_BYTES,
    tls: { cert_file: o.tls.certFile, key_file: o.tls.keyFile, ca_file: o.tls.caFile, verify_and_map: true, timeout: TLS_TIMEOUT_S },
    authorization: {
      // nats-server treats an empty user list as "no authorization": keep one no certificate can name.
      users: users.length ? users : [{ user: 'CN=nobody,OU=none,O=none', permissions: { publish: { deny: ['>'] }, subscribe: { deny: ['>'] } } }],
    },
    jetstream: { store_dir: o.storeDir, max_file_store: o.maxFileStoreBytes ?? NATS_MAX_FILE_STORE_BYTES, max_memory_store: NATS_MAX_MEMORY_STORE_BYTES },
  };
  return `${JSON.stringify(conf, null, 2)}\n`;
}

/**
 * nats-server processes running the configuration at confPath (`-c confPath`):
 * the manager's own child, or one started again from the same file after an
 * outage (the lab's startLabNats, an operator).
 */
export function natsServersFor(confPath: string): number[] {
  const out: number[] = [];
  for (const p of fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const argv = fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0');
      if (path.basename(argv[0]) === 'nats-server' && argv.includes(confPath)) out.push(Number(p));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** Times the server logged a finished reload (its log is the only place it says so). */
function reloads(logPath: string): number {
  try {
    return fs.readFileSync(logPath, 'utf8').split('Reloaded server configuration').length - 1;
  } catch {
    return 0;
  }
}

/**
 * A configuration file that can be rewritten and reloaded (SIGHUP) while
 * the server runs: what the embedded NATS and the lab's share.
 */
export function natsConfigFile(o: { confPath: string; logPath: string; render: (ids: Iterable<NatsIdentity>) => string }) {
  let current = '';
  return {
    write(ids: Iterable<NatsIdentity>): boolean {
      const text = o.render(ids);
      if (text === current) return false;
      fs.writeFileSync(`${o.confPath}.tmp`, text, { mode: 0o600 });
      fs.renameSync(`${o.confPath}.tmp`, o.confPath);
      current = text;
      return true;
    },
    async reload(pid: number): Promise<void> {
      const before = reloads(o.logPath);
      process.kill(pid, 'SIGHUP');
      await eventually(() => reloads(o.logPath) > before, `nats-server ${pid} to reload ${o.confPath} (see ${o.logPath})`, { timeoutMs: RELOAD_MS, pollMs: 20 });
    },
  };
}

/**
 * `host` is where it listens (default loopback; "0.0.0.0" for every
 * address), `advertiseHost` what its URL names (default: `host`, or loopback
 * for "0.0.0.0") so agents on other hosts can reach it. `tls`: the server's
 * certificate (the manager's own: it must name `advertiseHost`) and the
 * cluster CA it verifies clients against. `identities`: who may connect at
 * first (setIdentities changes it).
 */
export async function startNats(opts: {
  dataDir: string;
  tls: TlsBundle;
  identities?: Iterable<NatsIdentity>;
  port?: number;
  host?: string;
  advertiseHost?: string;
  maxFileStoreBytes?: number;
}): Promise<EmbeddedNats> {
  const host = opts.host ?? '127.0.0.1';
  const urlHost = opts.advertiseHost ?? (host === '0.0.0.0' ? '127.0.0.1' : host);
  const port = opts.port ?? (await freePort(host));
  fs.mkdirSync(opts.dataDir, { recursive: true, mode: 0o700 });
  const tls = writeNatsTls(path.join(opts.dataDir, 'tls'), opts.tls);
  const logPath = path.join(opts.dataDir, 'nats.log');
  const confPath = path.join(opts.dataDir, 'nats.conf');
  const storeDir = path.join(opts.dataDir, 'jetstream');
  const conf = natsConfigFile({ confPath, logPath, render: (identities) => natsServerConfig({ host, port, tls, storeDir, identities, maxFileStoreBytes: opts.maxFileStoreBytes }) });
  conf.write(opts.identities ?? []);
  const logFile = fs.openSync(logPath, 'a');
  const child: ChildProcess = spawn('nats-server', ['-c', confPath], { stdio: ['ignore', logFile, logFile] });
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
  /** Reloads our child, or, once it is gone, whichever nats-server runs our configuration file now. */
  const reloadRunning = async () => {
    for (const pid of dead ? natsServersFor(confPath) : [child.pid!]) await conf.reload(pid);
  };
  // One reload at a time, the last list wins.
  let chain = Promise.resolve();
  return {
    url: `tls://${urlHost}:${port}`,
    pid: child.pid!,
    setIdentities(ids) {
      const list = [...ids];
      const next = chain.then(async () => {
        // Written even when the server is gone, so one started again from the file admits them;
        // and such a server (our child died, someone restarted it from the file) is reloaded too.
        if (!conf.write(list)) return;
        await reloadRunning();
      });
      chain = next.catch(() => undefined);
      return next;
    },
    setTls(bundle) {
      const next = chain.then(async () => {
        // Same paths, so the configuration text is unchanged: a reload of its own.
        writeNatsTls(tls.dir, bundle);
        await reloadRunning();
      });
      chain = next.catch(() => undefined);
      return next;
    },
    stop: () => stopChild(child),
  };
}
