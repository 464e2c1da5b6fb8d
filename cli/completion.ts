// Shell completion: `convoy completion bash|zsh` prints a script that, on
// every TAB, runs the hidden `convoy __complete WORD...` with the words of
// the command line up to the one being completed (possibly empty), and
// offers what it prints, one candidate a line. __complete reads the command
// tree itself (verbs and flags as commander knows them, so completion never
// falls behind a new verb) and asks the manager, with a short deadline,
// for the names a positional or a flag takes: services, nodes (hostnames),
// tasks (short ids), networks; contexts come from the config file. Any
// failure (no manager, no certificate, a timeout) completes nothing and
// prints nothing on stderr: a TAB never spoils the prompt.
import { Command, type Option } from 'commander';
import { readClientConfig } from '../common/client-config';
import { CliError, guarded, hostOf, securityOf, type CliIO, type ControlApi } from './client';
import { HOST_ENV } from './client';
import { CONTEXT_ENV, DEFAULT_CONTEXT, TLS_DIR_ENV } from './tls';
import { nodeHostname, shortId } from './format';

/** How long __complete waits for the manager before completing nothing. */
export const COMPLETE_DEADLINE_MS = 1_500;
/** Candidates printed at most (a shell shows no more than this usefully). */
export const MAX_CANDIDATES = 500;
/** Words of a command line taken at most. */
const MAX_WORDS = 200;

export type NameKind = 'service' | 'node' | 'task' | 'network' | 'context' | 'secret' | 'config';

/** What the positionals of a verb name ("service rm" → services). */
const POSITIONALS: Record<string, NameKind> = {
  'service inspect': 'service',
  'service ps': 'service',
  'service update': 'service',
  'service scale': 'service',
  'service rollback': 'service',
  'service rm': 'service',
  'service logs': 'service',
  'node inspect': 'node',
  'node ps': 'node',
  'node update': 'node',
  'node rm': 'node',
  'node promote': 'node',
  'node demote': 'node',
  'task inspect': 'task',
  'task logs': 'task',
  'task exec': 'task',
  'network inspect': 'network',
  'network rm': 'network',
  'context use': 'context',
  'context rm': 'context',
  'context inspect': 'context',
  'secret inspect': 'secret',
  'secret rm': 'secret',
  'secret rotate': 'secret',
  'config inspect': 'config',
  'config rm': 'config',
  'config rotate': 'config',
};
/** Verbs whose first positional only is a name (the rest is a command line). */
const FIRST_ONLY = new Set(['task exec', 'service update', 'node update']);

/** What a flag's value names. */
const FLAG_NAMES: Record<string, NameKind> = {
  '--network': 'network',
  '--network-add': 'network',
  '--network-rm': 'network',
  '--node': 'node',
  '--service': 'service',
  '--context': 'context',
  '--secret': 'secret',
  '--secret-add': 'secret',
  '--secret-rm': 'secret',
  '--config': 'config',
  '--config-add': 'config',
  '--config-rm': 'config',
};
/** Flags whose values are a fixed list. */
const FLAG_VALUES: Record<string, string[]> = {
  '--format': ['table', 'json'],
  '--mode': ['replicated', 'global'],
  '--placement-strategy': ['spread', 'binpack'],
  '--role': ['worker', 'manager'],
  '--availability': ['active', 'pause', 'drain'],
  '--restart-condition': ['none', 'on-failure', 'any'],
  '--update-order': ['start-first', 'stop-first'],
  '--rollback-order': ['start-first', 'stop-first'],
  '--update-failure-action': ['pause', 'continue', 'rollback'],
  '--rollback-failure-action': ['pause', 'continue'],
};

export type NameSource = (kind: NameKind) => Promise<string[]>;

const visible = (c: Command) => !(c as unknown as { _hidden?: boolean })._hidden;
const takesValue = (o: Option) => o.required || o.optional;

function findOption(cmds: readonly Command[], flag: string): Option | undefined {
  for (let i = cmds.length - 1; i >= 0; i--) {
    const o = cmds[i].options.find((x) => x.long === flag || x.short === flag);
    if (o) return o;
  }
  return undefined;
}

/**
 * The candidates for the last word of `words` (the words after `convoy`),
 * filtered by its prefix. `names` answers for the cluster's objects.
 */
export async function completeWords(root: Command, words: readonly string[], names: NameSource): Promise<string[]> {
  const w = words.slice(0, MAX_WORDS);
  const cur = w.length ? w[w.length - 1] : '';
  const path: Command[] = [root];
  let positionals = 0;
  let expectValueOf: Option | undefined;
  let afterDashes = false;
  for (const word of w.slice(0, -1)) {
    const cmd = path[path.length - 1];
    if (expectValueOf) {
      expectValueOf = undefined;
      continue;
    }
    if (word === '--') {
      afterDashes = true;
      continue;
    }
    if (!afterDashes && word.startsWith('-') && word.length > 1) {
      if (word.includes('=')) continue;
      const o = findOption(path, word);
      if (o && takesValue(o)) expectValueOf = o;
      continue;
    }
    const sub = positionals === 0 ? cmd.commands.find((c) => c.name() === word || c.aliases().includes(word)) : undefined;
    if (sub) path.push(sub);
    else positionals++;
  }
  const cmd = path[path.length - 1];
  const verb = path
    .slice(1)
    .map((c) => c.name())
    .join(' ');
  const pick = (xs: Iterable<string>) => [...new Set(xs)].filter((x) => x.startsWith(cur)).sort().slice(0, MAX_CANDIDATES);

  if (expectValueOf) {
    const flag = expectValueOf.long ?? '';
    if (FLAG_VALUES[flag]) return pick(FLAG_VALUES[flag]);
    const kind = FLAG_NAMES[flag];
    return kind ? pick(await names(kind)) : [];
  }
  if (cur.startsWith('-') && !afterDashes) {
    const flags: string[] = [];
    for (const c of path) for (const o of c.options) if (!o.hidden) flags.push(...[o.long, o.short].filter((x): x is string => !!x));
    if (cmd !== root || !cmd.commands.length) flags.push('--help');
    return pick(flags);
  }
  const subs = cmd.commands.filter(visible);
  if (subs.length && positionals === 0) return pick(subs.map((c) => c.name()));
  if (verb === 'completion') return positionals === 0 ? pick(['bash', 'zsh']) : [];
  const kind = POSITIONALS[verb];
  if (!kind || (FIRST_ONLY.has(verb) && positionals > 0)) return [];
  return pick(await names(kind));
}

/** Names from the cluster (and contexts from the config file); [] on any failure. */
export function clusterNames(io: CliIO, env: NodeJS.ProcessEnv, deadlineMs = COMPLETE_DEADLINE_MS): NameSource {
  let conn: { api: ControlApi; close(): void } | undefined;
  const source: HostSourceLike = { opts: () => ({}), parent: null };
  return async (kind) => {
    try {
      if (kind === 'context') return [DEFAULT_CONTEXT, ...Object.keys(readClientConfig(env).contexts ?? {})];
      conn ??= io.connect(hostOf(source, env), () => securityOf(source, env));
      const api = conn.api;
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new CliError('timeout')), deadlineMs);
      });
      try {
        return await Promise.race([namesOf(api, kind), timeout]);
      } finally {
        clearTimeout(timer);
      }
    } catch {
      return [];
    } finally {
      conn?.close();
      conn = undefined;
    }
  };
}

interface HostSourceLike {
  opts(): Record<string, unknown>;
  parent: HostSourceLike | null;
}

async function namesOf(api: ControlApi, kind: Exclude<NameKind, 'context'>): Promise<string[]> {
  switch (kind) {
    case 'service':
      return (await api.listServices({})).services.map((s) => s.service?.spec?.name ?? '').filter(Boolean);
    case 'node':
      return (await api.listNodes({})).nodes.map(nodeHostname).filter(Boolean);
    case 'task':
      return (await api.listTasks({ desiredStates: ['RUNNING'], currentOnly: true })).tasks.map((t) => shortId(t.id));
    case 'network':
      return (await api.listNetworks({})).networks.map((n) => n.spec?.name ?? '').filter(Boolean);
    case 'secret':
      return (await api.listSecrets({})).secrets.map((s) => s.secret?.spec?.name ?? '').filter(Boolean);
    case 'config':
      return (await api.listConfigs({})).configs.map((s) => s.config?.spec?.name ?? '').filter(Boolean);
  }
}

/** --host, --tls-dir and --context among the words, as the command itself would take them. */
export function envOfWords(words: readonly string[], env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const out = { ...env };
  for (let i = 0; i < words.length - 1; i++) {
    const w = words[i];
    const v = words[i + 1];
    if (w === '-H' || w === '--host') out[HOST_ENV] = v;
    else if (w === '--tls-dir') out[TLS_DIR_ENV] = v;
    else if (w === '--context') out[CONTEXT_ENV] = v;
  }
  return out;
}

export function bashScript(bin = 'convoy'): string {
  return `# convoy completion for bash: source <(${bin} completion bash)
_convoy_complete() {
  local IFS=$'\\n'
  COMPREPLY=( $(${bin} __complete "\${COMP_WORDS[@]:1:COMP_CWORD}" 2>/dev/null) )
}
complete -o default -F _convoy_complete ${bin}
`;
}

export function zshScript(bin = 'convoy'): string {
  return `#compdef ${bin}
# convoy completion for zsh: source <(${bin} completion zsh)
_convoy_complete() {
  local -a candidates
  candidates=("\${(@f)$(${bin} __complete "\${(@)words[2,CURRENT]}" 2>/dev/null)}")
  compadd -- \${candidates:#}
}
(( $+functions[compdef] )) || { autoload -Uz compinit && compinit; }
compdef _convoy_complete ${bin}
`;
}

export function completionCommands(io: CliIO, root: () => Command): Command[] {
  const completion = new Command('completion')
    .description('Print a shell completion script: source <(convoy completion bash) (or zsh)')
    .argument('<shell>', 'bash | zsh')
    .action(async (shell: string) =>
      guarded(io, async () => {
        if (shell === 'bash') io.out(bashScript());
        else if (shell === 'zsh') io.out(zshScript());
        else throw new CliError(`shell: "${shell.slice(0, 40)}" is not bash or zsh`);
      }),
    );
  const hidden = new Command('__complete')
    .description('(for the completion scripts) candidates for the last word')
    .argument('[words...]')
    .helpOption(false)
    .allowUnknownOption()
    .allowExcessArguments()
    .passThroughOptions()
    .action(async (words: string[] | undefined) => {
      try {
        const w = words?.length ? words : [''];
        const got = await completeWords(root(), w, clusterNames(io, envOfWords(w, io.env)));
        if (got.length) io.out(got.join('\n') + '\n');
      } catch {
        /* nothing to offer */
      }
    });
  return [completion, hidden];
}
