// Test clusters: managers and agents as child processes (so `kill -9` is
// real) on a throwaway etcd, plus a Control API that fails over between them.
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { connectControl, controlApiOf, mtls, type ClientSecurity, type ControlApi, type ControlConnection, type ControlInvoker } from '../../proto/client';
import { readBundle } from '../../common/identity';
import { startEtcd, type TestEtcd } from '../../lab/etcd';

/** The one polling helper (common/eventually.ts), where the cluster tests have always found it. */
export { eventually } from '../../common/eventually';

/** Deadline of one Control call of a test cluster: a manager that is alive answers well within it. */
const CALL_DEADLINE_MS = 5000;

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

export class TestCluster {
  readonly dir = fs.mkdtempSync(path.join(os.tmpdir(), 'convoy-test-cluster-'));
  etcd!: TestEtcd;
  managers: Proc[] = [];
  agents: Proc[] = [];
  private clients = new Map<string, ControlConnection>();
  workerToken = '';
  /** With CONVOY_TEST_LOGS=1, where the processes' logs are kept (not removed at stop). */
  readonly logDir = process.env.CONVOY_TEST_LOGS ? fs.mkdtempSync(path.join(os.tmpdir(), 'convoy-test-logs-')) : undefined;

  /** Extra manager options (certificate lifetime, say) for every manager this cluster starts. */
  managerOptions: Record<string, unknown> = {};

  constructor(
    readonly heartbeatPeriodMs = 300,
    /** etcd's --quota-backend-bytes (a small one to fill it: NOSPACE tests). */
    readonly etcdQuotaBytes?: number,
  ) {}

  /** The admin bundle the first manager wrote: what the test's Control API calls present. */
  get security(): ClientSecurity {
    return mtls(readBundle(this.managers[0]?.info.adminDir ?? path.join(this.dir, 'm0', 'admin')));
  }

  /** The join listener of the first manager still listed. */
  get joinAddr(): string {
    return this.managers[0].info.joinAddr;
  }

  async start(managers = 1): Promise<void> {
    this.etcd = await startEtcd({ dataDir: path.join(this.dir, 'etcd'), quotaBackendBytes: this.etcdQuotaBytes });
    for (let i = 0; i < managers; i++) await this.addManager();
    const tokens = await this.api.getJoinTokens({});
    this.workerToken = tokens.worker;
  }

  private managerSeq = 0;

  async addManager(): Promise<Proc> {
    // Ids never repeat, also after a manager was killed and dropped from the list.
    const i = this.managerSeq++;
    const p = await spawnProc(
      {
        role: 'manager',
        // One KEK for all (docs/security.md: --kek-file): the first creates it, the others load it.
        opts: { id: `m${i}`, dataDir: path.join(this.dir, `m${i}`), listen: '127.0.0.1:0', etcdEndpoints: this.etcd.endpoints, etcdTls: this.etcd.tls, heartbeatPeriodMs: this.heartbeatPeriodMs, kekFile: path.join(this.dir, 'kek'), ...this.managerOptions },
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
        joinAddr: this.joinAddr,
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

  /** A Control API call on the first manager still alive (in the order they were added). */
  private readonly invoke: ControlInvoker = async (method, req) => {
    let last: unknown;
    for (const m of this.managers) {
      let c = this.clients.get(m.info.addr);
      if (!c) this.clients.set(m.info.addr, (c = connectControl(m.info.addr, { security: this.security, deadlineMs: CALL_DEADLINE_MS })));
      try {
        return await c.invoke(method, req);
      } catch (e) {
        last = e;
        const code = (e as grpc.ServiceError).code;
        if (code !== grpc.status.UNAVAILABLE && code !== grpc.status.DEADLINE_EXCEEDED) throw e;
      }
    }
    throw last;
  };

  /** The Control API of the cluster: each call goes to the first manager still alive. */
  readonly api: ControlApi = controlApiOf(this.invoke);

  async stop(): Promise<void> {
    for (const c of this.clients.values()) c.close();
    this.clients.clear();
    await Promise.all([...this.agents, ...this.managers].map((p) => p.stop().catch(() => undefined)));
    await this.etcd?.stop().catch(() => undefined);
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}
