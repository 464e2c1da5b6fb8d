// The Dispatcher contract (proto/dispatcher.proto) as tests, run against
// every server of it: the agent's fake manager (agent/session/testing) and
// the real dispatcher (manager/dispatcher). The agent's tests trust the fake;
// this suite is what makes that trust hold for the real one too. It lives
// with the contract so neither side imports the other.
import { strict as assert } from 'node:assert';
import * as grpc from '@grpc/grpc-js';
import { dispatcherClient, PLAINTEXT_FOR_TESTS } from '../client';
import type { DispatcherClient, Task, TaskStateName } from '../mod';
import { eventually } from '../../common/eventually';

export interface DispatcherUnderTest {
  addr: string;
  token: string;
  /** Places a task as the leader would (ASSIGNED, desired RUNNING, on task.nodeId); open streams of that node hear of it. */
  assign(task: Task): Promise<void>;
  /** The task's observed state as the manager holds it. */
  taskState(id: string): Promise<TaskStateName | undefined>;
  /** Lets a session lapse, as if its heartbeats had stopped for longer than the TTL. */
  expire(sessionId: string): Promise<void>;
  stop(): Promise<void>;
}

export function contractTask(id: string, nodeId: string, state: TaskStateName = 'ASSIGNED'): Task {
  return {
    id,
    meta: null,
    serviceId: 'svc-1',
    serviceName: 'web',
    slot: 1,
    nodeId,
    spec: null,
    specVersion: 1,
    status: { state, timestamp: Date.now(), message: '', err: '', exitCode: 0, pid: 0, health: '' },
    desiredState: 'RUNNING',
    networks: [],
    endpointPorts: [],
    attempt: 0,
    jobIteration: 0,
  };
}

/** An Assignments message as a test reads it. */
export type AssignmentsMsg = { type: string; appliesTo: string; resultsIn: string; changes: { action: string; task: Task | null }[] };

/**
 * Opens `sessionId`'s Assignments stream and collects its messages; `ended()`
 * is its final status once it has ended. The caller cancels the stream
 * (pushing it on `open` does, at the end of the test).
 */
export function watchAssignments(client: DispatcherClient, sessionId: string, open: { cancel(): void }[]): { messages: AssignmentsMsg[]; ended(): grpc.StatusObject | undefined } {
  const messages: AssignmentsMsg[] = [];
  let ended: grpc.StatusObject | undefined;
  const call = client.Assignments({ sessionId });
  open.push(call);
  call.on('data', (m: AssignmentsMsg) => messages.push(m));
  call.on('error', () => undefined);
  call.on('status', (st) => (ended = st));
  return { messages, ended: () => ended };
}

export function dispatcherContract(name: string, make: () => Promise<DispatcherUnderTest>): void {
  describe(`Dispatcher contract: ${name}`, function () {
    this.timeout(20_000);
    let d: DispatcherUnderTest;
    let client: DispatcherClient;
    const open: { cancel(): void }[] = [];

    beforeEach(async () => {
      d = await make();
      client = dispatcherClient(d.addr, { security: PLAINTEXT_FOR_TESTS });
    });
    afterEach(async () => {
      for (const c of open.splice(0)) c.cancel();
      client?.close();
      await d?.stop();
    });

    const session = (nodeId = '', token = d.token) =>
      new Promise<{ sessionId: string; nodeId: string }>((resolve, reject) => {
        const call = client.Session({ joinToken: token, nodeId, addr: '127.0.0.1', description: { hostname: 'h1', platform: null, resources: null, engineLabels: {} }, labels: {} });
        open.push(call);
        call.on('data', (m: { sessionId: string; node: { id: string } | null }) => {
          if (m.sessionId) resolve({ sessionId: m.sessionId, nodeId: m.node?.id ?? '' });
        });
        call.on('error', (e) => reject(e));
      });
    const heartbeat = (sessionId: string) =>
      new Promise<number>((resolve, reject) => client.Heartbeat({ sessionId }, { deadline: Date.now() + 5000 }, (e, r) => (e ? reject(e) : resolve(r!.periodMs))));
    const status = (sessionId: string, updates: { taskId: string; state: TaskStateName }[]) =>
      new Promise<void>((resolve, reject) =>
        client.UpdateTaskStatus(
          { sessionId, updates: updates.map((u) => ({ taskId: u.taskId, status: { state: u.state, timestamp: Date.now(), message: '', err: '', exitCode: 0, pid: 0, health: '' } })) },
          { deadline: Date.now() + 5000 },
          (e) => (e ? reject(e) : resolve()),
        ),
      );
    const assignments = (sessionId: string) => watchAssignments(client, sessionId, open);
    const code = (e: unknown) => (e as grpc.ServiceError).code;
    const notFound = async (p: Promise<unknown>, what: string) => {
      const e = await p.then(
        () => undefined,
        (err: unknown) => err,
      );
      assert.ok(e, `${what}: accepted`);
      assert.equal(code(e), grpc.status.NOT_FOUND, `${what}: ${grpc.status[code(e)]} instead of NOT_FOUND`);
    };

    it('refuses a node with no identity (a wrong token to a test double, no certificate to the real one): PERMISSION_DENIED or UNAUTHENTICATED', async () => {
      const e = await session('', 'wrong-token').then(
        () => undefined,
        (err: unknown) => err,
      );
      assert.ok([grpc.status.PERMISSION_DENIED, grpc.status.UNAUTHENTICATED].includes(code(e) as grpc.status), `code ${String(code(e))}`);
    });

    it('registers a node; a node that registers again with its id keeps it', async () => {
      const s1 = await session();
      assert.ok(s1.sessionId && s1.nodeId);
      const s2 = await session(s1.nodeId);
      assert.equal(s2.nodeId, s1.nodeId);
      assert.notEqual(s2.sessionId, s1.sessionId, 'a new session id');
    });

    it('answers heartbeats on a live session with the period; NOT_FOUND on an unknown session', async () => {
      const s = await session();
      assert.ok((await heartbeat(s.sessionId)) > 0);
      await notFound(heartbeat('no-such-session'), 'heartbeat of an unknown session');
      await notFound(status('no-such-session', []), 'status of an unknown session');
      const a = assignments('no-such-session');
      await eventually(() => !!a.ended(), 'assignments of an unknown session end');
      assert.equal(a.ended()!.code, grpc.status.NOT_FOUND);
    });

    it('sends COMPLETE first with the node\'s own tasks, then INCREMENTAL messages chained by applies_to/results_in', async () => {
      const s = await session();
      await d.assign(contractTask('t-mine-1', s.nodeId));
      await d.assign(contractTask('t-other-1', 'some-other-node'));
      const a = assignments(s.sessionId);
      await eventually(() => a.messages.length >= 1, 'the COMPLETE message');
      const first = a.messages[0];
      assert.equal(first.type, 'COMPLETE');
      assert.equal(first.appliesTo, '');
      assert.deepEqual(first.changes.map((c) => c.task?.id), ['t-mine-1']);
      await d.assign(contractTask('t-mine-2', s.nodeId));
      await d.assign(contractTask('t-other-2', 'some-other-node'));
      await d.assign(contractTask('t-mine-3', s.nodeId));
      await eventually(() => a.messages.flatMap((m) => m.changes).some((c) => c.task?.id === 't-mine-3'), 't-mine-3 assigned');
      for (let i = 1; i < a.messages.length; i++) {
        assert.equal(a.messages[i].type, 'INCREMENTAL');
        assert.equal(a.messages[i].appliesTo, a.messages[i - 1].resultsIn, `message ${i} applies to the one before`);
        assert.notEqual(a.messages[i].resultsIn, a.messages[i].appliesTo);
      }
      const ids = a.messages.flatMap((m) => m.changes.map((c) => c.task?.id));
      assert.ok(!ids.some((id) => id?.startsWith('t-other')), `another node's task was sent: ${ids.join(', ')}`);
    });

    it('refuses every call of an expired session with NOT_FOUND; registering again gives a new session on the same node', async () => {
      const s = await session();
      await heartbeat(s.sessionId);
      await d.expire(s.sessionId);
      await notFound(heartbeat(s.sessionId), 'heartbeat of an expired session');
      await notFound(status(s.sessionId, []), 'status of an expired session');
      const a = assignments(s.sessionId);
      await eventually(() => !!a.ended(), 'assignments of an expired session end');
      assert.equal(a.ended()!.code, grpc.status.NOT_FOUND);
      const again = await session(s.nodeId);
      assert.equal(again.nodeId, s.nodeId);
      assert.ok((await heartbeat(again.sessionId)) > 0);
    });

    it('refuses a replaced session with NOT_FOUND, and ends its assignments stream', async () => {
      const old = await session();
      const a = assignments(old.sessionId);
      await eventually(() => a.messages.length >= 1, 'the COMPLETE message');
      const next = await session(old.nodeId);
      await notFound(heartbeat(old.sessionId), 'heartbeat of the replaced session');
      await eventually(() => !!a.ended(), 'the replaced session\'s assignments end');
      assert.equal(a.ended()!.code, grpc.status.NOT_FOUND);
      assert.ok((await heartbeat(next.sessionId)) > 0, 'the new session is live');
    });

    it('applies status updates only forward, and only to the node\'s own tasks', async () => {
      const s = await session();
      await d.assign(contractTask('t-mine', s.nodeId));
      await d.assign(contractTask('t-other', 'some-other-node'));
      await status(s.sessionId, [{ taskId: 't-mine', state: 'RUNNING' }]);
      assert.equal(await d.taskState('t-mine'), 'RUNNING');
      await status(s.sessionId, [{ taskId: 't-mine', state: 'STARTING' }]);
      assert.equal(await d.taskState('t-mine'), 'RUNNING', 'a backward update is ignored');
      await status(s.sessionId, [{ taskId: 't-other', state: 'RUNNING' }]);
      assert.equal(await d.taskState('t-other'), 'ASSIGNED', 'another node\'s task is not touched');
    });
  });
}
