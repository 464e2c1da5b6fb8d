// convoy stack deploy|config|ls|services|ps|rm (docs/stacks.md). The compose
// loader (and the yaml parser) is loaded by the verbs that read files, when
// they run, so `convoy --help` and `service ls` never load it.
import { Command, Option } from 'commander';
import type { Service } from '../../proto/mod';
import { CliError, guarded, withApi, type CliIO, type ControlApi } from '../client';
import { collect } from '../flags';
import { addOutputOptions, json, parseFormat, shortId, table, type OutputFlags } from '../format';
import { renderServices } from '../service/ls';
import { printTasks, taskFilters, type TaskListFlags } from '../task/ls';
import { waitForServices, waitTimeoutMs } from '../service/progress';

const NAMESPACE_LABEL = 'com.docker.stack.namespace';

interface DeployFlags {
  composeFile?: string[];
  envFile?: string[];
  prune?: boolean;
  resolveImage?: string;
  withRegistryAuth?: boolean;
  quiet?: boolean;
  detach?: boolean;
  timeout?: string;
}

/** Refusals of the loader are StackErrors: shown as one line, like every other CLI error. */
function asCliError(e: unknown): unknown {
  return e instanceof Error && e.name === 'StackError' ? new CliError(e.message) : e;
}

async function stackServices(api: ControlApi, stack: string): Promise<Service[]> {
  const r = await api.listServices({ name: '', labels: { [NAMESPACE_LABEL]: stack } });
  return r.services.map((e) => e.service as Service).filter((s) => s.spec?.labels?.[NAMESPACE_LABEL] === stack);
}

function deployCommand(io: CliIO): Command {
  return new Command('deploy')
    .description('Deploy a new stack or update an existing one from compose files')
    .argument('<stack>', 'stack name')
    .addOption(new Option('-c, --compose-file <file>', 'compose file (repeatable: later files are merged over earlier ones)').argParser(collect))
    .addOption(new Option('--env-file <file>', 'read variables for interpolation from a file (repeatable; this shell wins)').argParser(collect))
    .option('--prune', 'remove services of the stack that the files no longer define')
    .addOption(new Option('--resolve-image <when>', 'pin images to their digest at the registry: always | changed | never').choices(['always', 'changed', 'never']).default('always'))
    .option('--with-registry-auth', 'give the nodes the registry credentials kept by convoy registry login for each image')
    .option('-q, --quiet', 'print warnings and errors only')
    .option('-d, --detach', 'return once every object is written, without waiting for the services to converge')
    .option('--timeout <duration>', 'give up waiting after this long (exit status 1); default: until converged or failed')
    .action(async (stack: string, o: DeployFlags, c: Command) => {
      let plan: import('./convert').StackPlan;
      try {
        if (!o.composeFile?.length) throw new CliError('-c, --compose-file: at least one compose file is required');
        const { loadStack } = await import('./load');
        plan = loadStack(stack, { files: o.composeFile, envFiles: o.envFile, env: io.env });
      } catch (e) {
        return guarded(io, async () => {
          throw asCliError(e);
        });
      }
      let timeoutMs: number | undefined;
      try {
        timeoutMs = waitTimeoutMs(o);
      } catch (e) {
        return guarded(io, async () => {
          throw e;
        });
      }
      for (const w of plan.warnings) io.err(`convoy: warning: ${w}\n`);
      // As service create --with-registry-auth: the manager attaches the login kept for each image's registry.
      if (o.withRegistryAuth) for (const s of plan.services) if (s.spec.container) s.spec.container.withRegistryAuth = true;
      const out = o.quiet ? () => undefined : (s: string) => io.out(s);
      await withApi(io, c, async (api) => {
        const { deployStack } = await import('./deploy');
        const mode = (o.resolveImage ?? 'always') as import('./deploy').ResolveMode;
        const resolveImage = mode === 'never' ? undefined : (await import('./resolve')).imageResolver(io.env);
        try {
          const r = await deployStack(api, plan, { prune: o.prune, out, resolveMode: mode, resolveImage, warn: (w) => io.err(`convoy: warning: ${w}\n`) });
          if (!o.quiet && !r.created.length && !r.updated.length && !r.removed.length && !r.networksCreated.length) io.out(`Stack ${stack} is up to date (${r.unchanged.length} services unchanged)\n`);
          // As `docker stack deploy --detach=false`: the services written, followed together until each converged.
          if (!o.detach) await waitForServices(io, api, r.written, 'deploy', { timeoutMs, quiet: o.quiet });
        } catch (e) {
          throw asCliError(e);
        }
      });
    });
}

function configCommand(io: CliIO): Command {
  return new Command('config')
    .description('Print the merged, interpolated compose files (as docker stack config)')
    .addOption(new Option('-c, --compose-file <file>', 'compose file (repeatable)').argParser(collect))
    .addOption(new Option('--env-file <file>', 'variables for interpolation (repeatable)').argParser(collect))
    .option('--skip-interpolation', 'print the files merged but not interpolated')
    .action(async (o: DeployFlags & { skipInterpolation?: boolean }) =>
      guarded(io, async () => {
        try {
          if (!o.composeFile?.length) throw new CliError('-c, --compose-file: at least one compose file is required');
          const { loadCompose, renderConfig } = await import('./load');
          const l = loadCompose({ files: o.composeFile, envFiles: o.envFile, env: io.env, interpolate: !o.skipInterpolation });
          for (const w of l.warnings) io.err(`convoy: warning: ${w}\n`);
          io.out(renderConfig(l));
        } catch (e) {
          throw asCliError(e);
        }
      }),
    );
}

function lsCommand(io: CliIO): Command {
  const cmd = new Command('ls').alias('list').description('List stacks');
  cmd.option('--format <format>', 'table | json');
  return cmd.action(async (o: { format?: string }, c: Command) =>
    withApi(io, c, async (api) => {
      const r = await api.listServices({ name: '', labels: {} });
      const counts = new Map<string, number>();
      for (const e of r.services) {
        const s = e.service?.spec?.labels?.[NAMESPACE_LABEL];
        if (s) counts.set(s, (counts.get(s) ?? 0) + 1);
      }
      const rows = [...counts].sort(([a], [b]) => a.localeCompare(b));
      if (parseFormat(o.format) === 'json') io.out(json(rows.map(([name, services]) => ({ name, services }))));
      else io.out(table(['NAME', 'SERVICES'], rows.map(([n, k]) => [n, String(k)])));
    }),
  );
}

function servicesCommand(io: CliIO): Command {
  const cmd = new Command('services').description('List the services of a stack').argument('<stack>', 'stack name');
  addOutputOptions(cmd);
  return cmd.action(async (stack: string, o: OutputFlags, c: Command) =>
    withApi(io, c, async (api) => {
      const r = await api.listServices({ name: '', labels: { [NAMESPACE_LABEL]: stack } });
      const entries = r.services.filter((e) => e.service?.spec?.labels?.[NAMESPACE_LABEL] === stack).sort((a, b) => (a.service?.spec?.name ?? '').localeCompare(b.service?.spec?.name ?? ''));
      if (!entries.length) throw new CliError(`nothing found in stack: ${stack}`);
      if (o.quiet) io.out(entries.map((e) => `${shortId(e.service?.id ?? '', o.trunc === false)}\n`).join(''));
      else if (parseFormat(o.format) === 'json') io.out(json(entries));
      else io.out(renderServices(entries, o.trunc === false));
    }),
  );
}

function psCommand(io: CliIO): Command {
  const cmd = new Command('ps').description('List the tasks of a stack').argument('<stack>', 'stack name');
  addOutputOptions(cmd).option('-f, --filter <filter>', 'desired-state=running, state=failed, node=HOST (repeatable)', collect);
  return cmd.action(async (stack: string, o: TaskListFlags, c: Command) =>
    withApi(io, c, async (api) => {
      const svcs = await stackServices(api, stack);
      if (!svcs.length) throw new CliError(`nothing found in stack: ${stack}`);
      await printTasks(io, api, svcs.map((s) => taskFilters(o.filter ?? [], { service: s.id })), o);
    }),
  );
}

function rmCommand(io: CliIO): Command {
  return new Command('rm')
    .alias('remove')
    .description('Remove stacks: every service, network, secret and config labelled with the stack, nothing else')
    .argument('<stack...>', 'stack names')
    .action(async (stacks: string[], _o: unknown, c: Command) =>
      withApi(io, c, async (api) => {
        const { removeStack } = await import('./deploy');
        let bad = false;
        for (const s of stacks) {
          const r = await removeStack(api, s, (x) => io.out(x));
          if (!r.removed.length && !r.failed.length) {
            io.err(`convoy: nothing found in stack: ${s}\n`);
            bad = true;
          }
          for (const f of r.failed) {
            io.err(`convoy: ${f}\n`);
            bad = true;
          }
        }
        if (bad) io.setExitCode(1);
      }),
    );
}

export function stackVerbs(io: CliIO): Command[] {
  return [deployCommand(io), configCommand(io), lsCommand(io), servicesCommand(io), psCommand(io), rmCommand(io)];
}
