// The public surface of proto/: the object model (the generated __Output
// types, under plain names), the gRPC service definitions, and the task-state
// order. Managers, agents and the CLI import from here, never from generated/.
import * as path from 'node:path';
import * as fs from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import type * as protoLoader from '@grpc/proto-loader';
import { LOADER_OPTIONS as DEFINITION_OPTIONS, servicesFromCodecs, servicesFromJSON, type Codecs, type ConversionOptions } from './definition';
import type { ProtoGrpcType as ControlGrpc } from './generated/control';
import type { ProtoGrpcType as DispatcherGrpc } from './generated/dispatcher';
import type { ProtoGrpcType as CaGrpc } from './generated/ca';
import type { TaskSpec__Output } from './generated/convoy/TaskSpec';

export type { Meta__Output as Meta } from './generated/convoy/Meta';
export type { Resources__Output as Resources } from './generated/convoy/Resources';
export type { ResourceRequirements__Output as ResourceRequirements } from './generated/convoy/ResourceRequirements';
export type { RestartPolicy__Output as RestartPolicy } from './generated/convoy/RestartPolicy';
export type { UpdateConfig__Output as UpdateConfig } from './generated/convoy/UpdateConfig';
export type { PortConfig__Output as PortConfig } from './generated/convoy/PortConfig';
export type { Mount__Output as Mount } from './generated/convoy/Mount';
export type { HealthConfig__Output as HealthConfig } from './generated/convoy/HealthConfig';
export type { ContainerSpec__Output as ContainerSpec } from './generated/convoy/ContainerSpec';
export type { Ulimit__Output as Ulimit } from './generated/convoy/Ulimit';
export type { DnsConfig__Output as DnsConfig } from './generated/convoy/DnsConfig';
export type { DeviceMapping__Output as DeviceMapping } from './generated/convoy/DeviceMapping';
export type { Placement__Output as Placement } from './generated/convoy/Placement';
export type { Platform__Output as Platform } from './generated/convoy/Platform';
export type { EndpointSpec__Output as EndpointSpec } from './generated/convoy/EndpointSpec';
export type { AutoscalePolicy__Output as AutoscalePolicy } from './generated/convoy/AutoscalePolicy';
export type { NetworkAliases__Output as NetworkAliases } from './generated/convoy/NetworkAliases';
export type { JobSpec__Output as JobSpec } from './generated/convoy/JobSpec';
export type { JobStatus__Output as JobStatus } from './generated/convoy/JobStatus';
export type { ServiceSpec__Output as ServiceSpec } from './generated/convoy/ServiceSpec';
export type { UpdateStatus__Output as UpdateStatus } from './generated/convoy/UpdateStatus';
export type { VirtualIP__Output as VirtualIP } from './generated/convoy/VirtualIP';
export type { Endpoint__Output as Endpoint } from './generated/convoy/Endpoint';
export type { Service__Output as Service } from './generated/convoy/Service';
export type { NodeSpec__Output as NodeSpec } from './generated/convoy/NodeSpec';
export type { NodeDescription__Output as NodeDescription } from './generated/convoy/NodeDescription';
export type { NodeStatus__Output as NodeStatus } from './generated/convoy/NodeStatus';
export type { NodeUsage__Output as NodeUsage } from './generated/convoy/NodeUsage';
export type { Node__Output as Node } from './generated/convoy/Node';
export type { TaskStatus__Output as TaskStatus } from './generated/convoy/TaskStatus';
export type { TaskSpec__Output as TaskSpec } from './generated/convoy/TaskSpec';
export type { NetworkAttachment__Output as NetworkAttachment } from './generated/convoy/NetworkAttachment';
export type { Task__Output as Task } from './generated/convoy/Task';
export type { NetworkSpec__Output as NetworkSpec } from './generated/convoy/NetworkSpec';
export type { Network__Output as Network } from './generated/convoy/Network';
export type { JoinTokens__Output as JoinTokens } from './generated/convoy/JoinTokens';
export type { Cluster__Output as Cluster } from './generated/convoy/Cluster';
export type { User__Output as User } from './generated/convoy/User';
export type { FileReference__Output as FileReference } from './generated/convoy/FileReference';
export type { Secret__Output as Secret } from './generated/convoy/Secret';
export type { SecretSpec__Output as SecretSpec } from './generated/convoy/SecretSpec';
export type { Config__Output as Config } from './generated/convoy/Config';
export type { ConfigSpec__Output as ConfigSpec } from './generated/convoy/ConfigSpec';
export type { FilePayload__Output as FilePayload } from './generated/convoy/FilePayload';
export type { ServiceEndpoints__Output as ServiceEndpoints } from './generated/convoy/ServiceEndpoints';
export type { TaskEndpoint__Output as TaskEndpoint } from './generated/convoy/TaskEndpoint';
export type { NodeEndpoint__Output as NodeEndpoint } from './generated/convoy/NodeEndpoint';
export type { NetworkState__Output as NetworkState } from './generated/convoy/NetworkState';
export type { ControlClient } from './generated/convoy/Control';
export type { DispatcherClient } from './generated/convoy/Dispatcher';
export type { ControlHandlers } from './generated/convoy/Control';
export type { DispatcherHandlers } from './generated/convoy/Dispatcher';
export type { NodeCAClient, NodeCAHandlers } from './generated/convoy/NodeCA';
export type { CertRenewalClient, CertRenewalHandlers } from './generated/convoy/CertRenewal';
export type { JoinResponse__Output as JoinResponse } from './generated/convoy/JoinResponse';

export { TaskState, type TaskState__Output as TaskStateName } from './generated/convoy/TaskState';
export { NodeState, type NodeState__Output as NodeStateName } from './generated/convoy/NodeState';
export { NodeAvailability, type NodeAvailability__Output as NodeAvailabilityName } from './generated/convoy/NodeAvailability';
export { NodeRole } from './generated/convoy/NodeRole';
export { ServiceMode } from './generated/convoy/ServiceMode';
export { RestartCondition } from './generated/convoy/RestartCondition';
export { FailureAction } from './generated/convoy/FailureAction';
export { UpdateOrder } from './generated/convoy/UpdateOrder';
export { UpdateState } from './generated/convoy/UpdateState';
export { PublishMode } from './generated/convoy/PublishMode';
export { EndpointMode } from './generated/convoy/EndpointMode';
export { MountType } from './generated/convoy/MountType';
export { AssignmentAction } from './generated/convoy/AssignmentAction';
export { AssignmentsType } from './generated/convoy/AssignmentsType';

// The task-state order lives in its own module (a contract of its own, tested against types.proto).
export { TASK_STATES, TASK_STATE_ORDER, stateRank, isForward, isTerminal } from './task-state';

/** Options shared by the loader and the type generator (see package.json "proto"). */
export const LOADER_OPTIONS: protoLoader.Options = DEFINITION_OPTIONS;

/** Directory holding the .proto files, whether running from source or dist/. */
export function protoDir(): string {
  // Up from here: dist/proto/ and proto/ hold the files or sit below the root
  // that does; the CLI bundle (dist/cli/convoy.bundle.js) is elsewhere again.
  for (let dir = __dirname, up = 0; up < 4; dir = path.dirname(dir), up++) {
    for (const d of [dir, path.join(dir, 'proto')]) if (fs.existsSync(path.join(d, 'control.proto'))) return d;
  }
  throw new Error(`cannot find the .proto files near ${__dirname}`);
}

/** The build's codecs of each file (proto/generated/<name>-codec.ts), each required only when its file is first loaded. */
const CODECS: Record<ProtoFile, () => Codecs> = {
  'control.proto': () => require('./generated/control-codec') as Codecs,
  'dispatcher.proto': () => require('./generated/dispatcher-codec') as Codecs,
  'agent.proto': () => require('./generated/agent-codec') as Codecs,
  'ca.proto': () => require('./generated/ca-codec') as Codecs,
};

type ProtoFile = 'control.proto' | 'dispatcher.proto' | 'agent.proto' | 'ca.proto';

/**
 * A TaskSpec with every field the message has that `spec` leaves out set
 * to its default, exactly as a decoded gRPC message carries it (the same
 * conversion options): the inverse of leaving out default-valued fields.
 * Fields that are not TaskSpec's are dropped.
 */
export function taskSpecWithDefaults(spec: object): TaskSpec__Output {
  const T = CODECS['dispatcher.proto']().types['convoy.TaskSpec'];
  return T.toObject(T.fromObject(spec), DEFINITION_OPTIONS) as TaskSpec__Output;
}

/**
 * The package definition of one .proto file. From the codecs `npm run proto`
 * writes (proto/gen-descriptors.js): protobufjs's generated functions, so a
 * start builds no reflection tree and generates no code. `from: 'json'`:
 * from the JSON descriptor through protobufjs's reflection; `from: 'text'`:
 * @grpc/proto-loader on the .proto text. All three give the same definition
 * (proto/descriptors.test.ts).
 */
export function loadDefinition(file: ProtoFile, o: { from?: 'codecs' | 'json' | 'text' } = {}): protoLoader.PackageDefinition {
  const from = o.from ?? 'codecs';
  if (from === 'codecs') return servicesFromCodecs(CODECS[file](), LOADER_OPTIONS as ConversionOptions) as unknown as protoLoader.PackageDefinition;
  const dir = protoDir();
  const json = path.join(dir, 'generated', file.replace(/\.proto$/, '.json'));
  if (from === 'json') return servicesFromJSON(JSON.parse(fs.readFileSync(json, 'utf8')), LOADER_OPTIONS as ConversionOptions) as unknown as protoLoader.PackageDefinition;
  // Lazily: the loader (and protobufjs's parser) is only needed to check the others.
  const loader = require('@grpc/proto-loader') as typeof protoLoader;
  return loader.loadSync(path.join(dir, file), { ...LOADER_OPTIONS, includeDirs: [dir] });
}

let control: ControlGrpc | undefined;
let dispatcher: DispatcherGrpc | undefined;
let ca: CaGrpc | undefined;

/**
 * The loaded gRPC packages, each loaded once per process and only when first
 * used (the CLI never loads the Dispatcher's).
 */
export function grpcPackages(): { readonly control: ControlGrpc; readonly dispatcher: DispatcherGrpc; readonly ca: CaGrpc } {
  return {
    get control() {
      return (control ??= grpc.loadPackageDefinition(loadDefinition('control.proto')) as unknown as ControlGrpc);
    },
    get dispatcher() {
      return (dispatcher ??= grpc.loadPackageDefinition(loadDefinition('dispatcher.proto')) as unknown as DispatcherGrpc);
    },
    get ca() {
      return (ca ??= grpc.loadPackageDefinition(loadDefinition('ca.proto')) as unknown as CaGrpc);
    },
  };
}
