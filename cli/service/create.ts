// convoy service create [OPTIONS] IMAGE [COMMAND] [ARG...]
import * as fs from 'node:fs';
import { Command } from 'commander';
import { withApi, type CliIO } from '../client';
import { addServiceOptions, buildServiceSpec, type CreateFlags } from '../flags';
import { waitForServices, waitTimeoutMs, type WaitFlags } from './progress';
import { addContainerOptions, applyContainerCreate, type ContainerCreateFlags } from '../container-flags';

export function serviceCreateCommand(io: CliIO): Command {
  const cmd = new Command('create')
    .description('Create a new service')
    .argument('<image>', 'image reference (registry/repository:tag)')
    .argument('[command...]', 'command and arguments (after the image, flags belong to the command)')
    // Everything after IMAGE goes to the container, as with `docker service create`.
    .passThroughOptions();
  addServiceOptions(cmd, 'create');
  // --host here is Docker's extra /etc/hosts line; the manager is given before the verb (convoy -H MGR service create) or by CONVOY_HOST.
  addContainerOptions(cmd, 'create');
  cmd.option('-q, --quiet', 'print nothing but the service id (and wait silently)');
  return cmd.action(async (image: string, args: string[], opts: CreateFlags & ContainerCreateFlags & WaitFlags & { quiet?: boolean }, c: Command) =>
    withApi(io, c, async (api) => {
      const spec = buildServiceSpec(image, args, opts, { env: io.env, readFile: (p) => fs.readFileSync(p, 'utf8') });
      applyContainerCreate(spec.container!, opts);
      const timeoutMs = waitTimeoutMs(opts);
      const r = await api.createService({ spec });
      io.out(`${r.service?.id ?? ''}\n`);
      if (!opts.detach && r.service) await waitForServices(io, api, [r.service], 'create', { timeoutMs, quiet: opts.quiet });
    }),
  );
}
