// convoy cluster join-token [--rotate] [-q] worker|manager: prints the command
// that joins a host, as `docker swarm join-token` does.
import { Command } from 'commander';
import { CliError, hostOf, withApi, type CliIO, type ControlResponse } from '../client';
import { MANAGER_PORT } from '../../proto/defaults';

export function joinInstructions(role: 'worker' | 'manager', token: string, managers: string[]): string {
  const addrs = managers.join(',') || `<manager-host>:${MANAGER_PORT}`;
  if (role === 'worker') return `To add a worker to this cluster, run the following command on it:\n\n    convoy agent --manager ${addrs} --token ${token}\n\n`;
  // Managers share the cluster's etcd; the manager token hands a new manager the
  // key-encryption key over the CA-pinned join (docs/security.md).
  const join = (managers[0] ?? `<manager-host>:${MANAGER_PORT}`).replace(/:(\d+)$/, (_m, p: string) => `:${Number(p) + 3}`);
  return (
    `To add a manager to this cluster, run the following command on it (managers share the cluster's etcd):\n\n` +
    `    convoy manager --etcd <etcd-endpoints> --join ${join} --token ${token}\n\n`
  );
}

export function clusterJoinTokenCommand(io: CliIO): Command {
  return new Command('join-token')
    .description('Show (or rotate) the token that joins a worker or a manager')
    .argument('<role>', 'worker | manager')
    .option('--rotate', 'replace the token; the old one stops working')
    .option('-q, --quiet', 'only display the token')
    .action(async (role: string, opts: { rotate?: boolean; quiet?: boolean }, c: Command) =>
      withApi(io, c, async (api) => {
        if (role !== 'worker' && role !== 'manager') throw new CliError(`role must be worker or manager, not "${role}"`);
        const tokens: ControlResponse<'getJoinTokens'> = opts.rotate
          ? await api.rotateJoinToken({ worker: role === 'worker', manager: role === 'manager' })
          : await api.getJoinTokens({});
        const token = tokens[role];
        if (!token) throw new CliError(`the manager returned no ${role} token`);
        if (opts.quiet) {
          io.out(`${token}\n`);
          return;
        }
        let managers: string[] = [];
        try {
          managers = (await api.getClusterInfo({})).managers.map((m) => m.addr).filter(Boolean);
        } catch {
          managers = [hostOf(c, io.env)];
        }
        if (opts.rotate) io.out(`Successfully rotated ${role} join token.\n\n`);
        io.out(joinInstructions(role, token, managers));
      }),
    );
}
