// convoy user ls: NAME, ROLE, CERTIFICATE (serial), EXPIRES, CREATED, BY.
import { Command } from 'commander';
import type { User } from '../../proto/mod';
import { withApi, type CliIO } from '../client';
import { addOutputOptions, ago, json, parseFormat, table, type OutputFlags } from '../format';

export function renderUsers(users: User[], now: number): string {
  const rows = [...users]
    .sort((a, b) => a.name.localeCompare(b.name))
    .map((u) => [u.name, u.role, u.serial ? u.serial.slice(0, 16) : '(not issued)', u.notAfter ? new Date(u.notAfter).toISOString().slice(0, 10) : '', u.createdAt ? ago(u.createdAt, now) : '', u.createdBy]);
  return table(['NAME', 'ROLE', 'CERTIFICATE', 'EXPIRES', 'CREATED', 'BY'], rows);
}

export function userLsCommand(io: CliIO): Command {
  const cmd = new Command('ls').alias('list').description('List users');
  addOutputOptions(cmd, { trunc: false });
  return cmd.action(async (opts: OutputFlags, c: Command) =>
    withApi(io, c, async (api) => {
      const format = parseFormat(opts.format);
      const { users } = await api.listUsers({});
      if (opts.quiet) io.out(users.map((u) => `${u.name}\n`).join(''));
      else if (format === 'json') io.out(json(users));
      else io.out(renderUsers(users, io.now()));
    }),
  );
}
