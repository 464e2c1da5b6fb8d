// convoy service scale SERVICE=REPLICAS...: each one on its own; a failure is
// reported and the others still go through (exit status 1 if any failed).
import { Command } from 'commander';
import { describeError, withApi, type CliIO } from '../client';
import { parseScaleArgs } from '../flags';
import type { Service } from '../../proto/mod';
import { addWaitOptions, waitForServices, waitTimeoutMs, type WaitFlags } from './progress';

export function serviceScaleCommand(io: CliIO): Command {
  const cmd = new Command('scale')
    .description('Scale one or more replicated services (and wait until they have converged, unless -d)')
    .argument('<service=replicas...>', 'e.g. web=5 api=3');
  return addWaitOptions(cmd).action(async (args: string[], opts: WaitFlags, c: Command) =>
    withApi(io, c, async (api) => {
      let failed = false;
      const timeoutMs = waitTimeoutMs(opts);
      const scaled: Service[] = [];
      for (const [service, replicas] of parseScaleArgs(args)) {
        try {
          const r = await api.scaleService({ service, replicas });
          io.out(`${r.service?.spec?.name ?? service} scaled to ${replicas}\n`);
          if (r.service) scaled.push(r.service);
        } catch (e) {
          failed = true;
          io.err(`convoy: ${describeError(e)}\n`);
        }
      }
      // All of them at once: they converge in parallel.
      if (!opts.detach) await waitForServices(io, api, scaled, 'scale', { timeoutMs });
      if (failed) io.setExitCode(1);
    }),
  );
}
