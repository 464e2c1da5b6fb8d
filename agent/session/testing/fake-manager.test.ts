// The agent's fake manager keeps the Dispatcher contract (the same suite runs
// against the real dispatcher in manager/dispatcher/contract.test.ts).
import { dispatcherContract } from '../../../proto/testing/dispatcher-contract';
import { fakeCluster, startFakeManager } from './fake-manager';

dispatcherContract('fake manager (agent tests)', async () => {
  const cluster = fakeCluster();
  const m = await startFakeManager(cluster);
  return {
    addr: m.addr,
    token: cluster.token,
    async assign(task) {
      cluster.tasks.set(task.id, task);
      m.push(task.nodeId, [{ action: 'UPDATE', task }]);
    },
    async taskState(id) {
      return cluster.tasks.get(id)?.status?.state;
    },
    async expire(sessionId) {
      m.expire(sessionId);
    },
    async stop() {
      m.stop();
    },
  };
});
