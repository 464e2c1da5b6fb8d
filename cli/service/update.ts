// convoy service update [OPTIONS] SERVICE: the flags are applied to the
// current spec, which is sent back with the version it was read at, so a
// concurrent change is refused (ABORTED) rather than overwritten.
import * as fs from 'node:fs';
import { Command } from 'commander';
import { CliError, withApi, type CliIO } from '../client';
import { addServiceOptions, applyServiceUpdate, type UpdateFlags } from '../flags';
import { waitForServices, waitTimeoutMs, type WaitFlags } from './progress';
import { addContainerOptions, applyContainerUpdate, type ContainerUpdateFlags } from '../container-flags';

export function serviceUpdateCommand(io: CliIO): Command {
  const cmd = new Command('update').description('Update a service').argument('<service>', 'service name, id or id prefix');
  addServiceOptions(cmd, 'update');
  addContainerOptions(cmd, 'update');
  cmd.option('-q, --quiet', 'print nothing (and wait silently)');
  return cmd.action(async (service: string, opts: UpdateFlags & ContainerUpdateFlags & WaitFlags & { quiet?: boolean }, c: Command) =>
    withApi(io, c, async (api) => {
      const cur = await api.getService({ service });
      const svc = cur.service;
      if (!svc?.spec) throw new CliError(`service "${service}" has no spec`);
      const spec = applyServiceUpdate(svc.spec, opts, { env: io.env, readFile: (p) => fs.readFileSync(p, 'utf8') });
      const timeoutMs = waitTimeoutMs(opts);
      applyContainerUpdate(spec.container!, opts);
      const r = await api.updateService({ service: svc.id, version: svc.meta?.version ?? 0, spec, force: !!opts.force });
      if (!opts.quiet) io.out(`${r.service?.spec?.name ?? svc.spec.name}\n`);
      if (!opts.detach && r.service) await waitForServices(io, api, [r.service], 'update', { timeoutMs, quiet: opts.quiet });
    }),
  );
}
