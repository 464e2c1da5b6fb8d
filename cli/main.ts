#!/usr/bin/env node
// The `convoy` command: the manager, the agent and every operator verb, one
// folder per noun and one file per verb (as swarmkit's swarmctl). This file
// only assembles them; run() is what the binary and the tests call.
import { Command, CommanderError } from 'commander';
import { DEFAULT_HOST, HOST_ENV, processIO, reportError, type CliIO } from './client';

// bin/convoy runs the bundled CLI through these two.
export { processIO };
import { clusterInfoCommand } from './cluster/info';
import { clusterJoinTokenCommand } from './cluster/join-token';
import { clusterCaCommand } from './cluster/ca';
import { clusterUpdateCommand } from './cluster/update';
import { clusterTopCommand } from './cluster/top';
import { nodePsCommand } from './node/ps';
import { CONTEXT_ENV, TLS_DIR_ENV } from './tls';
import { contextVerbs } from './context/mod';
import { completionCommands } from './completion';
import { agentCommand } from './daemon/agent';
import { managerCommand } from './daemon/manager';
import { dashboardCommand } from './dashboard/mod';
import { eventsCommand } from './events/mod';
import { versionCommand } from './version';
import { imagePushCommand } from './image/push';
import { labCommand } from './lab/mod';
import { networkCreateCommand } from './network/create';
import { networkInspectCommand } from './network/inspect';
import { networkLsCommand } from './network/ls';
import { networkRmCommand } from './network/rm';
import { nodeInspectCommand } from './node/inspect';
import { nodeLsCommand } from './node/ls';
import { nodeRmCommand } from './node/rm';
import { nodeUpdateCommand } from './node/update';
import { nodeDemoteCommand, nodePromoteCommand } from './node/promote';
import { serviceAutoscaleCommand } from './service/autoscale';
import { serviceCreateCommand } from './service/create';
import { serviceInspectCommand } from './service/inspect';
import { serviceLogsCommand } from './service/logs';
import { serviceLsCommand } from './service/ls';
import { servicePsCommand } from './service/ps';
import { serviceRmCommand } from './service/rm';
import { serviceRollbackCommand } from './service/rollback';
import { serviceScaleCommand } from './service/scale';
import { serviceUpdateCommand } from './service/update';
import { stackVerbs } from './stack/mod';
import { taskExecCommand } from './task/exec';
import { taskInspectCommand } from './task/inspect';
import { taskLsCommand } from './task/ls';
import { taskLogsCommand } from './task/logs';
import { userCreateCommand, userCsrCommand } from './user/create';
import { userLsCommand } from './user/ls';
import { userRmCommand } from './user/rm';
import { fileCreateCommand } from './secret/create';
import { fileInspectCommand } from './secret/inspect';
import { fileLsCommand } from './secret/ls';
import { CONFIG_NOUN, SECRET_NOUN } from './secret/noun';
import { fileRmCommand } from './secret/rm';
import { fileRotateCommand } from './secret/rotate';
import { registryLoginCommand } from './registry/login';
import { convoyVersion } from '../common/version';

const HOST_FLAGS = '-H, --host <host:port>';
const HOST_HELP = `manager to talk to (default $${HOST_ENV}, the config file's "host", or ${DEFAULT_HOST})`;
const TLS_FLAGS = '--tls-dir <dir>';
const TLS_HELP = `client bundle: ca.pem, cert.pem, key.pem (default $${TLS_DIR_ENV}, the config file's "tlsDir", or ~/.convoy/tls)`;

function noun(name: string, description: string, verbs: Command[], opts: { apiVerbs?: boolean } = {}): Command {
  // Positional options: flags after a verb's IMAGE/COMMAND belong to the container (service create).
  const cmd = new Command(name).description(description).enablePositionalOptions();
  for (const v of verbs) {
    if (opts.apiVerbs !== false && !v.options.some((o) => o.long === '--host')) v.option(HOST_FLAGS, HOST_HELP);
    if (opts.apiVerbs !== false && !v.options.some((o) => o.long === '--tls-dir')) v.option(TLS_FLAGS, TLS_HELP);
    cmd.addCommand(v);
  }
  return cmd;
}

/** Every command of the tree, depth first. */
function walk(cmd: Command): Command[] {
  return [cmd, ...cmd.commands.flatMap(walk)];
}

/**
 * The command tree. With `args` (the command line), only the top-level command
 * args[0] names is built when it names one: the rest is never reached.
 */
export function buildProgram(io: CliIO, args: readonly string[] = []): Command {
  const program = new Command('convoy')
    .description('Convoy: a multi-host container orchestrator in the spirit of Docker Swarm mode')
    .version(convoyVersion(), '-v, --version', 'print the version')
    .option(HOST_FLAGS, HOST_HELP)
    .option(TLS_FLAGS, TLS_HELP)
    .option('--context <name>', `the named cluster to use (convoy context ls; default $${CONTEXT_ENV} or \`convoy context use\`)`)
    .enablePositionalOptions()
    .showHelpAfterError('(run with --help for usage)')
    .hook('preAction', (root) => {
      // Commands owned elsewhere (logs, autoscale, events, lab) read CONVOY_HOST.
      const { host, tlsDir, context } = root.opts<{ host?: string; tlsDir?: string; context?: string }>();
      if (context) io.env[CONTEXT_ENV] = context;
      if (host) io.env[HOST_ENV] = host;
      if (tlsDir) io.env[TLS_DIR_ENV] = tlsDir;
    });

  // The top-level commands, each built only when needed: a start that names one (`convoy service ls`)
  // builds that one's tree alone; help, a version, an unknown or abbreviated name build them all.
  const tops: [string, () => Command][] = [
    [
      'service',
      () => {
        const service = noun('service', 'Manage services', [
          serviceCreateCommand(io),
          serviceLsCommand(io),
          servicePsCommand(io),
          serviceInspectCommand(io),
          serviceUpdateCommand(io),
          serviceScaleCommand(io),
          serviceRollbackCommand(io),
          serviceRmCommand(io),
        ]);
        service.addCommand(serviceLogsCommand());
        service.addCommand(serviceAutoscaleCommand());
        return service;
      },
    ],
    ['node', () => noun('node', 'Manage nodes', [nodeLsCommand(io), nodePsCommand(io), nodeInspectCommand(io), nodeUpdateCommand(io), nodePromoteCommand(io), nodeDemoteCommand(io), nodeRmCommand(io)])],
    ['cluster', () => noun('cluster', 'Cluster-wide information, settings, the CA and join tokens', [clusterInfoCommand(io), clusterTopCommand(io), clusterUpdateCommand(io), clusterJoinTokenCommand(io), clusterCaCommand(io)])],
    ['network', () => noun('network', 'Manage networks', [networkCreateCommand(io), networkLsCommand(io), networkInspectCommand(io), networkRmCommand(io)])],
    ...(
      [
        [SECRET_NOUN, 'Manage secrets (values sealed in etcd, delivered to tmpfs)'],
        [CONFIG_NOUN, 'Manage configs'],
      ] as const
    ).map(([n, what]): [string, () => Command] => [n.kind, () => noun(n.kind, what, [fileCreateCommand(io, n), fileLsCommand(io, n), fileInspectCommand(io, n), fileRmCommand(io, n), fileRotateCommand(io, n)])]),
    ['registry', () => noun('registry', 'Registry credentials kept in the cluster', [registryLoginCommand(io)])],
    [
      'task',
      () => {
        const task = noun('task', 'Inspect tasks', [taskLsCommand(io), taskInspectCommand(io), taskExecCommand(io)]);
        task.addCommand(taskLogsCommand());
        return task;
      },
    ],
    ['stack', () => noun('stack', 'Manage stacks: applications described by compose files', stackVerbs(io))],
    ['user', () => noun('user', 'Manage users (operator identities: admin, operator, viewer)', [userCreateCommand(io), userCsrCommand(io), userLsCommand(io), userRmCommand(io)])],
    ['image', () => noun('image', 'Push images to a registry', [imagePushCommand(io)], { apiVerbs: false })],
    ['context', () => noun('context', 'Manage contexts: named clusters to switch between (as docker context)', contextVerbs(io), { apiVerbs: false })],
    ['events', () => eventsCommand()],
    ['dashboard', () => dashboardCommand(io)],
    ['version', () => versionCommand(io).option(HOST_FLAGS, HOST_HELP).option(TLS_FLAGS, TLS_HELP)],
    ['lab', () => labCommand()],
    ['manager', () => managerCommand(io)],
    ['agent', () => agentCommand(io)],
  ];
  const named = tops.some(([n]) => n === args[0]);
  for (const [n, build] of tops) {
    if (named && n !== args[0]) continue;
    const cmd = build();
    // The name the table dispatches on is the command's own.
    if (cmd.name() !== n) throw new Error(`cli/main.ts: top-level command ${n} is named ${cmd.name()}`);
    program.addCommand(cmd);
  }
  // Completion walks the whole tree: its verbs are not in the table, so naming one builds every command.
  if (!named) for (const c of completionCommands(io, () => program)) program.addCommand(c, { hidden: c.name().startsWith('__') });

  for (const c of walk(program)) {
    c.exitOverride();
    c.configureOutput({
      writeOut: (s) => io.out(s),
      writeErr: (s) => io.err(s),
      outputError: (s, write) => write(`convoy: ${s.replace(/^error: /, '')}`),
    });
  }
  return program;
}

/** Parses argv (without node and script) and runs the verb; resolves to the exit status. */
export async function run(args: string[], io: CliIO): Promise<number> {
  let code = 0;
  const recording: CliIO = {
    ...io,
    setExitCode: (c) => {
      code = c;
      io.setExitCode(c);
    },
  };
  const program = buildProgram(recording, args);
  try {
    await program.parseAsync(args, { from: 'user' });
  } catch (e) {
    // Help and --version end as a CommanderError with exit code 0; usage
    // errors were already printed by commander.
    if (e instanceof CommanderError) code = e.exitCode;
    else {
      reportError(recording, e);
      code = code || 1;
    }
    // `convoy` alone prints help, which commander reports as exit status 1.
    if (e instanceof CommanderError && e.code === 'commander.help') code = 0;
  }
  return code;
}

if (require.main === module) {
  run(process.argv.slice(2), processIO()).then((code) => {
    if (code) process.exitCode = code;
  });
}
