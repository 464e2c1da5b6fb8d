// The hollow fleet of a benchmark on a thread of its own: 1,000 hollow
// agents (their sessions, heartbeats, assignment streams, controllers and
// status reports) keep an event loop busy, and on the benchmark's own loop
// they delayed its watch of etcd, so the clock read when the last commit
// was seen ran late by however long the fleet held the loop. On a worker
// thread the fleet still takes its share of the machine's CPU, but the
// benchmark's clock reads commits as they arrive.
//
// Main side: startFleetWorker(opts) → { stop() }. Worker side: this same
// file, run by the Worker (isMainThread false), starts the fleet from
// workerData and stops it when told.
import * as path from 'node:path';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { startHollowFleet, type HollowFleet } from '../agent/hollow/fleet';
import { nullLogger } from '../common/logger';

export interface FleetWorkerOptions {
  count: number;
  managers: string[];
  joinToken: string;
  stateRoot: string;
  /** Agents open Network streams (HollowFleetOptions.network). */
  network?: boolean;
}

type FromWorker = { type: 'ready' } | { type: 'error'; message: string } | { type: 'stopped' };

/** Starts the fleet on a worker thread; resolves once every agent has joined. */
export function startFleetWorker(opts: FleetWorkerOptions): Promise<{ stop(): Promise<void> }> {
  const w = new Worker(path.join(__dirname, 'fleet-worker.js'), { workerData: opts });
  const stop = () =>
    new Promise<void>((resolve) => {
      const done = () => resolve();
      w.once('exit', done);
      w.on('message', (m: FromWorker) => {
        if (m.type === 'stopped') void w.terminate();
      });
      w.postMessage('stop');
    });
  return new Promise((resolve, reject) => {
    w.once('error', reject);
    w.once('exit', (code) => reject(new Error(`fleet worker exited (${code}) before its agents joined`)));
    w.on('message', (m: FromWorker) => {
      if (m.type === 'ready') resolve({ stop });
      else if (m.type === 'error') {
        void w.terminate();
        reject(new Error(`hollow fleet: ${m.message}`));
      }
    });
  });
}

if (!isMainThread && parentPort) {
  const port = parentPort;
  const opts = workerData as FleetWorkerOptions;
  let fleet: HollowFleet | undefined;
  startHollowFleet({ ...opts, logger: nullLogger }).then(
    (f) => {
      fleet = f;
      port.postMessage({ type: 'ready' } satisfies FromWorker);
    },
    (e: unknown) => port.postMessage({ type: 'error', message: e instanceof Error ? e.message : String(e) } satisfies FromWorker),
  );
  port.on('message', (m) => {
    if (m !== 'stop') return;
    void (fleet?.stop() ?? Promise.resolve())
      .catch(() => undefined)
      .then(() => port.postMessage({ type: 'stopped' } satisfies FromWorker));
  });
}
