// The AgentLocal contract (proto/agent.proto), loaded the way proto/mod.ts
// loads the others (same LOADER_OPTIONS). Kept here until proto/mod.ts
// re-exports it: agent/exec/ is the only user, on both sides (agent, CLI).
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { LOADER_OPTIONS, protoDir } from '../../proto/mod';
import type { ProtoGrpcType } from '../../proto/generated/agent';

export type { AgentLocalClient, AgentLocalHandlers } from '../../proto/generated/convoy/AgentLocal';
export type { ExecRequest, ExecRequest__Output } from '../../proto/generated/convoy/ExecRequest';
export type { ExecResponse, ExecResponse__Output } from '../../proto/generated/convoy/ExecResponse';

let cached: ProtoGrpcType | undefined;

export function agentLocalPackage(): ProtoGrpcType {
  if (!cached) {
    const dir = protoDir();
    cached = grpc.loadPackageDefinition(protoLoader.loadSync(path.join(dir, 'agent.proto'), { ...LOADER_OPTIONS, includeDirs: [dir] })) as unknown as ProtoGrpcType;
  }
  return cached;
}

/** Where agents put their local sockets unless told otherwise ($CONVOY_RUN_DIR overrides it for the CLI). */
export const DEFAULT_RUN_DIR = '/run/convoy';
export const RUN_DIR_ENV = 'CONVOY_RUN_DIR';

/** The well-known path of a node's agent socket: <run dir>/agent-<node id>.sock. */
export function agentSocketPath(runDir: string, nodeId: string): string {
  return path.join(runDir, `agent-${nodeId}.sock`);
}
