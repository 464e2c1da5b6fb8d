// Drives testing/host-main.ts inside a host namespace: a host's networking
// (bridge, overlay, nftables, DNS, task namespaces) with no agent.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import * as path from 'node:path';
import * as readline from 'node:readline';
import type { NetworkState, Task } from '../../../proto/mod';
import type { ApplyReport } from '../programmer';
import { inNetns } from '../sh';

export class FakeHost {
  private readonly proc: ChildProcessWithoutNullStreams;
  private readonly waiting: ((line: string) => void)[] = [];
  private stderr = '';

  constructor(readonly netns: string, readonly underlayAddr: string, upstreams: string[] = []) {
    const [cmd, args] = inNetns(netns, process.execPath, [path.join(__dirname, 'host-main.js'), underlayAddr, upstreams.join(',')]);
    this.proc = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    this.proc.stderr.on('data', (d: Buffer) => (this.stderr = (this.stderr + d.toString()).slice(-4000)));
    readline.createInterface({ input: this.proc.stdout }).on('line', (l) => this.waiting.shift()?.(l));
    this.proc.on('exit', () => {
      for (const w of this.waiting.splice(0)) w(JSON.stringify({ ok: false, error: `host-main exited: ${this.stderr}` }));
    });
  }

  private call<R>(cmd: object): Promise<R> {
    return new Promise((resolve, reject) => {
      this.waiting.push((line) => {
        const r = JSON.parse(line) as { ok: boolean; error?: string } & R;
        if (r.ok) resolve(r);
        else reject(new Error(r.error));
      });
      this.proc.stdin.write(JSON.stringify(cmd) + '\n');
    });
  }

  apply(state: NetworkState): Promise<{ report: ApplyReport }> {
    return this.call({ op: 'apply', state });
  }

  attach(task: Task): Promise<{ netnsPath: string; resolvConf?: string }> {
    return this.call({ op: 'attach', task });
  }

  detach(taskId: string): Promise<void> {
    return this.call({ op: 'detach', taskId });
  }

  /** Removes everything the host programmed and ends the process. */
  async close(): Promise<void> {
    if (this.proc.exitCode !== null) return;
    await this.call({ op: 'cleanup' }).catch(() => undefined);
    this.proc.kill();
  }
}
