// The public surface of proto/: the object model (the generated __Output
// types, under plain names), the gRPC service definitions, and the task-state
// order. Managers, agents and the CLI import from here, never from generated/.
import * as path from 'node:path';
import * as fs from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import type { ProtoGrpcType as ControlGrpc } from './generated/control';
import type { ProtoGrpcType as DispatcherGrpc } from './generated/dispatcher';

export type { Meta__Output as Meta } from './generated/convoy/Meta';
export type { Resources__Output as Resources } from './generated/convoy/Resources';
export type { ResourceRequirements__Output as ResourceRequirements } from './generated/convoy/ResourceRequirements';
export type { RestartPolicy__Output as RestartPolicy } from './generated/convoy/RestartPolicy';
export type { UpdateConfig__Output as UpdateConfig } from './generated/convoy/UpdateConfig';
export type { PortConfig__Output as PortConfig } from './generated/convoy/PortConfig';
export type { Mount__Output as Mount } from './generated/convoy/Mount';
export type { HealthConfig__Output as HealthConfig } from './generated/convoy/HealthConfig';
export type { ContainerSpec__Output as ContainerSpec } from './generated/convoy/ContainerSpec';
export type { Placement__Output as Placement } from './generated/convoy/Placement';
export type { Platform__Output as Platform } from './generated/convoy/Platform';
export type { EndpointSpec__Output as EndpointSpec } from './generated/convoy/EndpointSpec';
export type { AutoscalePolicy__Output as AutoscalePolicy } from './generated/convoy/AutoscalePolicy';
export type { ServiceSpec__Output as ServiceSpec } from './generated/convoy/ServiceSpec';
export type { UpdateStatus__Output as UpdateStatus } from './generated/convoy/UpdateStatus';
export type { VirtualIP__Output as VirtualIP } from './generated/convoy/VirtualIP';
export type { Endpoint__Output as Endpoint } from './generated/convoy/Endpoint';
export type { Service__Output as Service } from './generated/convoy/Service';
export type { NodeSpec__Output as NodeSpec } from './generated/convoy/NodeSpec';
export type { NodeDescription__Output as NodeDescription } from './generated/convoy/NodeDescription';
export type { NodeStatus__Output as NodeStatus } from './generated/convoy/NodeStatus';
export type { Node__Output as Node } from './generated/convoy/Node';
export type { TaskStatus__Output as TaskStatus } from './generated/convoy/TaskStatus';
export type { TaskSpec__Output as TaskSpec } from './generated/convoy/TaskSpec';
export type { NetworkAttachment__Output as NetworkAttachment } from './generated/convoy/NetworkAttachment';
export type { Task__Output as Task } from './generated/convoy/Task';
export type { NetworkSpec__Output as NetworkSpec } from './generated/convoy/NetworkSpec';
export type { Network__Output as Network } from './generated/convoy/Network';
export type { JoinTokens__Output as JoinTokens } from './generated/convoy/JoinTokens';
export type { Cluster__Output as Cluster } from './generated/convoy/Cluster';
export type { ServiceEndpoints__Output as ServiceEndpoints } from './generated/convoy/ServiceEndpoints';
export type { TaskEndpoint__Output as TaskEndpoint } from './generated/convoy/TaskEndpoint';
export type { NodeEndpoint__Output as NodeEndpoint } from './generated/convoy/NodeEndpoint';
export type { NetworkState__Output as NetworkState } from './generated/convoy/NetworkState';
export type { ControlClient } from './generated/convoy/Control';
export type { DispatcherClient } from './generated/convoy/Dispatcher';
export type { ControlHandlers } from './generated/convoy/Control';
export type { DispatcherHandlers } from './generated/convoy/Dispatcher';

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
export const LOADER_OPTIONS: protoLoader.Options = {
  keepCase: false,
  longs: Number,
  enums: String,
  defaults: true,
  arrays: true,
  objects: true,
  oneofs: true,
};

/** Directory holding the .proto files, whether running from source or dist/. */
export function protoDir(): string {
  for (const dir of [__dirname, path.join(__dirname, '..', '..', 'proto')]) {
    if (fs.existsSync(path.join(dir, 'control.proto'))) return dir;
  }
  throw new Error(`cannot find the .proto files near ${__dirname}`);
}

let cached: { control: ControlGrpc; dispatcher: DispatcherGrpc } | undefined;

/** The loaded gRPC packages (loaded once per process). */
export function grpcPackages(): { control: ControlGrpc; dispatcher: DispatcherGrpc } {
  if (!cached) {
    const dir = protoDir();
    const load = (file: string) =>
      grpc.loadPackageDefinition(protoLoader.loadSync(path.join(dir, file), { ...LOADER_OPTIONS, includeDirs: [dir] }));
    cached = {
      control: load('control.proto') as unknown as ControlGrpc,
      dispatcher: load('dispatcher.proto') as unknown as DispatcherGrpc,
    };
  }
  return cached;
}
