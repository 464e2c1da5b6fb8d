// Public surface of the manager.
export { startManager, DEFAULT_HEARTBEAT_MS, DEFAULT_ELECTION_TTL_S, type ManagerOptions, type ManagerHandle } from './manager';
export { startEtcd, etcdArgs, type EmbeddedEtcd } from './embedded/etcd';
/** Lives in common/net.ts; re-exported for the importers of this surface. */
export { freePort } from '../common/net';
export { reconcile } from './reconcile';
export { validateServiceSpec } from './spec/validate';
export { StateCache } from './state/cache';
export type { Store, Write, BatchResult, Kind } from './store/store';
export { EtcdStore } from './store/etcd-store';
export { MemoryStore } from './store/memory-store';
export { watchKind } from './store/watch';
