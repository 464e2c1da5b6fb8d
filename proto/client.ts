// The one way to reach a manager: a typed, promisified Control API, a
// Dispatcher client, and the one place a client's channel credentials are
// chosen. The CLI, the lab, e2e and the benchmarks all connect through here,
// so the security issue (mutual TLS on every link) changes `ClientSecurity`
// and `channelCredentials` and nothing else on the client side.
//
//   const c = connectControl('10.41.0.11:7420');
//   const { tasks } = await c.listTasks({ service: 'web' });
//   c.close();
import * as tls from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import { grpcPackages, loadDefinition, type CertRenewalClient, type ControlClient, type DispatcherClient, type NodeCAClient } from './mod';
import type { ProtoGrpcType as AgentLocalGrpc } from './generated/agent';
import type { AgentLocalClient } from './generated/convoy/AgentLocal';

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
function checkManager(host: string, cert: tls.PeerCertificate): Error | undefined {
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

/** Channel options that go with `security` (the server name a TLS client asks for). */
export function securedChannelOptions(security: ClientSecurity, o: grpc.ChannelOptions = {}): grpc.ChannelOptions {
  return security.mode === 'mtls' || security.mode === 'join' ? { ...o, 'grpc.ssl_target_name_override': MANAGER_SERVER_NAME } : o;
}

/** The channel credentials a client presents: the only place they are chosen. */
export function channelCredentials(security: ClientSecurity, target = ''): grpc.ChannelCredentials {
  switch (security.mode) {
    case 'mtls':
      if (!security.ca || !security.cert || !security.key) throw new Error('mtls: ca, cert and key are all required');
      return grpc.credentials.createSsl(Buffer.from(security.ca), Buffer.from(security.key), Buffer.from(security.cert), { checkServerIdentity: checkManager });
    case 'join':
      return security.ca
        ? grpc.credentials.createSsl(Buffer.from(security.ca), null, null, { checkServerIdentity: checkManager })
        : grpc.credentials.createSsl(null, null, null, { rejectUnauthorized: false });
    case 'local':
      if (!target.startsWith('unix:')) throw new Error(`local credentials are for unix sockets, not ${target}`);
      return grpc.credentials.createInsecure();
    case 'plaintext-test':
      // Unit harnesses serve on loopback only; a network peer never gets plaintext.
      if (!isLoopbackTarget(target)) throw new Error(`plaintext is for test harnesses on loopback, not ${target}`);
      return grpc.credentials.createInsecure();
  }
}

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

/**
 * A Control client to `addr` with a deadline on every call. Failures reject
 * with the gRPC ServiceError (code, details), `host` set to `addr`.
 */
export function connectControl(addr: string, o: ClientOptions): ControlConnection {
  const { Control } = grpcPackages().control.convoy;
  const client: ControlClient = new Control(addr, channelCredentials(o.security, addr), securedChannelOptions(o.security, o.channelOptions));
  const deadlineMs = o.deadlineMs ?? CALL_DEADLINE_MS;
  const metadata = (): grpc.Metadata => {
    const md = new grpc.Metadata();
    for (const [k, v] of Object.entries(o.metadata ?? {})) md.set(k, v);
    return md;
  };
  const invoke: ControlInvoker = <M extends ControlMethod>(m: M, req: ControlRequest<M>) =>
    new Promise<ControlResponse<M>>((resolve, reject) => {
      // The generated method's overloads do not narrow through a generic key; the
      // (argument, metadata, options, callback) overload exists on every unary method.
      const fn = client[m] as unknown as (req: ControlRequest<M>, md: grpc.Metadata, opts: grpc.CallOptions, cb: grpc.requestCallback<ControlResponse<M>>) => grpc.ClientUnaryCall;
      fn.call(client, req ?? ({} as ControlRequest<M>), metadata(), { deadline: Date.now() + deadlineMs }, (err, res) => (err ? reject(Object.assign(err, { host: addr })) : resolve(res as ControlResponse<M>)));
    });
  return Object.assign(controlApiOf(invoke), { addr, invoke, close: () => client.close() });
}

// ---- Dispatcher -------------------------------------------------------------------

/** A Dispatcher client (the agent's side of the protocol: streams and unary calls) to `addr`. */
export function dispatcherClient(addr: string, o: Omit<ClientOptions, 'deadlineMs' | 'metadata'>): DispatcherClient {
  const { Dispatcher } = grpcPackages().dispatcher.convoy;
  return new Dispatcher(addr, channelCredentials(o.security, addr), securedChannelOptions(o.security, o.channelOptions));
}

// ---- the CA's services (proto/ca.proto) -------------------------------------------

/** A NodeCA client (the join listener): `join` security, with or without the pinned CA. */
export function nodeCaClient(addr: string, security: ClientSecurity): NodeCAClient {
  const { NodeCA } = grpcPackages().ca.convoy;
  return new NodeCA(addr, channelCredentials(security, addr), securedChannelOptions(security));
}

/** A CertRenewal client (the mutual-TLS listener). */
export function certRenewalClient(addr: string, security: ClientSecurity): CertRenewalClient {
  const { CertRenewal } = grpcPackages().ca.convoy;
  return new CertRenewal(addr, channelCredentials(security, addr), securedChannelOptions(security));
}

// ---- AgentLocal (the agent's unix socket: `convoy task exec`) ----------------

let agentLocal: AgentLocalGrpc | undefined;

/** The AgentLocal package of proto/agent.proto, loaded as grpcPackages loads the others (its `service` is what the agent serves). */
export function agentLocalPackage(): AgentLocalGrpc {
  if (!agentLocal) {
    const def = loadDefinition('agent.proto');
    // The generated type describes exactly what the loader builds from agent.proto.
    agentLocal = grpc.loadPackageDefinition(def) as unknown as AgentLocalGrpc;
  }
  return agentLocal;
}

/** An AgentLocal client on the agent socket at `socketPath`. */
export function agentLocalClient(socketPath: string, o: Pick<ClientOptions, 'channelOptions'> = {}): AgentLocalClient {
  const { AgentLocal } = agentLocalPackage().convoy;
  const target = `unix://${socketPath}`;
  return new AgentLocal(target, channelCredentials({ mode: 'local' }, target), o.channelOptions ?? {});
}
