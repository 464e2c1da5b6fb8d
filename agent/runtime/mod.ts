// The public surface of agent/runtime/.
export { ContainerExecutor, taskToConfig, DEFAULT_STATE_DIR, type ContainerExecutorOptions } from './executor';
export { Runtime, RuntimeError, resizeExec, type ContainerConfig, type ContainerExit, type ContainerInfo, type ExecOptions, type MountSpec, type RuntimeOptions } from './runtime';
export { ImageStore, type ImageRecord, type StoreCounters } from './image/store';
export { ImageError, RegistryClient, type RegistryOptions } from './image/registry';
export { pushDirectory, pushOciLayout, pushImage, buildLayer, assembleImage, type ImageSpec, type PushResult } from './image/push';
export { detectCgroupDriver, CgroupV1Driver, CgroupV2Driver, type CgroupDriver, type CgroupLimits } from './cgroups/cgroups';
export { findHelper } from './native';
export { taskHostname, defaultHostname } from './hostname';
