// `convoy lab up|down`: the thin verbs over lab/ (see docs/lab.md). lab/ (and
// what it uses of the agent and the manager) is loaded by the verb when it
// runs, not by every `convoy ...`.
import { Command } from 'commander';

export function labCommand(): Command {
  const lab = new Command('lab').description('A multi-host cluster on this machine: hosts are network namespaces on one bridge');
  lab
    .command('up')
    .description('Build the hosts and start registry, NATS, manager (with etcd) and one agent per host')
    .option('--hosts <n>', 'number of hosts (one agent each)', '3')
    .option('--managers <n>', 'number of managers, in hosts 1..n (more than 1: they share an etcd the lab starts)', '1')
    .option('--demo', 'also push a busybox image and run a published demo service "web"')
    .action(async (o: { hosts: string; managers: string; demo?: boolean }) => {
      const { labUp } = await import('../../lab/mod');
      await labUp({ hosts: Number(o.hosts), managers: Number(o.managers), demo: o.demo, clientConfig: true, out: (s) => process.stdout.write(s) });
    });
  lab
    .command('down')
    .description('Stop the lab and remove everything it created')
    .action(async () => {
      const { LAB_DIR, labDown } = await import('../../lab/mod');
      await labDown(LAB_DIR, (s) => process.stdout.write(s));
    });
  return lab;
}
