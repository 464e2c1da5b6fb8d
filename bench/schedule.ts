// bench:schedule — N hollow nodes (real agent sessions in this process,
// agent/hollow/fleet), one manager on a real (embedded) etcd, and a service
// of T replicas: time from CreateService to every task assigned and committed
// in etcd. Defaults: 1,000 nodes, 100,000 tasks (NODES, TASKS to change).
// Prints phases and a last key=value line; never fails on time.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { Etcd3 } from 'etcd3';
import { startHollowFleet } from '../agent/hollow/fleet';
import { startManager } from '../manager/mod';
import { nullLogger } from '../proto/common/logger';
import { grpcPackages, type ControlClient } from '../proto/mod';

const NODES = Number(process.env.NODES ?? 1000);
const TASKS = Number(process.env.TASKS ?? 100_000);

async function main(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'convoy-bench-schedule-'));
  const m = await startManager({ dataDir: path.join(dir, 'm'), listen: '127.0.0.1:0', heartbeatPeriodMs: 5000, logger: nullLogger });
  const etcd = new Etcd3({ hosts: m.etcdEndpoints });
  const control = new (grpcPackages().control.convoy.Control)(m.grpcAddr, grpc.credentials.createInsecure()) as unknown as ControlClient;
  try {
    const tokens = await new Promise<{ worker: string }>((res, rej) => control.GetJoinTokens({}, (e, r) => (e || !r ? rej(e) : res(r))));
    let t = Date.now();
    const fleet = await startHollowFleet({ count: NODES, managers: [m.grpcAddr], joinToken: tokens.worker, stateRoot: path.join(dir, 'fleet'), logger: nullLogger });
    console.log(`${NODES} hollow nodes joined in ${((Date.now() - t) / 1000).toFixed(1)} s`);
    // Wait until the leader has seen them all ready.
    for (;;) {
      const n = await new Promise<number>((res, rej) => control.ListNodes({}, (e, r) => (e || !r ? rej(e) : res(r.nodes.filter((x) => x.status?.state === 'NODE_READY').length))));
      if (n >= NODES) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    t = Date.now();
    await new Promise((res, rej) => control.CreateService({ spec: { name: 'bench', replicas: TASKS, container: { image: 'bench/x:1' } } }, (e, r) => (e ? rej(e) : res(r))));
    let assigned = 0;
    let lastPrint = 0;
    while (assigned < TASKS) {
      // Count straight from etcd: committed tasks with a node.
      const vals = await etcd.getAll().prefix('/convoy/tasks/').strings();
      assigned = Object.values(vals).filter((v) => v.includes('"nodeId":"') && !v.includes('"nodeId":""')).length;
      if (Date.now() - lastPrint > 2000) {
        console.log(`  ${((Date.now() - t) / 1000).toFixed(1)} s: ${assigned}/${TASKS} assigned`);
        lastPrint = Date.now();
      }
      if (assigned < TASKS) await new Promise((r) => setTimeout(r, 250));
    }
    const secs = (Date.now() - t) / 1000;
    console.log(`all ${TASKS} tasks assigned and committed in ${secs.toFixed(2)} s`);
    console.log(`nodes=${NODES} tasks=${TASKS} seconds=${secs.toFixed(2)} tasks_per_s=${Math.round(TASKS / secs)}`);
    await fleet.stop();
  } finally {
    control.close();
    etcd.close();
    await m.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
