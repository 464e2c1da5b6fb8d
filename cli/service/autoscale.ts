// convoy service autoscale SERVICE --min 2 --max 20 --cpu 70 [--memory 80]
// [--scale-down-delay 5m] | --off: sets the service's autoscale policy
// (ServiceSpec.autoscale). The leader's autoscaler then sets the replicas
// (docs/autoscaling.md). Changing the policy never replaces tasks.
import { Command } from 'commander';
import type { AutoscalePolicy, ServiceSpec } from '../../proto/mod';
import { CliError, describeError, processIO, withApi, type CliIO } from '../client';
import { parseDuration, parseInteger } from '../flags';

interface AutoscaleFlags {
  min?: string;
  max?: string;
  cpu?: string;
  memory?: string;
  scaleDownDelay?: string;
  off?: boolean;
}

/** The policy the flags ask for, on top of the current one (flags not given keep their value). */
export function autoscalePolicy(current: AutoscalePolicy | null | undefined, f: AutoscaleFlags): AutoscalePolicy {
  const base: AutoscalePolicy = current ?? { enabled: false, minReplicas: 1, maxReplicas: 1, targetCpuPercent: 0, targetMemoryPercent: 0, scaleDownStabilizationMs: 0 };
  if (f.off) {
    if (f.min ?? f.max ?? f.cpu ?? f.memory ?? f.scaleDownDelay) throw new CliError('--off takes no other autoscale flag');
    return { ...base, enabled: false };
  }
  const fresh = !current?.enabled;
  if (fresh && (f.min === undefined || f.max === undefined)) throw new CliError('--min and --max are required to turn autoscaling on');
  if (fresh && f.cpu === undefined && f.memory === undefined) throw new CliError('--cpu or --memory (target percent) is required to turn autoscaling on');
  const p: AutoscalePolicy = { ...base, enabled: true };
  if (fresh) {
    p.targetCpuPercent = 0;
    p.targetMemoryPercent = 0;
  }
  if (f.min !== undefined) p.minReplicas = parseInteger(f.min, '--min', 1);
  if (f.max !== undefined) p.maxReplicas = parseInteger(f.max, '--max', 1);
  if (f.cpu !== undefined) p.targetCpuPercent = parseInteger(f.cpu, '--cpu', 0);
  if (f.memory !== undefined) p.targetMemoryPercent = parseInteger(f.memory, '--memory', 0);
  if (f.scaleDownDelay !== undefined) p.scaleDownStabilizationMs = parseDuration(f.scaleDownDelay, '--scale-down-delay');
  if (p.minReplicas > p.maxReplicas) throw new CliError(`--min ${p.minReplicas} is greater than --max ${p.maxReplicas}`);
  return p;
}

export function describePolicy(p: AutoscalePolicy): string {
  if (!p.enabled) return 'off';
  const targets = [p.targetCpuPercent ? `cpu ${p.targetCpuPercent}%` : '', p.targetMemoryPercent ? `memory ${p.targetMemoryPercent}%` : ''].filter(Boolean).join(', ');
  return `${p.minReplicas}..${p.maxReplicas} replicas, target ${targets}${p.scaleDownStabilizationMs ? `, scale-down delay ${Math.round(Number(p.scaleDownStabilizationMs) / 1000)}s` : ''}`;
}

export function serviceAutoscaleCommand(io: CliIO = processIO()): Command {
  return new Command('autoscale')
    .description('Set or turn off the autoscaling policy of a replicated service')
    .argument('<service>', 'service name or id')
    .option('--min <replicas>', 'fewest replicas')
    .option('--max <replicas>', 'most replicas')
    .option('--cpu <percent>', 'target average CPU use, in percent of the reservation (or limit); 0 = not used')
    .option('--memory <percent>', 'target average memory use, in percent of the reservation (or limit); 0 = not used')
    .option('--scale-down-delay <duration>', 'stabilisation window before scaling down (default 5m)')
    .option('--off', 'turn autoscaling off (replicas stay where they are)')
    .action(async (service: string, _o: unknown, c: Command) =>
      withApi(io, c, async (api) => {
        const f = c.opts<AutoscaleFlags>();
        const svc = (await api.getService({ service })).service;
        if (!svc?.spec) throw new CliError(`service ${service} has no spec`);
        const autoscale = autoscalePolicy(svc.spec.autoscale, f);
        const spec: ServiceSpec = { ...svc.spec, autoscale };
        try {
          const r = await api.updateService({ service: svc.id, version: svc.meta?.version ?? 0, spec, force: false });
          io.out(`${r.service?.spec?.name ?? service}: autoscale ${describePolicy(autoscale)}\n`);
        } catch (e) {
          throw new CliError(describeError(e));
        }
      }),
    );
}
