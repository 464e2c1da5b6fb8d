// A throwaway etcd for tests: loopback, free ports, TLS with client
// certificates (as every etcd Convoy starts), a temp data dir removed on stop.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { TlsBundle } from '../common/identity';
import { startEtcd as startEmbedded } from '../manager/embedded/etcd';

export interface TestEtcd {
  endpoints: string[];
  pid: number;
  /** A client bundle etcd admits: ManagerOptions.etcdTls, EtcdStore.connect's tls. */
  tls: TlsBundle;
  /** The same as files, for `convoy manager --etcd-cacert/--etcd-cert/--etcd-key`. */
  tlsFiles: { cacert: string; cert: string; key: string };
  /** `convoy manager` flags for this etcd: --etcd and its TLS files. */
  managerFlags(): string[];
  stop(): Promise<void>;
}

export async function startEtcd(opts: { dataDir?: string; quotaBackendBytes?: number } = {}): Promise<TestEtcd> {
  const dir = opts.dataDir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'convoy-test-etcd-'));
  const e = await startEmbedded({ dataDir: dir, quotaBackendBytes: opts.quotaBackendBytes });
  const tlsDir = path.join(dir, 'tls');
  const tlsFiles = { cacert: path.join(tlsDir, 'ca.pem'), cert: path.join(tlsDir, 'client.pem'), key: path.join(tlsDir, 'client-key.pem') };
  return {
    endpoints: [e.endpoint],
    pid: e.pid,
    tls: e.clientTls,
    tlsFiles,
    managerFlags: () => ['--etcd', e.endpoint, '--etcd-cacert', tlsFiles.cacert, '--etcd-cert', tlsFiles.cert, '--etcd-key', tlsFiles.key],
    async stop() {
      await e.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
