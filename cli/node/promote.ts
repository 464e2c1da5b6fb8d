// convoy node promote|demote NODE...: the role a node's tasks are placed by
// (`node.role == manager` in a stack file), as Docker's verbs. Each node is
// read and written back with its version (compare-and-swap), one line per
// failure, exit 1 if any failed.
import { Command } from 'commander';
import { describeError, withApi, type CliIO } from '../client';
import { applyNodeUpdate } from './update';

function roleCommand(io: CliIO, verb: 'promote' | 'demote'): Command {
  const role = verb === 'promote' ? 'manager' : 'worker';
  return new Command(verb)
    .description(`Set the role of one or more nodes to ${role}`)
    .argument('<node...>', 'node id, hostname or id prefix')
    .action(async (nodes: string[], _o: unknown, c: Command) =>
      withApi(io, c, async (api) => {
        let failed = false;
        for (const node of nodes) {
          try {
            const cur = (await api.getNode({ node })).node;
            if (!cur) throw new Error(`node "${node}" not found`);
            if ((cur.spec?.role ?? 'WORKER') === role.toUpperCase()) {
              io.out(`Node ${node} is already a ${role}\n`);
              continue;
            }
            await api.updateNode({ node: cur.id, version: cur.meta?.version ?? 0, spec: applyNodeUpdate(cur.spec, { role }) });
            io.out(`Node ${node} ${verb}d to a ${role}\n`);
          } catch (e) {
            io.err(`convoy: ${describeError(e)}\n`);
            failed = true;
          }
        }
        if (failed) io.setExitCode(1);
      }),
    );
}

export const nodePromoteCommand = (io: CliIO): Command => roleCommand(io, 'promote');
export const nodeDemoteCommand = (io: CliIO): Command => roleCommand(io, 'demote');
