// Many hollow agents in one process, for the scheduling benchmark and scale
// tests. Each agent has its own session (Session + Assignments streams,
// heartbeats, status batches), its own state dir and HollowExecutor; they
// each join once (their own certificate) and hold their own TLS connection
// per manager (the DispatcherClientPool shares a channel only between users
// of one certificate: the manager takes the node from the connection's
// certificate).
import * as path from 'node:path';
import { nullLogger, type Logger } from '../../common/logger';
import type { ClientSecurity } from '../../proto/client';
import type { EventSink } from '../../proto/events';
import { Agent, readHostFacts, type AgentHandle } from '../agent';
import { HollowExecutor, type HollowOptions } from './executor';

/** Agents joining at once: enough to start 1,000 in seconds, few enough not to stall the managers' etcd. */
export const FLEET_JOIN_CONCURRENCY = 32;

export interface HollowFleetOptions {
  count: number;
  managers: string[];
  joinToken: string;
  /** Each agent gets `<stateRoot>/<i>` as its state dir. */
  stateRoot: string;
  /** Hostnames are `<prefix>-<i>` (default "hollow"). */
  hostnamePrefix?: string;
  /** Underlay addresses; default 127.0.0.1 for all. */
  advertiseAddr?: (i: number) => string;
  labels?: (i: number) => Record<string, string>;
  hollow?: HollowOptions;
  events?: EventSink;
  logger?: Logger;
  concurrency?: number;
  /** host:port of a manager's join listener (AgentOptions.joinAddr). */
  joinAddr?: string;
  /** Unit tests on a plaintext fake manager (AgentOptions.testSecurity). */
  testSecurity?: ClientSecurity;
  /** Each agent opens its Network stream, as a real agent does, and drops the states it is sent (counted in `networkStates`). */
  network?: boolean;
}

export interface HollowFleet {
  agents: AgentHandle[];
  executors: HollowExecutor[];
  /** NetworkStates received by all agents (with `network`). */
  networkStates: number;
  stop(): Promise<void>;
}

/** Hollow tasks have no network namespace. */
const noAttacher = { attach: async () => ({ netnsPath: '' }), detach: async () => undefined };

export async function startHollowFleet(opts: HollowFleetOptions): Promise<HollowFleet> {
  const prefix = opts.hostnamePrefix ?? 'hollow';
  const agents: AgentHandle[] = new Array(opts.count);
  const executors: HollowExecutor[] = new Array(opts.count);
  let next = 0;
  const started: Agent[] = [];
  // One host: its ports and addresses read once, not once per agent (their connections make /proc/net/tcp long).
  const facts = readHostFacts();
  const fleet = { networkStates: 0 };
  const worker = async () => {
    while (next < opts.count) {
      const i = next++;
      const hostname = `${prefix}-${i}`;
      const executor = new HollowExecutor({ hostname, ...opts.hollow });
      const agent = new Agent({
        managers: opts.managers,
        joinToken: opts.joinToken,
        joinAddr: opts.joinAddr,
        testSecurity: opts.testSecurity,
        stateDir: path.join(opts.stateRoot, String(i)),
        hostname,
        advertiseAddr: opts.advertiseAddr?.(i) ?? '127.0.0.1',
        labels: opts.labels?.(i) ?? {},
        executor,
        network: opts.network ? { attacher: noAttacher, programmer: { apply: async () => void fleet.networkStates++, close: async () => undefined } } : undefined,
        hostFacts: () => facts,
        events: opts.events,
        logger: (opts.logger ?? nullLogger).child({ 'agent.index': i }),
      });
      started.push(agent);
      await agent.start();
      agents[i] = agent;
      executors[i] = executor;
    }
  };
  const stopAll = async () => {
    await Promise.all(started.map((a) => a.stop()));
    await Promise.all(executors.filter(Boolean).map((e) => e.close()));
  };
  try {
    await Promise.all(Array.from({ length: Math.min(opts.concurrency ?? FLEET_JOIN_CONCURRENCY, opts.count) }, worker));
  } catch (e) {
    await stopAll();
    throw e;
  }
  return {
    agents,
    executors,
    get networkStates() {
      return fleet.networkStates;
    },
    stop: stopAll,
  };
}
