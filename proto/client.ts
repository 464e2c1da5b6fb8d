// The one way to reach a manager: a typed, promisified Control API, a
// Dispatcher client, and the one place a client's channel credentials are
// chosen. The CLI, the lab, e2e and the benchmarks all connect through here,
// so the security issue (mutual TLS on every link) changes `ClientSecurity`
// and `channelCredentials` and nothing else on the client side.
//
//   const c = connectControl('10.41.0.11:7420');
//   const { tasks } = await c.listTasks({ service: 'web' });
//   c.close();
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { grpcPackages, LOADER_OPTIONS, protoDir, type ControlClient, type DispatcherClient } from './mod';
import type { ProtoGrpcType as AgentLocalGrpc } from './generated/agent';
import type { AgentLocalClient } from './generated/convoy/AgentLocal';

/**
 * How a client authenticates the manager and itself. Plaintext only today;
 * the security issue adds `{ mode: 'mtls', ca, cert, key }` here.
 */
export type ClientSecurity = { mode: 'insecure' };

export const INSECURE: ClientSecurity = Object.freeze({ mode: 'insecure' });

/**
 * Deadline of one Control call. Generous: a write is a few etcd round trips,
 * but a manager that says nothing for this long is not going to.
 */
export const CALL_DEADLINE_MS = 15_000;

export interface ClientOptions {
  /** Default: INSECURE. */
  security?: ClientSecurity;
  /** Deadline of each unary Control call (ms). Default CALL_DEADLINE_MS. */
  deadlineMs?: number;
  /** gRPC channel options (keepalive and the like). */
  channelOptions?: grpc.ChannelOptions;
  /** Metadata sent with every Control call (e.g. a manager marking a call it forwards). */
  metadata?: Readonly<Record<string, string>>;
}

/** The channel credentials a client presents: the only place they are chosen. */
export function channelCredentials(security: ClientSecurity = INSECURE): grpc.ChannelCredentials {
  switch (security.mode) {
    case 'insecure':
      return grpc.credentials.createInsecure();
  }
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
  | 'getJoinTokens'
  | 'rotateJoinToken';

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
  'getJoinTokens',
  'rotateJoinToken',
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

/** A ControlApi whose every method goes through `invoke` (a failover wrapper, a test double, the real client). */
export function controlApiOf(invoke: ControlInvoker): ControlApi {
  const api: Partial<Record<ControlMethod, (req: never) => Promise<unknown>>> = {};
  for (const m of CONTROL_METHODS) api[m] = (req: never) => invoke(m, req);
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
export function connectControl(addr: string, o: ClientOptions = {}): ControlConnection {
  const { Control } = grpcPackages().control.convoy;
  const client: ControlClient = new Control(addr, channelCredentials(o.security), o.channelOptions ?? {});
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
export function dispatcherClient(addr: string, o: ClientOptions = {}): DispatcherClient {
  const { Dispatcher } = grpcPackages().dispatcher.convoy;
  return new Dispatcher(addr, channelCredentials(o.security), o.channelOptions ?? {});
}

// ---- AgentLocal (the agent's unix socket: `convoy task exec`) ----------------

let agentLocal: AgentLocalGrpc | undefined;

/** The AgentLocal package of proto/agent.proto, loaded as grpcPackages loads the others (its `service` is what the agent serves). */
export function agentLocalPackage(): AgentLocalGrpc {
  if (!agentLocal) {
    const dir = protoDir();
    const def = protoLoader.loadSync(path.join(dir, 'agent.proto'), { ...LOADER_OPTIONS, includeDirs: [dir] });
    // The generated type describes exactly what the loader builds from agent.proto.
    agentLocal = grpc.loadPackageDefinition(def) as unknown as AgentLocalGrpc;
  }
  return agentLocal;
}

/** An AgentLocal client on the agent socket at `socketPath`. */
export function agentLocalClient(socketPath: string, o: Pick<ClientOptions, 'security' | 'channelOptions'> = {}): AgentLocalClient {
  const { AgentLocal } = agentLocalPackage().convoy;
  return new AgentLocal(`unix://${socketPath}`, channelCredentials(o.security), o.channelOptions ?? {});
}
