// A one-node cluster in the benchmark's own process: a local registry with the
// busybox test image, a manager on embedded etcd (with NATS when asked), and
// one agent running real containers. stop() removes all of it, containers
// included, even after a failure.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { startRegistry, type TestRegistry } from '../lab/registry';
import { pushBusyboxImage } from '../lab/images';
import { Agent } from '../agent/agent';
import { ContainerExecutor } from '../agent/runtime/executor';
import { startManager, type ManagerHandle } from '../manager/mod';
import { freePort } from '../common/net';
import { startNats, type EmbeddedNats } from '../manager/embedded/nats';
import { connectControl, type ConnectedApi, type ControlApi } from '../cli/client';
import { adminSecurity } from '../e2e/support/security';
import { nullLogger } from '../common/logger';
import { createTestCa } from '../common/testing/test-ca';
import type { TlsBundle } from '../common/identity';
import { onInterrupt } from './support';

export interface SingleNode {
  api: ControlApi;
  /** The busybox image in the local registry. */
  image: string;
  agent: Agent;
  /** Removes the service's containers, stops everything and deletes dir. */
  stop(service: string): Promise<void>;
}

export async function startSingleNode(o: { dir: string; nats?: boolean; heartbeatMs?: number; metricsListen?: string }): Promise<SingleNode> {
  fs.rmSync(o.dir, { recursive: true, force: true });
  fs.mkdirSync(o.dir, { recursive: true });
  let registry: TestRegistry | undefined;
  let nats: EmbeddedNats | undefined;
  let manager: ManagerHandle | undefined;
  let conn: ConnectedApi | undefined;
  let agent: Agent | undefined;
  const stopAll = async () => {
    await agent?.stop().catch(() => undefined);
    const ex = agent?.executor;
    if (ex instanceof ContainerExecutor) for (const c of await ex.runtime.list()) await ex.runtime.remove(c.id).catch(() => undefined);
    conn?.close();
    await manager?.stop().catch(() => undefined);
    await nats?.stop().catch(() => undefined);
    await registry?.stop().catch(() => undefined);
    fs.rmSync(o.dir, { recursive: true, force: true });
  };
  // Ctrl-C or SIGTERM stops it too: its containers, the manager, NATS, the registry, the directory.
  const offInterrupt = onInterrupt(stopAll);
  try {
    registry = await startRegistry();
    const image = (await pushBusyboxImage(registry.host)).ref;
    // NATS is TLS only: a throwaway CA stands in for the cluster CA (the manager's, the agent's certificates).
    const ca = o.nats ? await createTestCa('bench') : undefined;
    const managerTls = ca ? await ca.bundle({ id: 'bench-manager', role: 'manager', ips: ['127.0.0.1'] }) : undefined;
    if (ca && managerTls) nats = await startNats({ dataDir: path.join(o.dir, 'nats'), tls: managerTls, identities: [{ id: 'bench-manager', role: 'manager', cluster: ca.cluster }] });
    let agentTls: TlsBundle | undefined;
    manager = await startManager({
      natsTls: managerTls,
      dataDir: path.join(o.dir, 'manager'),
      listen: `127.0.0.1:${await freePort()}`,
      natsUrl: nats?.url ?? '',
      heartbeatPeriodMs: o.heartbeatMs,
      logger: nullLogger,
    });
    conn = connectControl(manager.grpcAddr, adminSecurity(manager));
    const api = conn.api;
    agent = new Agent({
      managers: [manager.grpcAddr],
      joinToken: (await api.getJoinTokens({})).worker,
      stateDir: path.join(o.dir, 'agent'),
      advertiseAddr: '127.0.0.1',
      executor: 'container',
      runtime: { insecureRegistries: [registry.host] },
      metricsListen: o.metricsListen,
      runDir: '',
      natsTls: () => agentTls,
      logger: nullLogger,
    });
    await agent.start();
    if (ca && nats) {
      // The node's certificate names the id it got at join (the cluster CA's join flow does this for real nodes).
      agentTls = await ca.bundle({ id: agent.nodeId(), role: 'worker' });
      await nats.setIdentities([
        { id: 'bench-manager', role: 'manager', cluster: ca.cluster },
        { id: agent.nodeId(), role: 'worker', cluster: ca.cluster },
      ]);
      agent.natsTlsChanged();
    }
    const a = agent;
    return {
      api,
      image,
      agent: a,
      async stop(service) {
        await api.removeService({ service }).catch(() => undefined);
        // Let the agent stop the tasks itself first (a bounded wait), then remove what is left.
        const ex = a.executor;
        const end = Date.now() + 60_000;
        if (ex instanceof ContainerExecutor) while ((await ex.runtime.list()).length && Date.now() < end) await new Promise((r) => setTimeout(r, 200));
        await offInterrupt();
        await stopAll();
      },
    };
  } catch (e) {
    await offInterrupt();
    await stopAll();
    throw e;
  }
}
