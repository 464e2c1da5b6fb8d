// Test clusters: managers and agents as child processes (so `kill -9` is
// real) on a throwaway etcd, plus a promisified Control API client.
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { grpcPackages, type ControlClient } from '../../proto/mod';
import { startEtcd, type TestEtcd } from '../../lab/etcd';

export interface Proc {
  pid: number;
  info: Record<string, string>;
  kill9(): void;
  stop(): Promise<void>;
}

function spawnProc(spec: unknown, logDir?: string): Promise<Proc> {
  const child: ChildProcess = spawn(process.execPath, [path.join(__dirname, 'proc-main.js'), JSON.stringify(spec)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  const log = logDir && process.env.CONVOY_TEST_LOGS ? fs.createWriteStream(path.join(logDir, `${(spec as { role: string }).role}-${child.pid}.log`)) : undefined;
  child.stderr!.on('data', (d: Buffer) => {
    err = (err + d.toString()).slice(-4000);
    log?.write(d);
  });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /READY (.*)\n/.exec(out);
      if (m) {
        resolve({
          pid: child.pid!,
          info: JSON.parse(m[1]) as Record<string, string>,
          kill9: () => child.kill('SIGKILL'),
          async stop() {
            if (child.exitCode !== null || child.signalCode !== null) return;
            child.kill('SIGTERM');
            const t = setTimeout(() => child.kill('SIGKILL'), 5000);
            await exited;
            clearTimeout(t);
          },
        });
      }
    });
    child.once('exit', (code) => reject(new Error(`process exited (${code}) before it was ready: ${err}`)));
  });
}

export type Call = <Req, Res>(method: string, req: Req) => Promise<Res>;

export class TestCluster {
  readonly dir = fs.mkdtempSync(path.join(os.tmpdir(), 'convoy-test-cluster-'));
  etcd!: TestEtcd;
  managers: Proc[] = [];
  agents: Proc[] = [];
  private clients: grpc.Client[] = [];
  workerToken = '';
  /** With CONVOY_TEST_LOGS=1, where the processes' logs are kept (not removed at stop). */
  readonly logDir = process.env.CONVOY_TEST_LOGS ? fs.mkdtempSync(path.join(os.tmpdir(), 'convoy-test-logs-')) : undefined;

  constructor(readonly heartbeatPeriodMs = 300) {}

  async start(managers = 1): Promise<void> {
    this.etcd = await startEtcd({ dataDir: path.join(this.dir, 'etcd') });
    for (let i = 0; i < managers; i++) await this.addManager();
    const tokens = await this.call<object, { worker: string }>('GetJoinTokens', {});
    this.workerToken = tokens.worker;
  }

  private managerSeq = 0;

  async addManager(): Promise<Proc> {
    // Ids never repeat, also after a manager was killed and dropped from the list.
    const i = this.managerSeq++;
    const p = await spawnProc(
      {
        role: 'manager',
        opts: { id: `m${i}`, dataDir: path.join(this.dir, `m${i}`), listen: '127.0.0.1:0', etcdEndpoints: this.etcd.endpoints, heartbeatPeriodMs: this.heartbeatPeriodMs },
      },
      this.logDir,
    );
    this.managers.push(p);
    return p;
  }

  async addAgent(o: { hostname: string; labels?: Record<string, string>; memoryBytes?: number; token?: string }): Promise<Proc> {
    const p = await spawnProc({
      role: 'agent',
      opts: {
        managers: this.managers.map((m) => m.info.addr),
        joinToken: o.token ?? this.workerToken,
        stateDir: path.join(this.dir, `agent-${o.hostname}`),
        hostname: o.hostname,
        advertiseAddr: '127.0.0.1',
        labels: o.labels ?? {},
        executor: 'hollow',
      },
    }, this.logDir);
    this.agents.push(p);
    return p;
  }

  /** A Control API call on the first manager still alive. */
  call: Call = async <Req, Res>(method: string, req: Req): Promise<Res> => {
    let last: unknown;
    for (const m of this.managers) {
      const c = new (grpcPackages().control.convoy.Control)(m.info.addr, grpc.credentials.createInsecure()) as unknown as ControlClient & Record<string, unknown>;
      this.clients.push(c as unknown as grpc.Client);
      const fn = c[method] as (req: Req, md: grpc.Metadata, o: grpc.CallOptions, cb: (e: grpc.ServiceError | null, r?: Res) => void) => void;
      try {
        return await new Promise<Res>((resolve, reject) =>
          fn.call(c, req, new grpc.Metadata(), { deadline: Date.now() + 5000 }, (e, r) => (e ? reject(e) : resolve(r as Res))),
        );
      } catch (e) {
        last = e;
        if ((e as grpc.ServiceError).code !== grpc.status.UNAVAILABLE && (e as grpc.ServiceError).code !== grpc.status.DEADLINE_EXCEEDED) throw e;
      }
    }
    throw last;
  };

  async stop(): Promise<void> {
    for (const c of this.clients) c.close();
    await Promise.all([...this.agents, ...this.managers].map((p) => p.stop().catch(() => undefined)));
    await this.etcd?.stop().catch(() => undefined);
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Polls until cond() is truthy; fails after `ms` (a bound on I/O, not a timing assertion). */
export async function eventually<T>(cond: () => Promise<T | undefined | false>, what: string, ms = 20_000): Promise<T> {
  const end = Date.now() + ms;
  let lastErr: unknown;
  for (;;) {
    try {
      const v = await cond();
      if (v) return v;
    } catch (e) {
      lastErr = e;
    }
    if (Date.now() > end) throw new Error(`timed out waiting for: ${what}${lastErr ? ` (last error: ${String(lastErr)})` : ''}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
