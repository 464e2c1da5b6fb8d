// The real dispatcher in-process for tests: on a MemoryStore with a fake
// clock (so a session's lease lapses when the test says), fed through a real
// StateCache, served on a loopback gRPC port.
import { SERVER_OPTIONS } from '../../../proto/grpc-limits';
import * as grpc from '@grpc/grpc-js';
import type { Task } from '../../../proto/mod';
import { nullLogger } from '../../../common/logger';
import type { Identity } from '../../../common/identity';
import { nullObserver } from '../../hooks';
import { StateCache } from '../../state/cache';
import { MemoryStore } from '../../store/memory-store';
import { createDispatcher, dispatcherService, type Dispatcher } from '../dispatcher';
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
  let seq = 0;
  const identify = (call: unknown): Identity | undefined => {
    const r = (call as { request?: { sessionId?: string; joinToken?: string; nodeId?: string } }).request ?? {};
    if (r.sessionId !== undefined && r.joinToken === undefined) {
      const s = dispatcher.sessions.get(r.sessionId);
      return { id: s?.nodeId ?? 'nobody', role: 'worker', cluster: '' };
    }
    const role = r.joinToken === HARNESS_TOKEN ? 'worker' : r.joinToken === HARNESS_MANAGER_TOKEN ? 'manager' : undefined;
    return role ? { id: r.nodeId || `node-${++seq}`, role, cluster: '' } : undefined;
  };
  const dispatcher: Dispatcher = createDispatcher({
    store,
    cache,
    heartbeatMs,
    natsUrl: () => '',
    managerId: 'm1',
    log: nullLogger,
    observer: nullObserver,
    now: () => now,
    // Plaintext harness: no certificate, so the identity a certificate would carry is made up here
    // from what the test says (node id and token of a Session; the session's node for the other
    // calls). The real one comes from identityOf(call); tests of it run over mTLS (manager/ca/).
    identify: (call) => identify(call),
  });
  cache.onChange((c) => dispatcher.onChange(c));
  const server = new grpc.Server(SERVER_OPTIONS);
  server.addService(dispatcherService(), dispatcher.handlers);
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
