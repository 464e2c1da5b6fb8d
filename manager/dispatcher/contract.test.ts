// The real dispatcher keeps the Dispatcher contract (the same suite runs
// against the agent's fake manager in agent/session/testing/fake-manager.test.ts).
import type { Task } from '../../proto/mod';
import { dispatcherContract } from '../../proto/testing/dispatcher-contract';
import { HARNESS_TOKEN, startDispatcherHarness } from './testing/harness';

dispatcherContract('real dispatcher (MemoryStore)', async () => {
  const h = await startDispatcherHarness();
  return {
    addr: h.addr,
    token: HARNESS_TOKEN,
    assign: (task) => h.put(task),
    async taskState(id) {
      return (await h.store.get<Task>('tasks', id))?.status?.state;
    },
    async expire() {
      // Past the session lease's TTL with no heartbeat.
      h.advance(h.dispatcher.sessions.ttlMs + 1);
    },
    stop: () => h.stop(),
  };
});
