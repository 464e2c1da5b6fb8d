// Control API: tasks (read only: tasks are the leader's to write), and the
// door of `convoy task exec`: StartExec is where an exec is allowed (the role
// table) and recorded (the audit trail) before the CLI reaches the agent.
import * as grpc from '@grpc/grpc-js';
import type { ControlHandlers } from '../../proto/mod';
import { ApiError } from '../api';
import { findNode, findService, findTask, paged, type Ctx } from './common';

type Handlers = Pick<ControlHandlers, 'ListTasks' | 'GetTask' | 'StartExec'>;

export function taskHandlers(c: Ctx): Handlers {
  const { cache, reads, unary } = c;
  return {
    ListTasks: unary('ListTasks', async (req: { service: string; node: string; states: string[]; desiredStates: string[]; currentOnly: boolean; pageSize: number; pageToken: string }) => {
      await reads.fresh();
      const svc = req.service ? findService(cache, req.service).id : undefined;
      const node = req.node ? findNode(cache, req.node).id : undefined;
      let tasks = node ? [...cache.tasksOnNode(node)] : [...cache.tasks.values()];
      if (svc) tasks = tasks.filter((t) => t.serviceId === svc);
      if (req.states?.length) tasks = tasks.filter((t) => req.states.includes(t.status?.state ?? 'NEW'));
      if (req.desiredStates?.length) tasks = tasks.filter((t) => req.desiredStates.includes(t.desiredState));
      if (req.currentOnly) tasks = tasks.filter((t) => t.desiredState === 'RUNNING');
      // By service, slot, node, newest attempt first (what `service ps` shows), then id.
      const page = paged(tasks, req, (t) => [t.serviceName, t.slot, t.nodeId, -t.attempt, t.id]);
      return { tasks: page.items, nextPageToken: page.nextPageToken };
    }),
    GetTask: unary('GetTask', async (req: { task: string }) => {
      await reads.fresh();
      return { task: findTask(cache, req.task) };
    }),
    StartExec: unary('StartExec', async (req: { task: string; args: string[] }) => {
      if (!req.args?.length || !req.args[0]) throw new ApiError(grpc.status.INVALID_ARGUMENT, 'args: no command to run');
      await reads.fresh();
      const task = findTask(cache, req.task);
      const state = task.status?.state ?? 'NEW';
      if (state !== 'RUNNING') throw new ApiError(grpc.status.FAILED_PRECONDITION, `task ${task.id} is not running (state ${state.toLowerCase()})`);
      return { task };
    }),
  };
}
