// A throwaway etcd for tests: loopback, free ports, a temp data dir removed on stop.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { startEtcd as startEmbedded } from '../manager/embedded/etcd';

export interface TestEtcd {
  endpoints: string[];
  pid: number;
  stop(): Promise<void>;
}

export async function startEtcd(opts: { dataDir?: string } = {}): Promise<TestEtcd> {
  const dir = opts.dataDir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'convoy-test-etcd-'));
  const e = await startEmbedded({ dataDir: dir });
  return {
    endpoints: [e.endpoint],
    pid: e.pid,
    async stop() {
      await e.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
