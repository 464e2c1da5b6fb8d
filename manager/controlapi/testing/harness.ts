// The Control API in-process for tests: on a MemoryStore (optionally wrapped,
// to count or interfere with its calls), fed through a real StateCache,
// served on a loopback gRPC port, with a typed client.
import * as crypto from 'node:crypto';
import { SERVER_OPTIONS } from '../../../proto/grpc-limits';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { grpcPackages, type ControlClient } from '../../../proto/mod';
import { channelCredentials, PLAINTEXT_FOR_TESTS } from '../../../proto/client';
import { nullLogger } from '../../../common/logger';
import { nullObserver, type ManagerObserver } from '../../hooks';
import { StateCache } from '../../state/cache';
import { MemoryStore } from '../../store/memory-store';
import type { Store } from '../../store/store';
import { createControl, type ControlDeps } from '../mod';
import { cluster as clusterFixture } from '../../orchestrator/testing/fixtures';
import { KeyRing } from '../../crypto/kek';

export interface ControlHarness {
  store: MemoryStore;
  cache: StateCache;
  client: ControlClient;
  /** host:port the Control API listens on. */
  addr: string;
  events: Parameters<ManagerObserver['event']>[0][];
  stop(): Promise<void>;
}

/** A unary call of the typed client as a promise; Res: the fields the test reads. */
export function rpc<Res = unknown>(fn: (cb: (err: grpc.ServiceError | null, res?: unknown) => void) => void): Promise<Res> {
  return new Promise((resolve, reject) => fn((err, res) => (err ? reject(err) : resolve(res as Res))));
}

/**
 * `store`: share another harness's store (two managers of one cluster; the
 * harness that made it closes it); `managerId` then tells them apart.
 */
export async function startControlHarness(opts: { wrap?: (s: MemoryStore) => Store; store?: MemoryStore; managerId?: string; kek?: KeyRing; nodeUsage?: ControlDeps['nodeUsage'] } = {}): Promise<ControlHarness> {
  const own = !opts.store;
  const store = opts.store ?? new MemoryStore();
  // The cluster object as `cluster init` writes it (created: no version yet).
  const cluster = clusterFixture({ meta: null, workerTokenHash: 'w', managerTokenHash: 'm', clusterCidr: '10.200.0.0/16', vipCidr: '10.201.0.0/16' });
  if (own) await store.put('cluster', cluster, true);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'convoy-control-'));
  const cache = new StateCache(store, nullLogger);
  await cache.start();
  const events: ControlHarness['events'] = [];
  const handlers = createControl({
    store: opts.wrap ? opts.wrap(store) : store,
    cache,
    managerId: opts.managerId ?? 'm1',
    tokensFile: path.join(dir, 'join-tokens.json'),
    natsUrl: () => '',
    log: nullLogger,
    observer: { ...nullObserver, event: (e) => void events.push(e) },
    kek: opts.kek ?? new KeyRing([crypto.randomBytes(32)]),
    peerSecurity: PLAINTEXT_FOR_TESTS,
    nodeUsage: opts.nodeUsage,
  });
  const server = new grpc.Server(SERVER_OPTIONS);
  server.addService(grpcPackages().control.convoy.Control.service, handlers);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  const addr = `127.0.0.1:${port}`;
  const client = new (grpcPackages().control.convoy.Control)(addr, channelCredentials(PLAINTEXT_FOR_TESTS, addr));
  return {
    store,
    cache,
    client,
    addr,
    events,
    async stop() {
      client.close();
      server.forceShutdown();
      await cache.close();
      if (own) await store.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
