// What every client of a manager shares, whichever transport carries its
// calls: how it authenticates (ClientSecurity) and checks the manager's
// certificate, the Control API's method table and types, and the paging of
// list calls. No value import of @grpc/grpc-js here: the CLI's client
// (proto/control-h2.ts) is built on this file alone; proto/client.ts
// (grpc-js, for everything else) re-exports it.
import * as tls from 'node:tls';
import type * as grpc from '@grpc/grpc-js';
import type { ControlClient } from './mod';
/**
 * How a client authenticates the manager and itself (docs/security.md):
 *
 * - `mtls`: the default and the only mode for a Control or Dispatcher link.
 *   The client presents its certificate (`cert`, `key`) and verifies the
 *   manager's chain against the cluster CA (`ca`), its address against the
 *   certificate's SANs, and that the certificate names a manager (OU=manager:
 *   a worker's certificate cannot pose as a manager).
 * - `join`: the join listener, before the node has a certificate. With `ca`
 *   the manager's chain is verified against it (send the token only then);
 *   without, nothing is verified: only for GetRootCA, whose answer the caller
 *   checks against the digest in its join token (proto/join.ts).
 * - `local`: a unix socket (the agent's exec socket); refused for any other target.
 * - `plaintext-test`: unit-test harnesses on loopback, never a program.
 */
export type ClientSecurity =
  | { mode: 'mtls'; ca: string; cert: string; key: string }
  | { mode: 'join'; ca?: string }
  | { mode: 'local' }
  | { mode: 'plaintext-test' };

/** Unit-test harnesses only (fake managers on loopback); programs always use mtls. */
export const PLAINTEXT_FOR_TESTS: ClientSecurity = Object.freeze({ mode: 'plaintext-test' });

/** mtls security from a bundle (common/identity.ts TlsBundle). */
export function mtls(b: { ca: string; cert: string; key: string }): ClientSecurity {
  return { mode: 'mtls', ca: b.ca, cert: b.cert, key: b.key };
}

/** The OU of a certificate's subject (Node prints one KEY=value per line). */
function subjectOU(cert: { subject?: Record<string, string | string[]> }): string | undefined {
  const ou = cert.subject?.OU;
  return Array.isArray(ou) ? ou[0] : ou;
}

/** Hostname/IP check as TLS does it, then: the peer must be a manager of the cluster. */
export function checkManager(host: string, cert: tls.PeerCertificate): Error | undefined {
  const e = tls.checkServerIdentity(host, cert);
  if (e) return e;
  if (subjectOU(cert as unknown as { subject: Record<string, string> }) !== 'manager') return new Error(`the server's certificate does not name a manager (OU=${subjectOU(cert as unknown as { subject: Record<string, string> }) ?? ''})`);
  return undefined;
}

/**
 * Deadline of one Control call. Generous: a write is a few etcd round trips,
 * but a manager that says nothing for this long is not going to.
 */
export const CALL_DEADLINE_MS = 15_000;

export interface ClientOptions {
  /** How to authenticate (required: there is no plaintext default). */
  security: ClientSecurity;
  /** Deadline of each unary Control call (ms). Default CALL_DEADLINE_MS. */
  deadlineMs?: number;
  /** gRPC channel options (keepalive and the like). */
  channelOptions?: grpc.ChannelOptions;
  /** Metadata sent with every Control call (e.g. a manager marking a call it forwards). */
  metadata?: Readonly<Record<string, string>>;
}

/**
 * The TLS server name every manager certificate carries (a DNS SAN), and the
 * one clients ask for and verify, as swarmkit's "swarm-manager": what a
 * client checks is "a manager of this cluster" (the chain to the cluster CA,
 * OU=manager), whichever address it dialled. (Also: TLS forbids an IP
 * address as SNI server name; Node warns when one is set.)
 */
export const MANAGER_SERVER_NAME = 'convoy-manager';


/** 127.0.0.0/8, ::1 or localhost (host:port, [v6]:port, or a scheme-prefixed form). */
export function isLoopbackTarget(target: string): boolean {
  const t = target.replace(/^(dns|ipv4|ipv6):(\/\/\/?)?/, '');
  const host = t.startsWith('[') ? t.slice(1, t.indexOf(']')) : t.slice(0, t.lastIndexOf(':') >= 0 ? t.lastIndexOf(':') : t.length);
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

// ---- Control -----------------------------------------------------------------

/** The unary RPCs of the Control service, by their camelCase client names. */
export type ControlMethod =
  | 'createService'
  | 'getService'
  | 'listServices'
  | 'updateService'
  | 'scaleService'
  | 'rollbackService'
  | 'removeService'
  | 'listTasks'
  | 'getTask'
  | 'listNodes'
  | 'getNode'
  | 'updateNode'
  | 'removeNode'
  | 'createNetwork'
  | 'getNetwork'
  | 'listNetworks'
  | 'removeNetwork'
  | 'getClusterInfo'
  | 'getVersion'
  | 'updateCluster'
  | 'getJoinTokens'
  | 'rotateJoinToken'
  | 'createUser'
  | 'listUsers'
  | 'removeUser'
  | 'startExec'
  | 'createSecret'
  | 'getSecret'
  | 'listSecrets'
  | 'removeSecret'
  | 'rotateSecret'
  | 'createConfig'
  | 'getConfig'
  | 'listConfigs'
  | 'removeConfig'
  | 'rotateConfig'
  | 'registryLogin'
  | 'updateCluster';

export const CONTROL_METHODS: readonly ControlMethod[] = [
  'createService',
  'getService',
  'listServices',
  'updateService',
  'scaleService',
  'rollbackService',
  'removeService',
  'listTasks',
  'getTask',
  'listNodes',
  'getNode',
  'updateNode',
  'removeNode',
  'createNetwork',
  'getNetwork',
  'listNetworks',
  'removeNetwork',
  'getClusterInfo',
  'getVersion',
  'updateCluster',
  'getJoinTokens',
  'rotateJoinToken',
  'createUser',
  'listUsers',
  'removeUser',
  'startExec',
  'createSecret',
  'getSecret',
  'listSecrets',
  'removeSecret',
  'rotateSecret',
  'createConfig',
  'getConfig',
  'listConfigs',
  'removeConfig',
  'rotateConfig',
  'registryLogin',
  'updateCluster',
];

// The last overload of each generated method is (argument, callback): infer
// the request and response types from it, so nothing here names generated/.
/** Request type of a Control method (what a caller sends). */
export type ControlRequest<M extends ControlMethod> = ControlClient[M] extends (arg: infer A, cb: grpc.requestCallback<infer _R>) => grpc.ClientUnaryCall ? A : never;
/** Response type of a Control method (the decoded __Output message). */
export type ControlResponse<M extends ControlMethod> = ControlClient[M] extends (arg: infer _A, cb: grpc.requestCallback<infer R>) => grpc.ClientUnaryCall ? R : never;

/** The Control API as promises. */
export type ControlApi = { [M in ControlMethod]: (req: ControlRequest<M>) => Promise<ControlResponse<M>> };

/** Performs one Control call, whichever: what `controlApiOf` builds a ControlApi from. */
export type ControlInvoker = <M extends ControlMethod>(method: M, req: ControlRequest<M>) => Promise<ControlResponse<M>>;

/** The paged list calls (control.proto) and the field each one's items are in. */
const PAGED: Partial<Record<ControlMethod, string>> = { listServices: 'services', listTasks: 'tasks', listNodes: 'nodes', listNetworks: 'networks' };
/** Pages followed at most for one call (10,000 items a page at most: far past any cluster). */
const MAX_PAGES = 10_000;

/** A list call that gives no page_token gets every page, concatenated (the first page's other fields kept). */
async function allPages(invoke: ControlInvoker, m: ControlMethod, field: string, req: Record<string, unknown>): Promise<unknown> {
  const call = invoke as (m: ControlMethod, req: Record<string, unknown>) => Promise<Record<string, unknown>>;
  const first = await call(m, req);
  const items = [...((first[field] as unknown[] | undefined) ?? [])];
  let token = first.nextPageToken as string | undefined;
  for (let n = 1; token && n < MAX_PAGES; n++) {
    const next = await call(m, { ...req, pageToken: token });
    items.push(...((next[field] as unknown[] | undefined) ?? []));
    token = next.nextPageToken as string | undefined;
  }
  return { ...first, [field]: items, nextPageToken: '' };
}

/**
 * A ControlApi whose every method goes through `invoke` (a failover wrapper,
 * a test double, the real client). List calls without a page_token follow
 * every page, so callers see whole lists.
 */
export function controlApiOf(invoke: ControlInvoker): ControlApi {
  const api: Partial<Record<ControlMethod, (req: never) => Promise<unknown>>> = {};
  for (const m of CONTROL_METHODS) {
    const field = PAGED[m];
    api[m] = (req: never) => {
      const r = (req ?? {}) as Record<string, unknown>;
      return field && !r.pageToken ? allPages(invoke, m, field, r) : invoke(m, req);
    };
  }
  // Every key was just filled with the matching method: the mapped type holds.
  return api as ControlApi;
}

/** A Control API connection to one manager. */
export interface ControlConnection extends ControlApi {
  /** host:port it talks to. */
  readonly addr: string;
  /** Any method by name, typed by it (what a wrapper such as a failover over several managers calls). */
  readonly invoke: ControlInvoker;
  close(): void;
}

/** A gRPC failure of a Control call, remembering which manager it came from. */
export type ControlError = grpc.ServiceError & { host: string };
