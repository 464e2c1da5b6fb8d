// The AgentLocal contract (proto/agent.proto) for agent/exec/, its only user
// on both sides (agent, CLI): the package and the client come from the one
// client factory, proto/client.ts.
import * as path from 'node:path';

export { agentLocalPackage, agentLocalClient } from '../../proto/client';
export type { AgentLocalClient, AgentLocalHandlers } from '../../proto/generated/convoy/AgentLocal';
export type { ExecRequest, ExecRequest__Output } from '../../proto/generated/convoy/ExecRequest';
export type { ExecResponse, ExecResponse__Output } from '../../proto/generated/convoy/ExecResponse';

/** Where agents put their local sockets unless told otherwise ($CONVOY_RUN_DIR overrides it for the CLI). */
export const DEFAULT_RUN_DIR = '/run/convoy';
export const RUN_DIR_ENV = 'CONVOY_RUN_DIR';

/** The well-known path of a node's agent socket: <run dir>/agent-<node id>.sock. */
export function agentSocketPath(runDir: string, nodeId: string): string {
  return path.join(runDir, `agent-${nodeId}.sock`);
}
