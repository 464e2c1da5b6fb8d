// Child-process entry for tests: runs one manager or one agent so tests can
// `kill -9` it for real. Usage: node proc-main.js '<json>'; prints
// "READY <json>" on stdout once up.
import { startManager, type ManagerOptions } from '../../manager/mod';
import { startAgent, type AgentOptions } from '../../agent/mod';
import { createLogger, nullLogger } from '../../common/logger';

/** CONVOY_TEST_LOGS=1: the processes log to stderr (kept in <cluster dir>/<role>-<pid>.log). */
const logger = (c: string) => (process.env.CONVOY_TEST_LOGS ? createLogger(c) : nullLogger);

type Spec = { role: 'manager'; opts: ManagerOptions } | { role: 'agent'; opts: AgentOptions };

async function main(): Promise<void> {
  const spec = JSON.parse(process.argv[2]) as Spec;
  if (spec.role === 'manager') {
    const m = await startManager({ ...spec.opts, logger: logger('manager') });
    process.stdout.write(`READY ${JSON.stringify({ id: m.id, addr: m.grpcAddr, joinAddr: m.joinAddr, adminDir: m.adminDir })}\n`);
    const stop = () => void m.stop().then(() => process.exit(0));
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
  } else {
    const a = await startAgent({ ...spec.opts, logger: logger('agent') });
    process.stdout.write(`READY ${JSON.stringify({ nodeId: a.nodeId() })}\n`);
    const stop = () => void a.stop().then(() => process.exit(0));
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
  }
}

main().catch((e) => {
  process.stderr.write(`${e instanceof Error ? e.stack : String(e)}\n`);
  process.exit(1);
});
