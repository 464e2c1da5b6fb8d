#!/usr/bin/env node
// The `convoy` command: the manager, the agent and every operator verb, one
// folder per noun and one file per verb (as swarmkit's swarmctl). This file
// only assembles them; run() is what the binary and the tests call.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Command, CommanderError } from 'commander';
import { DEFAULT_HOST, HOST_ENV, processIO, reportError, type CliIO } from './client';
import { clusterInfoCommand } from './cluster/info';
import { clusterJoinTokenCommand } from './cluster/join-token';
import { agentCommand } from './daemon/agent';
import { managerCommand } from './daemon/manager';
import { eventsCommand } from './events/mod';
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
import { taskExecCommand } from './task/exec';
import { taskInspectCommand } from './task/inspect';
import { taskLsCommand } from './task/ls';
import { taskLogsCommand } from './task/logs';

const HOST_FLAGS = '-H, --host <host:port>';
const HOST_HELP = `manager to talk to (default $${HOST_ENV} or ${DEFAULT_HOST})`;

/** The version in package.json (dist/cli/main.js and cli/main.ts are both two levels down... or one). */
export function convoyVersion(): string {
  for (const p of [path.join(__dirname, '..', '..', 'package.json'), path.join(__dirname, '..', 'package.json')]) {
    try {
      const pkg = JSON.parse(fs.readFileSync(p, 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'convoy' && pkg.version) return pkg.version;
    } catch {
      /* try the next place */
    }
  }
  return 'unknown';
}

function noun(name: string, description: string, verbs: Command[], opts: { apiVerbs?: boolean } = {}): Command {
  // Positional options: flags after a verb's IMAGE/COMMAND belong to the container (service create).
  const cmd = new Command(name).description(description).enablePositionalOptions();
  for (const v of verbs) {
    if (opts.apiVerbs !== false && !v.options.some((o) => o.long === '--host')) v.option(HOST_FLAGS, HOST_HELP);
    cmd.addCommand(v);
  }
  return cmd;
}

/** Every command of the tree, depth first. */
function walk(cmd: Command): Command[] {
  return [cmd, ...cmd.commands.flatMap(walk)];
}

export function buildProgram(io: CliIO): Command {
  const program = new Command('convoy')
    .description('Convoy: a multi-host container orchestrator in the spirit of Docker Swarm mode')
    .version(convoyVersion(), '-v, --version', 'print the version')
    .option(HOST_FLAGS, HOST_HELP)
    .enablePositionalOptions()
    .showHelpAfterError('(run with --help for usage)')
    .hook('preAction', (root) => {
      // Commands owned elsewhere (logs, autoscale, events, lab) read CONVOY_HOST.
      const host = root.opts<{ host?: string }>().host;
      if (host) io.env[HOST_ENV] = host;
    });

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
  program.addCommand(service);

  program.addCommand(noun('node', 'Manage nodes', [nodeLsCommand(io), nodeInspectCommand(io), nodeUpdateCommand(io), nodeRmCommand(io)]));
  program.addCommand(noun('cluster', 'Cluster-wide information and join tokens', [clusterInfoCommand(io), clusterJoinTokenCommand(io)]));
  program.addCommand(noun('network', 'Manage networks', [networkCreateCommand(io), networkLsCommand(io), networkInspectCommand(io), networkRmCommand(io)]));
  const task = noun('task', 'Inspect tasks', [taskLsCommand(io), taskInspectCommand(io), taskExecCommand(io)]);
  task.addCommand(taskLogsCommand());
  program.addCommand(task);
  program.addCommand(noun('image', 'Push images to a registry', [imagePushCommand(io)], { apiVerbs: false }));
  program.addCommand(eventsCommand());
  program.addCommand(labCommand());
  program.addCommand(managerCommand(io));
  program.addCommand(agentCommand(io));

  // addCommand() does not pass settings down: give every command the same
  // output and error handling (commander's own errors as one `convoy:` line).
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
  const program = buildProgram(recording);
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
