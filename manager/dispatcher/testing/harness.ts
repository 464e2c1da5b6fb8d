// The real dispatcher in-process for tests: on a MemoryStore with a fake
// clock (so a session's lease lapses when the test says), fed through a real
// StateCache, served on a loopback gRPC port.
import * as grpc from '@grpc/grpc-js';
import { grpcPackages, type Task } from '../../../proto/mod';
import { nullLogger } from '../../../common/logger';
import { ApiError } from '../../api';
import { nullObserver } from '../../hooks';
import { StateCache } from '../../state/cache';
import { MemoryStore } from '../../store/memory-store';
import { createDispatcher, type Dispatcher } from '../dispatcher';
import { cluster as clusterFixture } from '../../orchestrator/testing/fixtures';

export const HARNESS_TOKEN = 'SWMTKN-1-test-worker';
export const HARNESS_MANAGER_TOKEN = 'SWMTKN-1-test-manager';

export interface DispatcherHarness {
  addr: string;
  store: MemoryStore;
  cache: StateCache;
  dispatcher: Dispatcher;
  heartbeatMs: number;
  /** Moves the fake clock (leases and sessions lapse against it). */
  advance(ms: number): void;
  /** Writes a task as the leader would, and waits until the cache has it. */
  put(task: Task): Promise<void>;
  stop(): Promise<void>;
}

export async function startDispatcherHarness(opts: { heartbeatMs?: number } = {}): Promise<DispatcherHarness> {
  let now = 1_000_000;
  const heartbeatMs = opts.heartbeatMs ?? 1000;
  const store = new MemoryStore({ now: () => now });
  // The cluster object as `cluster init` writes it (created: no version yet).
  const cluster = clusterFixture({ meta: null, workerTokenHash: '', managerTokenHash: '', clusterCidr: '10.200.0.0/16', vipCidr: '10.201.0.0/16' });
  await store.put('cluster', cluster, true);
  const cache = new StateCache(store, nullLogger);
  await cache.start();
  const dispatcher = createDispatcher({
    store,
    cache,
    heartbeatMs,
    natsUrl: () => '',
    managerId: 'm1',
    log: nullLogger,
    observer: nullObserver,
    now: () => now,
    async checkToken(token) {
      if (token === HARNESS_TOKEN) return 'WORKER';
      if (token === HARNESS_MANAGER_TOKEN) return 'MANAGER';
      throw new ApiError(grpc.status.PERMISSION_DENIED, 'invalid join token');
    },
  });
  cache.onChange((c) => dispatcher.onChange(c));
  const server = new grpc.Server();
  server.addService(grpcPackages().dispatcher.convoy.Dispatcher.service, dispatcher.handlers);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  return {
    addr: `127.0.0.1:${port}`,
    store,
    cache,
    dispatcher,
    heartbeatMs,
    advance(ms) {
      now += ms;
      store.expireLeases();
    },
    async put(task) {
      const cur = await store.get<Task>('tasks', task.id);
      const rev = await store.put('tasks', { ...task, meta: cur?.meta ?? null }, !cur);
      await cache.waitFor(rev);
    },
    async stop() {
      dispatcher.close();
      server.forceShutdown();
      await cache.close();
      await store.close();
    },
  };
}
