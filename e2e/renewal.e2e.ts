// Certificate renewal on the lab (issue 11): a 2-host lab with 2 managers
// (a shared etcd; manager 1 runs the NATS every process uses), its cluster
// created with the shortest certificate lifetime the cluster takes (1 minute:
// renewal at 30-48 s), one task on each host.
//
// - every node renews: each manager presents a new certificate (new serial,
//   later notAfter) on its mTLS port and on its join port; each agent's
//   bundle in its state dir is a new certificate for the same identity;
// - once every first certificate has expired, everything still works on the
//   renewed ones: both nodes READY, new tasks start on both (Dispatcher
//   sessions), each manager answers, `service logs` comes back (the NATS
//   server's certificate and every NATS client's were swapped too);
// - no task restarted: same task ids, same container pids and start times.
import { strict as assert } from 'node:assert';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tls from 'node:tls';
import { eventually } from '../common/eventually';
import { identityFromCert, readBundle } from '../common/identity';
import { ContainerExecutor } from '../agent/runtime/executor';
import { tlsDirOf } from '../agent/session/identity';
import { labSecurity } from '../lab/mod';
import { connectControl, MANAGER_SERVER_NAME } from '../proto/client';
import { JOIN_PORT } from '../proto/defaults';
import type { Task } from '../proto/mod';
import { startLab, type Lab } from './support/lab';

const WAIT_MS = 120_000;

interface SeenCert {
  serial: string;
  notAfter: number;
  subject: string;
}

const certOf = (pem: string | Buffer): SeenCert => {
  const x = new crypto.X509Certificate(pem);
  return { serial: x.serialNumber, notAfter: Date.parse(x.validTo), subject: x.subject };
};

/** The certificate a manager presents on host:port (the admin bundle as the client, as the CLI). */
function presented(addr: string, port: number, bundle: { ca: string; cert: string; key: string }): Promise<SeenCert> {
  const host = addr.slice(0, addr.lastIndexOf(':'));
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host, port, ca: bundle.ca, cert: bundle.cert, key: bundle.key, servername: MANAGER_SERVER_NAME, ALPNProtocols: ['h2'] }, () => {
      const c = s.getPeerCertificate();
      s.destroy();
      resolve(certOf(c.raw));
    });
    s.once('error', reject);
    s.setTimeout(5_000, () => s.destroy(new Error(`TLS to ${host}:${port} timed out`)));
  });
}

/** Start time (clock ticks since boot, /proc/PID/stat field 22) of a pid. */
const startTicks = (pid: number) => fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')[19];

describe('certificate renewal on the lab (e2e)', function () {
  this.timeout(300_000);
  let lab: Lab | undefined;

  const running = async (service: string): Promise<Task[]> =>
    (await lab!.api.listTasks({ service })).tasks.filter((t) => t.desiredState === 'RUNNING' && t.status?.state === 'RUNNING');
  /** Every running container of the lab: task id → "pid start-time". */
  const containers = async () => {
    const out = new Map<string, string>();
    for (const h of lab!.state.hosts) {
      const ex = new ContainerExecutor({ stateDir: h.agentDir });
      for (const c of await ex.list().finally(() => ex.close())) if (c.running && c.pid) out.set(c.taskId, `${c.pid} ${startTicks(c.pid)}`);
    }
    return out;
  };
  const managerCerts = async () => {
    const b = readBundle(lab!.state.tlsDir!);
    return Promise.all(lab!.state.managers!.flatMap((m) => [presented(m, Number(m.split(':').pop()), b), presented(m, JOIN_PORT, b)]));
  };
  const agentCerts = () => lab!.state.hosts.map((h) => certOf(fs.readFileSync(path.join(tlsDirOf(h.agentDir), 'cert.pem'))));

  before(async () => {
    lab = await startLab({ hosts: 2, managers: 2, heartbeat: '500ms', certExpiry: '1m' });
  });
  after(async () => {
    await lab?.stop();
  });

  it('renews every manager and agent certificate in place; after the first ones expired everything works and no task restarted', async () => {
    for (const h of ['lab-h1', 'lab-h2'])
      await lab!.convoy('service', 'create', '--name', `keep-${h}`, '--constraint', `node.hostname==${h}`, lab!.image, 'sh', '-c', `echo alive-on-${h}; exec sleep 1000000`);
    await eventually(async () => (await running('keep-lab-h1')).length === 1 && (await running('keep-lab-h2')).length === 1, 'a task on each host', WAIT_MS);
    const tasksBefore = [...(await running('keep-lab-h1')), ...(await running('keep-lab-h2'))].map((t) => t.id).sort();
    const ctrBefore = await containers();
    for (const id of tasksBefore) assert.ok(ctrBefore.has(id), `a container for ${id}`);

    const m0 = await managerCerts();
    const a0 = agentCerts();
    const firstExpiry = Math.max(...[...m0, ...a0].map((c) => c.notAfter));
    // The short lifetime took: one minute (plus the CA's one-minute back-dating of notBefore, not counted here).
    for (const c of [...m0, ...a0]) assert.ok(c.notAfter - Date.now() <= 61_000, `${c.subject} lives ${c.notAfter - Date.now()} ms`);
    assert.match(await lab!.convoy('cluster', 'ca'), /Node certificates live:\s+60s/);

    // Every node renews (30-48 s after it got its certificate).
    const renewed = (now: SeenCert[], was: SeenCert[]) => now.every((c, i) => c.serial !== was[i].serial && c.notAfter > was[i].notAfter && c.subject === was[i].subject);
    await eventually(async () => renewed(await managerCerts(), m0) && renewed(agentCerts(), a0), 'every manager and agent certificate renewed', WAIT_MS);
    for (const h of lab!.state.hosts) assert.equal(identityFromCert(fs.readFileSync(path.join(tlsDirOf(h.agentDir), 'cert.pem'), 'utf8'))?.role, 'worker');

    // Past the expiry of every first certificate: nothing may still use one.
    await eventually(async () => Date.now() > firstExpiry + 3_000, 'the first certificates expired', WAIT_MS);
    for (const m of lab!.state.managers!) {
      const c = connectControl(m, { security: labSecurity(lab!.state) });
      try {
        assert.ok((await c.getClusterInfo({})).cluster, `manager ${m} answers`);
      } finally {
        c.close();
      }
    }
    const nodes = (await lab!.api.listNodes({})).nodes;
    assert.deepEqual(nodes.map((n) => n.status?.state), ['NODE_READY', 'NODE_READY'], JSON.stringify(nodes.map((n) => [n.description?.hostname, n.status])));
    // Dispatcher sessions on renewed certificates: new tasks start on both hosts.
    for (const h of ['lab-h1', 'lab-h2']) await lab!.convoy('service', 'create', '--name', `after-${h}`, '--constraint', `node.hostname==${h}`, lab!.image, 'sleep', '1000000');
    await eventually(async () => {
      const ts = (await lab!.api.listTasks({})).tasks.filter((t) => !tasksBefore.includes(t.id) && t.desiredState === 'RUNNING' && t.status?.state === 'RUNNING');
      return new Set(ts.map((t) => t.nodeId)).size === 2;
    }, 'new tasks running on both hosts', WAIT_MS);
    // NATS on renewed certificates: the CLI's log request reaches each agent and the lines come back.
    const logs = await eventually(async () => {
      const out = await lab!.convoy('service', 'logs', 'keep-lab-h2').catch(() => '');
      return out.includes('alive-on-lab-h2') ? out : undefined;
    }, 'service logs over NATS', WAIT_MS);
    assert.match(logs, /alive-on-lab-h2/);
    assert.match(await lab!.convoy('service', 'logs', 'keep-lab-h1'), /alive-on-lab-h1/);

    // No task restarted.
    const tasksAfter = [...(await running('keep-lab-h1')), ...(await running('keep-lab-h2'))].map((t) => t.id).sort();
    assert.deepEqual(tasksAfter, tasksBefore);
    const ctrAfter = await containers();
    for (const id of tasksBefore) assert.equal(ctrAfter.get(id), ctrBefore.get(id), `the container of ${id} (pid start-time)`);
  });
});
