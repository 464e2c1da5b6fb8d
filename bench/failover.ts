// bench:failover — how fast the control plane recovers, on a real etcd with
// managers and hollow agents as child processes (kills are real kill -9s).
//   agent_loss_s:  kill -9 of an agent → all its replicas RUNNING on other nodes
//   leader_loss_s: kill -9 of the leader → a new leader has reconciled a change
//                  made right after the kill (a scale-up carried out)
// Prints every round and the medians; never fails on time.
import { eventually } from '../common/eventually';
import { TestCluster } from '../e2e/support/cluster';
import { median, onInterrupt } from './support';

const ROUNDS = Number(process.env.ROUNDS ?? 3);
const HEARTBEAT_MS = Number(process.env.HEARTBEAT_MS ?? 1000);

async function main(): Promise<void> {
  const agentLoss: number[] = [];
  const leaderLoss: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const c = new TestCluster(HEARTBEAT_MS);
    const offInterrupt = onInterrupt(() => c.stop());
    try {
      await c.start(3);
      for (let i = 0; i < 4; i++) await c.addAgent({ hostname: `h${i}` });
      const running = async () => (await c.api.listTasks({ service: 'web' })).tasks.filter((t) => t.desiredState === 'RUNNING' && t.status?.state === 'RUNNING');
      await c.api.createService({ spec: { name: 'web', replicas: 12, container: { image: 'bench/web:1' } } });
      await eventually(async () => (await running()).length === 12, '12 running', 60_000);

      const victimNode = (await running())[0].nodeId;
      const victim = c.agents.find((a) => a.info.nodeId === victimNode)!;
      const t0 = Date.now();
      victim.kill9();
      await eventually(async () => {
        const r = await running();
        return r.length === 12 && r.every((t) => t.nodeId !== victimNode);
      }, 'replicas elsewhere', 60_000);
      agentLoss.push((Date.now() - t0) / 1000);

      const info = await c.api.getClusterInfo({});
      const leader = c.managers.find((m) => m.info.id === info.managers.find((x) => x.leader)?.id)!;
      const t1 = Date.now();
      leader.kill9();
      c.managers = c.managers.filter((m) => m !== leader);
      await c.api.scaleService({ service: 'web', replicas: 13 });
      await eventually(async () => (await running()).length === 13, 'scale carried out by the new leader', 60_000);
      leaderLoss.push((Date.now() - t1) / 1000);
      console.log(`round ${round + 1}: agent_loss_s=${agentLoss[round].toFixed(2)} leader_loss_s=${leaderLoss[round].toFixed(2)}`);
    } finally {
      await offInterrupt();
      await c.stop();
    }
  }
  console.log(`heartbeat period ${HEARTBEAT_MS} ms (node lease TTL ${Math.max(2, Math.ceil((3 * HEARTBEAT_MS) / 1000))} s), leader lease TTL 2 s`);
  console.log(`agent_loss_s=${median(agentLoss).toFixed(2)} leader_loss_s=${median(leaderLoss).toFixed(2)} rounds=${ROUNDS} heartbeat_ms=${HEARTBEAT_MS}`);
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
