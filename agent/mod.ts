// Public surface of the agent.
import { createLogger } from '../common/logger';
import { Agent, type AgentHandle, type AgentOptions } from './agent';
import { JoinRefusedError } from './session/errors';

export { Agent, DEFAULT_STATE_DIR, type AgentHandle, type AgentOptions } from './agent';
export { JoinRefusedError, SessionInvalidError, NotConnectedError } from './session/errors';
export { HollowExecutor, type HollowOptions } from './hollow/executor';
export { startHollowFleet, type HollowFleet, type HollowFleetOptions } from './hollow/fleet';
export { DispatcherClientPool } from './session/client-pool';

/**
 * Starts an agent. Resolves once it holds a session with a manager; rejects
 * with JoinRefusedError when the join token is refused (no retry). While no
 * manager is reachable it keeps trying (pass opts.signal to give up).
 */
export async function startAgent(opts: AgentOptions): Promise<AgentHandle> {
  const agent = new Agent(opts);
  await agent.start();
  return agent;
}

/**
 * `convoy agent`: runs until SIGINT/SIGTERM (exit 0) or until the managers
 * refuse the join (exit 1, "join refused: invalid join token" on stderr).
 */
export async function runAgentDaemon(opts: AgentOptions): Promise<number> {
  const log = opts.logger ?? createLogger('agent');
  let agent: AgentHandle;
  try {
    agent = await startAgent({ ...opts, logger: log });
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    log.error(msg);
    process.stderr.write(`convoy agent: ${msg}\n`);
    return e instanceof JoinRefusedError ? 1 : 2;
  }
  log.info('agent running', { 'node.id': agent.nodeId(), manager: agent.manager() });
  const onSignal = () => void agent.stop();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    await agent.done;
    return 0;
  } catch (e) {
    process.stderr.write(`convoy agent: ${e instanceof Error ? e.message : String(e)}\n`);
    return 1;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
