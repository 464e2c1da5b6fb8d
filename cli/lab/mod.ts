// `convoy lab up|down`: the thin verbs over lab/ (see docs/lab.md).
import { Command } from 'commander';
import { LAB_DIR, labDown, labUp } from '../../lab/mod';

export function labCommand(): Command {
  const lab = new Command('lab').description('A multi-host cluster on this machine: hosts are network namespaces on one bridge');
  lab
    .command('up')
    .description('Build the hosts and start registry, NATS, manager (with etcd) and one agent per host')
    .option('--hosts <n>', 'number of hosts (one agent each)', '3')
    .option('--managers <n>', 'number of managers, in hosts 1..n (more than 1: they share an etcd the lab starts)', '1')
    .option('--demo', 'also push a busybox image and run a published demo service "web"')
    .action(async (o: { hosts: string; managers: string; demo?: boolean }) => {
      await labUp({ hosts: Number(o.hosts), managers: Number(o.managers), demo: o.demo, out: (s) => process.stdout.write(s) });
    });
  lab
    .command('down')
    .description('Stop the lab and remove everything it created')
    .action(() => labDown(LAB_DIR, (s) => process.stdout.write(s)));
  return lab;
}
