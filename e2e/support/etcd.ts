// etcdctl against the test lab's etcd (the manager's embedded one, or the
// lab's shared one with several managers), with the client certificate of its
// own CA (manager/embedded/pki.ts lays them out), from inside lab host 1.
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import type { LabState } from '../../lab/mod';
import { TEST_LAB_DIR } from './lab';

const execFileP = promisify(execFile);

/** etcdctl's flags for the lab's etcd: found through the etcd process whose data dir is under the test lab's. */
export function labEtcdFlags(): string[] {
  for (const pid of fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    let argv: string[];
    try {
      argv = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    } catch {
      continue;
    }
    if (!argv[0]?.endsWith('etcd') || !argv.some((a) => a.startsWith(`--data-dir=${TEST_LAB_DIR}/`))) continue;
    const url = argv.find((a) => a.startsWith('--listen-client-urls='));
    const ca = argv.find((a) => a.startsWith('--trusted-ca-file='));
    if (url && ca) {
      const tls = path.dirname(ca.slice('--trusted-ca-file='.length));
      return ['--endpoints', url.slice('--listen-client-urls='.length), '--cacert', path.join(tls, 'ca.pem'), '--cert', path.join(tls, 'client.pem'), '--key', path.join(tls, 'client-key.pem')];
    }
  }
  throw new Error(`no etcd with a data dir under ${TEST_LAB_DIR}`);
}

/** Runs `etcdctl ARGS` in lab host 1's network namespace; resolves to its stdout. */
export async function labEtcdctl(state: LabState, args: string[]): Promise<string> {
  const { stdout } = await execFileP('nsenter', [`--net=/run/netns/${state.hosts[0].netns}`, '--', 'etcdctl', ...labEtcdFlags(), ...args], {
    env: { ...process.env, ETCDCTL_API: '3' },
    maxBuffer: 256 * 1024 * 1024,
    encoding: 'utf8',
  });
  return stdout;
}
