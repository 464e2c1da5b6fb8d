// The Control API (proto/control.proto), served by every manager for the
// CLI, one file per noun as swarmkit's controlapi. Reads are served from the
// StateCache once it has caught up with the store (./common.ts ReadBarrier:
// an operator sees their own writes, and everyone else's that completed
// before the read, without a range of etcd per call); every write is a
// revision-guarded read-modify-write through the Store; every refusal names
// the field or the object and why.
import type { ControlHandlers } from '../../proto/mod';
import { clusterHandlers } from './cluster';
import { configHandlers } from './configs';
import { context, type ControlDeps } from './common';
import { networkHandlers } from './networks';
import { nodeHandlers } from './nodes';
import { secretHandlers } from './secrets';
import { serviceHandlers } from './services';
import { taskHandlers } from './tasks';
import { userHandlers } from './users';

export { makeToken, sha256, tokenSecretHash } from './cluster';
export { publicNode, ReadBarrier, type ControlCa, type ControlDeps } from './common';
export { USER_NAME_RE, validateUserName } from './users';
export { CONFIGS, openFile, SECRETS, type FileNoun, type FileObject } from './files';

export function createControl(d: ControlDeps): ControlHandlers {
  const c = context(d);
  return { ...serviceHandlers(c), ...taskHandlers(c), ...nodeHandlers(c), ...networkHandlers(c), ...clusterHandlers(c), ...userHandlers(c), ...secretHandlers(c), ...configHandlers(c) };
}
