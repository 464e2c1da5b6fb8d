// convoy registry login REGISTRY --username U --password-stdin
//
// Keeps the credentials as a cluster secret (registry-auth-<host>); services
// created or updated --with-registry-auth pull with them, and only the nodes
// that run their tasks get them. The password is read from standard input
// only (arguments show in ps and in shell history).
import { Command } from 'commander';
import { CliError, withApi, type CliIO } from '../client';

async function readPassword(stdin: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of stdin) {
    const b = Buffer.isBuffer(c) ? c : Buffer.from(c as string);
    n += b.length;
    if (n > 8 * 1024) throw new CliError('--password-stdin: over 8 KiB');
    chunks.push(b);
  }
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
}

export function registryLoginCommand(io: CliIO, stdin: NodeJS.ReadableStream = process.stdin): Command {
  return new Command('login')
    .description("Keep a registry's credentials in the cluster, for services created --with-registry-auth")
    .argument('<registry>', 'registry host[:port] as in image references (docker.io for Docker Hub)')
    .option('-u, --username <user>', 'user name')
    .option('--password-stdin', 'read the password from standard input')
    .action(async (registry: string, opts: { username?: string; passwordStdin?: boolean }, c: Command) =>
      withApi(io, c, async (api) => {
        if (!opts.username) throw new CliError('--username: required');
        if (!opts.passwordStdin) throw new CliError('--password-stdin: required (a password on the command line shows in ps)');
        const password = await readPassword(stdin);
        if (!password) throw new CliError('--password-stdin: empty password');
        const r = await api.registryLogin({ registry, username: opts.username, password });
        io.out(`Login stored for ${registry} (secret ${r.secret?.spec?.name ?? ''})\n`);
      }),
    );
}
