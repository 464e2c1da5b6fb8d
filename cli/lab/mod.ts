// `convoy lab up|down`: a working cluster on this machine for a first try and
// for demos — a local OCI registry, a manager (which starts its own etcd),
// and N agents running real containers with Convoy's runtime. Every process
// is started detached and recorded by pid in the lab's state file; `lab down`
// removes the services (so agents stop their containers), stops the
// processes by pid, removes whatever containers are left and the lab dir.
//
// Not yet: hosts as separate network namespaces (the agents share this
// machine's network), and NATS. See docs/lab.md.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { Command } from 'commander';
import { ContainerExecutor } from '../../agent/runtime/executor';
import { assembleImage, buildLayer, pushImage } from '../../agent/runtime/image/push';
import { freePort } from '../../manager/embedded/etcd';
import { grpcPackages, type ControlClient, type Task } from '../../proto/mod';
import { buildBusyboxRootfs } from '../../e2e/support/images';

export const LAB_DIR = process.env.CONVOY_LAB_DIR ?? '/var/lib/convoy-lab';
const STATE = () => path.join(LAB_DIR, 'lab.json');
const MAIN = path.join(__dirname, '..', 'main.js');

interface LabState {
  pids: { name: string; pid: number }[];
  manager: string;
  registry: string;
  agentDirs: string[];
}

function startDetached(name: string, cmd: string, args: string[]): number {
  const log = fs.openSync(path.join(LAB_DIR, `${name}.log`), 'a');
  const child = spawn(cmd, args, { detached: true, stdio: ['ignore', log, log] });
  fs.closeSync(log);
  child.unref();
  return child.pid!;
}

async function waitFor(what: string, fn: () => Promise<boolean>, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    if (await fn().catch(() => false)) return;
    if (Date.now() > end) throw new Error(`lab: timed out waiting for ${what} (logs in ${LAB_DIR})`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

function control(addr: string): { c: ControlClient; call<R>(m: string, req: object): Promise<R> } {
  const c = new (grpcPackages().control.convoy.Control)(addr, grpc.credentials.createInsecure()) as unknown as ControlClient & Record<string, unknown>;
  return {
    c,
    call<R>(m: string, req: object): Promise<R> {
      const fn = c[m] as (r: object, cb: (e: grpc.ServiceError | null, r?: R) => void) => void;
      return new Promise<R>((res, rej) => fn.call(c, req, (e, r) => (e ? rej(new Error(e.details)) : res(r as R))));
    },
  };
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function up(o: { hosts: string; demo?: boolean }): Promise<void> {
  if (fs.existsSync(STATE())) throw new Error(`a lab is already up (${STATE()}); run \`convoy lab down\` first`);
  fs.mkdirSync(LAB_DIR, { recursive: true });
  const st: LabState = { pids: [], manager: '', registry: '', agentDirs: [] };
  const save = () => fs.writeFileSync(STATE(), JSON.stringify(st, null, 2));
  try {
    // Registry.
    const regPort = await freePort();
    st.registry = `127.0.0.1:${regPort}`;
    fs.mkdirSync(path.join(LAB_DIR, 'registry'), { recursive: true });
    const regCfg = path.join(LAB_DIR, 'registry.yml');
    fs.writeFileSync(regCfg, `version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: ${path.join(LAB_DIR, 'registry')}\nhttp:\n  addr: ${st.registry}\n`);
    st.pids.push({ name: 'registry', pid: startDetached('registry', 'docker-registry', ['serve', regCfg]) });
    save();
    await waitFor('the registry', async () => (await fetch(`http://${st.registry}/v2/`)).ok);

    // Manager (embedded etcd).
    const mPort = await freePort();
    st.manager = `127.0.0.1:${mPort}`;
    st.pids.push({ name: 'manager', pid: startDetached('manager', process.execPath, [MAIN, 'manager', '--listen', st.manager, '--data-dir', path.join(LAB_DIR, 'manager')]) });
    save();
    const api = control(st.manager);
    await waitFor('the manager', async () => !!(await api.call('GetClusterInfo', {})));
    const tokens = await api.call<{ worker: string }>('GetJoinTokens', {});

    // Agents.
    for (let i = 1; i <= Number(o.hosts); i++) {
      const dir = path.join(LAB_DIR, `agent-h${i}`);
      st.agentDirs.push(dir);
      st.pids.push({
        name: `agent-h${i}`,
        pid: startDetached(`agent-h${i}`, process.execPath, [MAIN, 'agent', '--manager', st.manager, '--token', tokens.worker, '--state-dir', dir, '--hostname', `lab-h${i}`, '--insecure-registry', st.registry, '--metrics-listen', 'none']),
      });
      save();
    }
    await waitFor('the agents', async () => (await api.call<{ nodes: { status: { state: string } | null }[] }>('ListNodes', {})).nodes.filter((n) => n.status?.state === 'NODE_READY').length >= Number(o.hosts));
    process.stdout.write(`lab up: manager ${st.manager}, registry ${st.registry}, ${o.hosts} agents (state in ${LAB_DIR})\n`);

    if (o.demo) {
      const rootfs = path.join(LAB_DIR, 'demo-rootfs');
      fs.rmSync(rootfs, { recursive: true, force: true });
      buildBusyboxRootfs(rootfs);
      const image = assembleImage([await buildLayer(rootfs)], { cmd: ['sh'] });
      const ref = `${st.registry}/convoy-demo/busybox:1`;
      await pushImage(image, ref, { insecureRegistries: [st.registry] });
      await api.call('CreateService', {
        spec: {
          name: 'hello',
          replicas: 3,
          container: { image: ref, args: ['sh', '-c', 'while true; do echo "hello from $(hostname)"; sleep 5; done'] },
          resources: { limits: { memoryBytes: 32 * 1024 * 1024, nanoCpus: 2e8, pids: 64 } },
        },
      });
      await waitFor('3 running replicas of hello', async () => {
        const { tasks } = await api.call<{ tasks: Task[] }>('ListTasks', { service: 'hello' });
        return tasks.filter((t) => t.desiredState === 'RUNNING' && t.status?.state === 'RUNNING').length === 3;
      }, 60_000);
      process.stdout.write(
        [
          '',
          `Demo service "hello" is running 3 real containers (image ${ref}).`,
          'Try:',
          `  export CONVOY_HOST=${st.manager}`,
          '  node dist/cli/main.js service ls',
          '  node dist/cli/main.js service ps hello',
          '  node dist/cli/main.js node ls',
          '  node dist/cli/main.js service scale hello=6',
          `  tail ${LAB_DIR}/agent-h1/logs/*.log      # what the containers print`,
          '  node dist/cli/main.js lab down           # remove everything',
          '',
        ].join('\n'),
      );
    }
    api.c.close();
  } catch (e) {
    save();
    throw e;
  }
}

async function down(): Promise<void> {
  if (!fs.existsSync(STATE())) {
    process.stdout.write('no lab is up\n');
    return;
  }
  const st = JSON.parse(fs.readFileSync(STATE(), 'utf8')) as LabState;
  const mgr = st.pids.find((p) => p.name === 'manager');
  if (st.manager && mgr && alive(mgr.pid)) {
    // Remove the services so the agents stop and remove their containers.
    const api = control(st.manager);
    try {
      const { services } = await api.call<{ services: { service: { id: string } }[] }>('ListServices', {});
      for (const s of services) await api.call('RemoveService', { service: s.service.id });
      await waitFor('the containers to stop', async () => (await api.call<{ tasks: Task[] }>('ListTasks', {})).tasks.every((t) => t.status?.state !== 'RUNNING'), 20_000).catch(() => undefined);
    } catch {
      /* the manager may be half up: fall through to the hard cleanup */
    }
    api.c.close();
  }
  // Agents first, then the manager (and its etcd), then the registry.
  const order = [...st.pids.filter((p) => p.name.startsWith('agent')), ...st.pids.filter((p) => p.name === 'manager'), ...st.pids.filter((p) => p.name === 'registry')];
  for (const p of order) {
    if (!alive(p.pid)) continue;
    process.kill(p.pid, 'SIGTERM');
    const end = Date.now() + 10_000;
    while (alive(p.pid) && Date.now() < end) await new Promise((r) => setTimeout(r, 100));
    if (alive(p.pid)) process.kill(p.pid, 'SIGKILL');
  }
  // Whatever containers are left (an agent that crashed): stop and remove them.
  for (const dir of st.agentDirs) {
    if (!fs.existsSync(dir)) continue;
    const ex = new ContainerExecutor({ stateDir: dir });
    for (const c of await ex.list()) {
      await ex.stop(c.taskId, 0).catch(() => undefined);
      await ex.remove(c.taskId).catch(() => undefined);
    }
    await ex.close();
  }
  fs.rmSync(LAB_DIR, { recursive: true, force: true });
  process.stdout.write('lab down: every process, container and file of the lab removed\n');
}

export function labCommand(): Command {
  const lab = new Command('lab').description('A cluster on this machine: registry, manager (with etcd) and agents');
  lab
    .command('up')
    .description('Start the lab')
    .option('--hosts <n>', 'number of agents', '3')
    .option('--managers <n>', 'number of managers (1 for now)', '1')
    .option('--demo', 'also push a busybox image and run a demo service')
    .action(up);
  lab.command('down').description('Stop the lab and remove everything it created').action(down);
  return lab;
}
