// convoy node update [--availability active|pause|drain] [--role] [--label-add k=v] [--label-rm k] NODE
import { Command } from 'commander';
import type { NodeSpec } from '../../proto/mod';
import { CliError, withApi, type CliIO } from '../client';
import { collect, parseLabels } from '../flags';

export interface NodeUpdateFlags {
  availability?: string;
  role?: string;
  labelAdd?: string[];
  labelRm?: string[];
}

const AVAILABILITY = { active: 'ACTIVE', pause: 'PAUSE', drain: 'DRAIN' } as const;
const ROLES = { worker: 'WORKER', manager: 'MANAGER' } as const;

/** The flags applied to a node's current spec. */
export function applyNodeUpdate(cur: NodeSpec | null, f: NodeUpdateFlags): NodeSpec {
  const spec: NodeSpec = { role: 'WORKER', availability: 'ACTIVE', ...(cur ?? {}), labels: { ...(cur?.labels ?? {}) } };
  if (f.availability !== undefined) {
    const a = AVAILABILITY[f.availability.toLowerCase() as keyof typeof AVAILABILITY];
    if (!a) throw new CliError(`--availability: "${f.availability}" is not active, pause or drain`);
    spec.availability = a;
  }
  if (f.role !== undefined) {
    const r = ROLES[f.role.toLowerCase() as keyof typeof ROLES];
    if (!r) throw new CliError(`--role: "${f.role}" is not worker or manager`);
    spec.role = r;
  }
  for (const k of f.labelRm ?? []) {
    if (!(k in spec.labels)) throw new CliError(`--label-rm: node has no label "${k}"`);
    delete spec.labels[k];
  }
  Object.assign(spec.labels, parseLabels(f.labelAdd ?? [], '--label-add'));
  return spec;
}

export function nodeUpdateCommand(io: CliIO): Command {
  return new Command('update')
    .description('Update a node: availability, role, labels')
    .argument('<node>', 'node id, hostname or id prefix')
    .option('--availability <availability>', 'active | pause | drain')
    .option('--role <role>', 'worker | manager')
    .option('--label-add <k=v>', 'add or replace a node label (repeatable)', collect)
    .option('--label-rm <k>', 'remove a node label (repeatable)', collect)
    .action(async (node: string, opts: NodeUpdateFlags, c: Command) =>
      withApi(io, c, async (api) => {
        const cur = (await api.getNode({ node })).node;
        if (!cur) throw new CliError(`node "${node}" not found`);
        const spec = applyNodeUpdate(cur.spec, opts);
        await api.updateNode({ node: cur.id, version: cur.meta?.version ?? 0, spec });
        io.out(`${node}\n`);
      }),
    );
}
