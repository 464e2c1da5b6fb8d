// Public surface of agent/exec/: the agent's local socket (AgentLocal, proto/agent.proto).
export { startExecServer, sweepStaleSockets, HANGUP_GRACE_MS, type ExecServer, type ExecServerOptions, type ExecTarget } from './server';
export { execInTask, ExecError, type ExecIO, type ExecRequestOptions } from './client';
export { agentSocketPath, DEFAULT_RUN_DIR, RUN_DIR_ENV } from './proto';
