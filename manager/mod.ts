// Public surface of the manager.
export { startManager, DEFAULT_HEARTBEAT_MS, DEFAULT_ELECTION_TTL_S, type ManagerOptions, type ManagerHandle } from './manager';
export { startEtcd, freePort, type EmbeddedEtcd } from './embedded/etcd';
export { reconcile } from './reconcile';
export { validateServiceSpec } from './spec/validate';
export { StateCache } from './state/cache';
