// The one way to reach a manager: a typed, promisified Control API, a
// Dispatcher client, and the one place a client's channel credentials are
// chosen. The CLI, the lab, e2e and the benchmarks all connect through here,
// so the security issue (mutual TLS on every link) changes `ClientSecurity`
// and `channelCredentials` and nothing else on the client side.
//
//   const c = connectControl('10.41.0.11:7420');
//   const { tasks } = await c.listTasks({ service: 'web' });
//   c.close();
import * as grpc from '@grpc/grpc-js';
import { grpcPackages, loadDefinition, type CertRenewalClient, type ControlClient, type DispatcherClient, type NodeCAClient } from './mod';
import {
  CALL_DEADLINE_MS,
  checkManager,
  controlApiOf,
  isLoopbackTarget,
  MANAGER_SERVER_NAME,
  type ClientOptions,
  type ClientSecurity,
  type ControlConnection,
  type ControlInvoker,
  type ControlMethod,
  type ControlRequest,
  type ControlResponse,
} from './client-common';
import type { ProtoGrpcType as AgentLocalGrpc } from './generated/agent';
import type { AgentLocalClient } from './generated/convoy/AgentLocal';

export * from './client-common';

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
