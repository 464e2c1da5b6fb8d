// Control API: tasks (read only: tasks are the leader's to write).
import type { ControlHandlers } from '../../proto/mod';
import { findNode, findService, findTask, type Ctx } from './common';

type Handlers = Pick<ControlHandlers, 'ListTasks' | 'GetTask'>;

export function taskHandlers(c: Ctx): Handlers {
  const { cache, reads, unary } = c;
  return {
    ListTasks: unary('ListTasks', async (req: { service: string; node: string; states: string[]; desiredStates: string[]; currentOnly: boolean }) => {
      await reads.fresh();
      const svc = req.service ? findService(cache, req.service).id : undefined;
      const node = req.node ? findNode(cache, req.node).id : undefined;
      let tasks = node ? [...cache.tasksOnNode(node)] : [...cache.tasks.values()];
      if (svc) tasks = tasks.filter((t) => t.serviceId === svc);
      if (req.states?.length) tasks = tasks.filter((t) => req.states.includes(t.status?.state ?? 'NEW'));
      if (req.desiredStates?.length) tasks = tasks.filter((t) => req.desiredStates.includes(t.desiredState));
      if (req.currentOnly) tasks = tasks.filter((t) => t.desiredState === 'RUNNING');
      tasks.sort((a, b) => a.serviceName.localeCompare(b.serviceName) || a.slot - b.slot || a.nodeId.localeCompare(b.nodeId) || b.attempt - a.attempt);
      return { tasks };
    }),
    GetTask: unary('GetTask', async (req: { task: string }) => {
      await reads.fresh();
      return { task: findTask(cache, req.task) };
    }),
  };
}
