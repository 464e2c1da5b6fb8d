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
/** Scheduled and one-off jobs (docs/jobs.md): finished runs whose tasks are kept, as Kubernetes' successfulJobsHistoryLimit. */
export const DEFAULT_JOB_HISTORY = 3;
/** The time zone a schedule is read in unless --schedule-timezone says otherwise. */
export const DEFAULT_JOB_TIMEZONE = 'UTC';
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
/**
 * The Control API version (`convoy version`, Control GetVersion): the minor
 * part grows with each call or field added (1.1: GetVersion itself; 1.2:
 * the key-encryption key fields of ClusterInfo and VersionInfo), the major
 * part on a change an older client cannot follow.
 */
export const CONTROL_API_VERSION = '1.2';
/** The manager's /metrics port. */
export const MANAGER_METRICS_PORT = 7421;
/** Every agent's /metrics port. */
export const AGENT_METRICS_PORT = 7422;
/** Where the CLI looks for a manager when CONVOY_HOST is not set. */
export const DEFAULT_HOST = `127.0.0.1:${MANAGER_PORT}`;
export const DEFAULT_MANAGER_LISTEN = `0.0.0.0:${MANAGER_PORT}`;
/**
 * /metrics listens on loopback unless told otherwise: plaintext metrics name
 * services, nodes and addresses, so they are served on another address only
 * when the operator gives it (--metrics-listen) or with mutual TLS
 * (--metrics-tls). docs/security.md, "Metrics".
 */
export const DEFAULT_MANAGER_METRICS = `127.0.0.1:${MANAGER_METRICS_PORT}`;
export const DEFAULT_AGENT_METRICS = `127.0.0.1:${AGENT_METRICS_PORT}`;

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

// ---- ports the cluster itself uses -------------------------------------------------------
/** etcd's client and peer ports (the embedded etcd and the lab use them). */
export const ETCD_CLIENT_PORT = 2379;
export const ETCD_PEER_PORT = 2380;
/** NATS: clients, cluster routes, monitoring. */
export const NATS_CLIENT_PORT = 4222;
export const NATS_CLUSTER_PORT = 6222;
export const NATS_MONITOR_PORT = 8222;
/** The overlay's VXLAN port (IANA). */
export const VXLAN_PORT = 4789;
/** Every host's DNS for its tasks. */
export const DNS_PORT = 53;
/**
 * Ports a service may never publish (ingress or host mode), whatever the
 * protocol: publishing one would put a task in front of the cluster's own
 * traffic on every node (ingress) or on its node (host). Ports a node
 * listens on are refused as well, from its description (listening_tcp/udp).
 */
export const CLUSTER_PORTS: ReadonlyArray<{ port: number; what: string }> = Object.freeze([
  { port: MANAGER_PORT, what: "the manager's gRPC port" },
  { port: MANAGER_METRICS_PORT, what: "the manager's metrics port" },
  { port: AGENT_METRICS_PORT, what: "the agent's metrics port" },
  { port: ETCD_CLIENT_PORT, what: "etcd's client port" },
  { port: ETCD_PEER_PORT, what: "etcd's peer port" },
  { port: NATS_CLIENT_PORT, what: "NATS's client port" },
  { port: NATS_CLUSTER_PORT, what: "NATS's cluster port" },
  { port: NATS_MONITOR_PORT, what: "NATS's monitoring port" },
  { port: VXLAN_PORT, what: 'the VXLAN overlay port' },
  { port: DNS_PORT, what: "the tasks' DNS port" },
]);
// ---- identity (docs/security.md) ---------------------------------------------------------
/** Node and user certificates live 90 days (Swarm's default) unless `convoy cluster update --cert-expiry`. */
export const DEFAULT_CERT_EXPIRY_MS = 90 * 24 * 3600_000;
/** Shortest certificate lifetime `--cert-expiry` takes (renewal runs at 50-80% of it). */
export const MIN_CERT_EXPIRY_MS = 60_000;
/** Longest certificate lifetime the cluster takes (10 years). */
export const MAX_CERT_EXPIRY_MS = 10 * 365 * 24 * 3600_000;
/** The manager's join listener: TLS, no client certificate, serves only the CA's join calls. */
export const JOIN_PORT = 7423;
/** Environment variable naming the CLI's client bundle directory (ca.pem, cert.pem, key.pem), as DOCKER_CERT_PATH. */
export const TLS_DIR_ENV = 'CONVOY_TLS_DIR';
