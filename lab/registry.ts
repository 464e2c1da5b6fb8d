// A throwaway OCI registry (Debian's docker-registry) for tests: a free
// loopback port, a temp storage dir, no auth. Plain HTTP, so pass
// `insecureRegistries: [reg.host]` to clients.
//
//   const reg = await startRegistry();
//   ... `${reg.host}/convoy-test/busybox:1` ...
//   await reg.stop();           // kills it by pid and removes its dir
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { freePort } from '../common/net';
import { killOrphans } from './procs';

export interface TestRegistry {
  /** "127.0.0.1:PORT": the registry part of image references. */
  host: string;
  /** "http://127.0.0.1:PORT" */
  url: string;
  /** Storage root (tests may corrupt blobs on purpose: see blobPath). */
  dir: string;
  pid: number;
  /** Where the registry keeps a blob's bytes. */
  blobPath(digest: string): string;
  stop(): Promise<void>;
}

export const REGISTRY_BINARY = '/usr/bin/docker-registry';
const START_TIMEOUT_MS = 15_000;

/**
 * The configuration of a registry without auth over plain HTTP: the test
 * registries' and the lab's (lab/services.ts). Errors only in its log, no
 * access log (a hundred containers' pulls would fill it). `allowDelete` lets
 * tests remove blobs and manifests.
 */
export function registryConfig(o: { root: string; addr: string; allowDelete?: boolean }): string {
  return [
    'version: 0.1',
    'log:',
    '  level: error',
    '  accesslog:',
    '    disabled: true',
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${o.root}`,
    ...(o.allowDelete ? ['  delete:', '    enabled: true'] : []),
    'http:',
    `  addr: ${o.addr}`,
    '',
  ].join('\n');
}

/** True when the registry at host:port answers its API root. */
export async function registryAnswers(host: string): Promise<boolean> {
  try {
    const res = await fetch(`http://${host}/v2/`);
    await res.body?.cancel();
    return res.ok;
  } catch {
    return false; // not listening yet
  }
}

/** A free loopback port. */
export { freePort };

const DIR_PREFIX = 'convoy-test-registry-';

/**
 * Kills test registries orphaned by a crashed earlier run (parent gone, so
 * re-parented to pid 1, and serving a config under a convoy-test-registry-
 * dir) and removes their dirs. startRegistry calls it first.
 */
export function killOrphanedRegistries(): number {
  const configOf = (cmd: string[]) => cmd.find((a) => a.includes(`/${DIR_PREFIX}`) && a.endsWith('/config.yml'));
  const killed = killOrphans((o) => !!configOf(o.cmdline) && path.basename(o.cmdline[0]).includes('registry'));
  for (const o of killed) fs.rmSync(path.dirname(configOf(o.cmdline)!), { recursive: true, force: true });
  return killed.length;
}

export async function startRegistry(opts: { binary?: string } = {}): Promise<TestRegistry> {
  killOrphanedRegistries();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), DIR_PREFIX));
  const port = await freePort();
  const host = `127.0.0.1:${port}`;
  const configPath = path.join(dir, 'config.yml');
  fs.mkdirSync(path.join(dir, 'data'));
  fs.writeFileSync(configPath, registryConfig({ root: path.join(dir, 'data'), addr: host, allowDelete: true }));
  const child: ChildProcess = spawn(opts.binary ?? REGISTRY_BINARY, ['serve', configPath], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (c: Buffer) => (stderr = (stderr + c.toString()).slice(-4000)));
  const pid = child.pid ?? 0;
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const gone = new Promise<void>((r) => child.once('exit', () => r()));
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
      await gone;
    }
    fs.rmSync(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    if (child.exitCode !== null) {
      fs.rmSync(dir, { recursive: true, force: true });
      throw new Error(`docker-registry exited with ${child.exitCode}: ${stderr}`);
    }
    if (await registryAnswers(host)) break;
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`docker-registry did not answer on ${host}: ${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    host,
    url: `http://${host}`,
    dir,
    pid,
    blobPath: (digest: string) => {
      const hex = digest.replace(/^sha256:/, '');
      return path.join(dir, 'data', 'docker', 'registry', 'v2', 'blobs', 'sha256', hex.slice(0, 2), hex, 'data');
    },
    stop,
  };
}
