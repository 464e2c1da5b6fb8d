// The one place each default lives: the CLI fills flags from these, the
// manager fills specs and cluster settings from these, the agent falls back
// to these. Docker's value wherever Docker has one.
import type { RestartPolicy, UpdateConfig } from './mod';

// ---- task lifecycle ----------------------------------------------------------
/** Docker: SIGTERM, then SIGKILL after 10 s. */
export const DEFAULT_STOP_GRACE_MS = 10_000;
export const DEFAULT_STOP_SIGNAL = 'SIGTERM';
/** Docker's default restart delay. */
export const DEFAULT_RESTART_DELAY_MS = 5000;
/** Docker: restart on any exit, 5 s apart, forever. */
export const DEFAULT_RESTART_POLICY: Readonly<RestartPolicy> = Object.freeze({ condition: 'RESTART_ANY', delayMs: DEFAULT_RESTART_DELAY_MS, maxAttempts: 0, windowMs: 0 });
/** Docker's update defaults: one task at a time, no delay, pause on failure, 5 s monitor, stop-first. */
export const DEFAULT_UPDATE_CONFIG: Readonly<UpdateConfig> = Object.freeze({
  parallelism: 1,
  delayMs: 0,
  failureAction: 'FAILURE_PAUSE',
  monitorMs: 5000,
  maxFailureRatio: 0,
  order: 'STOP_FIRST',
});
/** Docker's rollback defaults equal its update defaults. */
export const DEFAULT_ROLLBACK_CONFIG: Readonly<UpdateConfig> = DEFAULT_UPDATE_CONFIG;
/** Finished tasks kept per slot (Docker's task history limit). */
export const DEFAULT_TASK_HISTORY = 5;

// ---- cluster ranges --------------------------------------------------------------
/** Task addresses: one /24 per node. Checked against the host's routes and resolver at cluster creation. */
export const DEFAULT_CLUSTER_CIDR = '10.42.0.0/16';
/** Service virtual IPs. */
export const DEFAULT_VIP_CIDR = '10.43.0.0/16';
/** The network every service joins when it names none. */
export const DEFAULT_NETWORK = 'default';
/** Ingress published ports, as Kubernetes NodePorts. */
export const DEFAULT_INGRESS_PORTS: Readonly<{ min: number; max: number }> = Object.freeze({ min: 30000, max: 32767 });
/**
 * Host-mode ports picked when none is given: below the ingress range (which
 * every host listens on) and below Linux's ephemeral range (32768-60999, the
 * source ports of outgoing connections).
 */
export const DEFAULT_HOST_PORTS: Readonly<{ min: number; max: number }> = Object.freeze({ min: 20000, max: 29999 });

// ---- ports and addresses -----------------------------------------------------------
/** The manager's gRPC port (Control + Dispatcher). */
export const MANAGER_PORT = 7420;
/** The manager's /metrics port. */
export const MANAGER_METRICS_PORT = 7421;
/** Every agent's /metrics port. */
export const AGENT_METRICS_PORT = 7422;
/** Where the CLI looks for a manager when CONVOY_HOST is not set. */
export const DEFAULT_HOST = `127.0.0.1:${MANAGER_PORT}`;
export const DEFAULT_MANAGER_LISTEN = `0.0.0.0:${MANAGER_PORT}`;
export const DEFAULT_MANAGER_METRICS = `0.0.0.0:${MANAGER_METRICS_PORT}`;
export const DEFAULT_AGENT_METRICS = `0.0.0.0:${AGENT_METRICS_PORT}`;

// ---- timing ------------------------------------------------------------------------
/** Agents heartbeat once a second by default; a node is down after ~3 s of silence. */
export const DEFAULT_HEARTBEAT_MS = 1000;
/** Leader lease: 2 s, so a new leader takes over within ~2-3 s of the old one dying. */
export const DEFAULT_ELECTION_TTL_S = 2;

// ---- files and environment ------------------------------------------------------------
/** The agent's state (layers, containers, logs). */
export const DEFAULT_STATE_DIR = '/var/lib/convoy';
export const DEFAULT_MANAGER_DATA_DIR = '/var/lib/convoy/manager';
/** Environment variable an agent reads its join token from. */
export const TOKEN_ENV = 'CONVOY_JOIN_TOKEN';
