// convoy service rollback SERVICE: back to the spec before the last update.
import { Command } from 'commander';
import { withApi, type CliIO } from '../client';
import { addWaitOptions, waitForServices, waitTimeoutMs, type WaitFlags } from './progress';

export function serviceRollbackCommand(io: CliIO): Command {
  const cmd = new Command('rollback')
    .description('Revert a service to its previous spec (and wait until it has converged, unless -d)')
    .argument('<service>', 'service name, id or id prefix')
    .option('-q, --quiet', 'print nothing (and wait silently)');
  return addWaitOptions(cmd).action(async (service: string, opts: WaitFlags & { quiet?: boolean }, c: Command) =>
    withApi(io, c, async (api) => {
      const timeoutMs = waitTimeoutMs(opts);
      const r = await api.rollbackService({ service });
      if (!opts.quiet) io.out(`${r.service?.spec?.name ?? service}: rollback started\n`);
      if (!opts.detach && r.service) await waitForServices(io, api, [r.service], 'rollback', { timeoutMs, quiet: opts.quiet });
    }),
  );
}
