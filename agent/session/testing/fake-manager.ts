// An in-process fake manager serving the Dispatcher API, for the agent's
// tests (no etcd, no external process). Several fakes can share one `Cluster`
// (the "store") to play managers the agent fails over between. It keeps the
// rules of proto/dispatcher.proto that the agent depends on, checked against
// the real dispatcher by the same contract suite (proto/testing/dispatcher-contract.ts).
import * as grpc from '@grpc/grpc-js';
import { randomUUID } from 'node:crypto';
import { grpcPackages, isForward, type DispatcherHandlers, type NetworkState, type Task, type TaskStatus } from '../../../proto/mod';

export interface FakeCluster {
  token: string;
  /** Tasks by id; node_id says where. */
  tasks: Map<string, Task>;
  statusUpdates: { taskId: string; status: TaskStatus }[];
  /** Calls of UpdateTaskStatus, all managers. */
  statusBatches: number;
  nodeIds: string[];
  heartbeatPeriodMs: number;
  /** When set, Network streams are sent it once when they open (as the dispatcher does, which sends again only on a change); otherwise Network is UNIMPLEMENTED. */
  network?: NetworkState;
}

export function fakeCluster(token = 'good-token'): FakeCluster {
  return { token, tasks: new Map(), statusUpdates: [], statusBatches: 0, nodeIds: [], heartbeatPeriodMs: 200 };
}

export interface FakeManager {
  addr: string;
  /** Session calls received (accepted or not). */
  sessionCalls: number;
  assignmentStreams: number;
  heartbeats: number;
  /** Known session ids → node id. */
  sessions: Map<string, string>;
  /** Peers announced in SessionMessage.managers. */
  peers: string[];
  /** Sends an INCREMENTAL message to every open Assignments stream of the node. */
  push(nodeId: string, changes: { action: 'UPDATE' | 'REMOVE'; task: Task }[], appliesTo?: string): void;
  /** Forgets every session (as if they expired): the next call is refused NOT_FOUND. */
  forgetSessions(): void;
  /** Forgets one session (its lease lapsed): its calls are refused NOT_FOUND, its streams end so. */
  expire(sessionId: string): void;
  stop(): void;
}

export async function startFakeManager(cluster: FakeCluster): Promise<FakeManager> {
  const server = new grpc.Server();
  const streams = new Map<string, { nodeId: string; sessionId: string; call: grpc.ServerWritableStream<unknown, unknown>; version: number }>();
  const notFound = { code: grpc.status.NOT_FOUND, details: 'session invalid' };
  /** Ends a session: later calls naming it get NOT_FOUND, and so do its open Assignments streams. */
  const end = (sessionId: string) => {
    m.sessions.delete(sessionId);
    for (const [k, s] of streams) {
      if (s.sessionId !== sessionId) continue;
      streams.delete(k);
      s.call.emit('error', notFound);
    }
  };
  const sessionCalls: grpc.ServerWritableStream<unknown, unknown>[] = [];
  const m: FakeManager = {
    addr: '',
    sessionCalls: 0,
    assignmentStreams: 0,
    heartbeats: 0,
    sessions: new Map(),
    peers: [],
    push(nodeId, changes, appliesTo) {
      for (const [, s] of streams) {
        if (s.nodeId !== nodeId) continue;
        const from = appliesTo ?? `v${s.version}`;
        s.version++;
        s.call.write({ type: 'INCREMENTAL', appliesTo: from, resultsIn: `v${s.version}`, changes });
      }
    },
    forgetSessions() {
      m.sessions.clear();
    },
    expire(sessionId) {
      end(sessionId);
    },
    stop() {
      server.forceShutdown();
    },
  };
  const handlers: DispatcherHandlers = {
    Session(call) {
      m.sessionCalls++;
      if (call.request.joinToken !== cluster.token) {
        call.emit('error', { code: grpc.status.PERMISSION_DENIED, details: 'invalid join token' });
        return;
      }
      const nodeId = call.request.nodeId || `node-${cluster.nodeIds.length + 1}`;
      if (!cluster.nodeIds.includes(nodeId)) cluster.nodeIds.push(nodeId);
      const sessionId = randomUUID();
      // A node holds one session: a new registration replaces the old one.
      for (const [sid, n] of m.sessions) if (n === nodeId) end(sid);
      m.sessions.set(sessionId, nodeId);
      sessionCalls.push(call as grpc.ServerWritableStream<unknown, unknown>);
      call.write({
        sessionId,
        node: { id: nodeId },
        managers: m.peers.map((addr, i) => ({ id: `m${i}`, addr })),
        heartbeatPeriodMs: cluster.heartbeatPeriodMs,
      });
    },
    Heartbeat(call, cb) {
      m.heartbeats++;
      if (!m.sessions.has(call.request.sessionId)) return cb(notFound);
      cb(null, { periodMs: cluster.heartbeatPeriodMs });
    },
    Assignments(call) {
      const nodeId = m.sessions.get(call.request.sessionId);
      if (!nodeId) {
        call.emit('error', notFound);
        return;
      }
      m.assignmentStreams++;
      const key = randomUUID();
      const s = { nodeId, sessionId: call.request.sessionId, call: call as grpc.ServerWritableStream<unknown, unknown>, version: 1 };
      streams.set(key, s);
      call.on('cancelled', () => streams.delete(key));
      const mine = [...cluster.tasks.values()].filter((t) => t.nodeId === nodeId);
      call.write({ type: 'COMPLETE', appliesTo: '', resultsIn: 'v1', changes: mine.map((task) => ({ action: 'UPDATE', task })) });
    },
    UpdateTaskStatus(call, cb) {
      const nodeId = m.sessions.get(call.request.sessionId);
      if (!nodeId) return cb(notFound);
      cluster.statusBatches++;
      for (const u of call.request.updates) {
        if (!u.status) continue;
        cluster.statusUpdates.push({ taskId: u.taskId, status: u.status });
        // As the proto says: never backwards, and only the node's own tasks.
        const t = cluster.tasks.get(u.taskId);
        if (t && t.nodeId === nodeId && isForward(t.status?.state ?? 'NEW', u.status.state)) t.status = u.status;
      }
      cb(null, {});
    },
    Network(call) {
      if (!cluster.network) return void call.emit('error', { code: grpc.status.UNIMPLEMENTED, details: 'not in the fake' });
      if (!m.sessions.has(call.request.sessionId)) return void call.emit('error', notFound);
      call.write(cluster.network);
    },
  };
  server.addService(grpcPackages().dispatcher.convoy.Dispatcher.service, handlers);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  m.addr = `127.0.0.1:${port}`;
  return m;
}
