// A host's networking without an agent, for integration tests and benchmarks:
// run inside a host namespace (nsenter), it reads one JSON command per line
// on stdin and answers one JSON line on stdout:
//   {"op":"apply","state":NetworkState}  → {"ok":true,"report":ApplyReport}
//   {"op":"attach","task":Task}          → {"ok":true,"netnsPath":…,"resolvConf":…}
//   {"op":"detach","taskId":…}           → {"ok":true}
//   {"op":"cleanup"}                     → {"ok":true} (and exits)
// Errors: {"ok":false,"error":"…"}. Argv: underlay address, upstream resolvers (comma-separated, optional).
import * as readline from 'node:readline';
import type { NetworkState, Task } from '../../../proto/mod';
import { createLogger } from '../../../common/logger';
import { createHostNetworking } from '../mod';

type Command = { op: 'apply'; state: NetworkState } | { op: 'attach'; task: Task } | { op: 'detach'; taskId: string } | { op: 'cleanup' };

async function main(): Promise<void> {
  const [underlayAddr, upstreams] = process.argv.slice(2);
  const net = createHostNetworking({ underlayAddr, upstreams: upstreams ? upstreams.split(',') : [], logger: createLogger('host-main') });
  const rl = readline.createInterface({ input: process.stdin });
  const reply = (o: object) => process.stdout.write(JSON.stringify(o) + '\n');
  let queue = Promise.resolve();
  rl.on('line', (line) => {
    queue = queue.then(async () => {
      const cmd = JSON.parse(line) as Command;
      try {
        switch (cmd.op) {
          case 'apply':
            await net.programmer.apply(cmd.state);
            reply({ ok: true, report: net.programmer.lastReport });
            break;
          case 'attach':
            reply({ ok: true, ...(await net.attacher.attach(cmd.task)) });
            break;
          case 'detach':
            await net.attacher.detach(cmd.taskId);
            reply({ ok: true });
            break;
          case 'cleanup':
            await net.cleanup();
            reply({ ok: true });
            process.exit(0);
        }
      } catch (e) {
        reply({ ok: false, error: e instanceof Error ? e.message : String(e) });
      }
    });
  });
  rl.on('close', () => void queue.then(() => process.exit(0)));
}

void main();
