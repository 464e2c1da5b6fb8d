// convoy context create|ls|use|rm|inspect|show: named clusters, as `docker
// context`. A context is a manager address and a client bundle directory,
// kept in the per-user config file (common/client-config.ts) under
// "contexts"; `use` sets "currentContext", the default for every command;
// --context NAME or $CONVOY_CONTEXT picks one for a single command. The
// context "default" is the file's own "host" and "tlsDir" (or the built-in
// defaults): it always exists and cannot be removed. No verb here talks to
// a manager; a refused input names the field and writes nothing.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Command } from 'commander';
import { readClientConfig, writeClientConfig, type ClientConfig, type ClientContext } from '../../common/client-config';
import { CliError, DEFAULT_HOST, guarded, resolveHost, type CliIO } from '../client';
import { json, parseFormat, table } from '../format';
import { configPath, CONTEXT_ENV, currentContextName, DEFAULT_CONTEXT } from '../tls';

/** Docker's context names: a letter or digit, then letters, digits, _ . + - (64 at most). */
export const CONTEXT_NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.+-]{0,63}$/;
/** Contexts one file holds: more than anyone switches between, a bound on what the CLI reads and lists. */
export const MAX_CONTEXTS = 200;
const DESCRIPTION_MAX = 256;
const BUNDLE_FILES = ['ca.pem', 'cert.pem', 'key.pem'];

function checkName(name: string, what = 'NAME'): void {
  if (!CONTEXT_NAME_RE.test(name)) throw new CliError(`${what}: "${name.slice(0, 80)}" is not a context name (a letter or digit, then letters, digits, _ . + -; at most 64)`);
}

function load(io: CliIO): ClientConfig {
  try {
    return readClientConfig(io.env);
  } catch (e) {
    throw new CliError((e as Error).message);
  }
}

/** The context of the file's own settings, as `ls` and `inspect` show it. */
function defaultContext(c: ClientConfig): ClientContext {
  return { host: c.host || DEFAULT_HOST, tlsDir: c.tlsDir || '', description: 'the config file\'s own "host" and "tlsDir" (or the defaults)' };
}

function find(c: ClientConfig, name: string): ClientContext {
  if (name === DEFAULT_CONTEXT) return defaultContext(c);
  const ctx = c.contexts?.[name];
  if (!ctx) throw new CliError(`context "${name}" does not exist (convoy context ls)`);
  return ctx;
}

/** The bundle directory, absolute, holding ca.pem, cert.pem and key.pem; else a refusal naming the path. */
function checkBundle(dir: string, cwd: string): string {
  const abs = path.resolve(cwd, dir);
  for (const f of BUNDLE_FILES) {
    const p = path.join(abs, f);
    if (!fs.existsSync(p)) throw new CliError(`--tls-dir: ${p} does not exist (a bundle from \`convoy user create\` holds ${BUNDLE_FILES.join(', ')})`);
  }
  return abs;
}

function createCommand(io: CliIO): Command {
  return new Command('create')
    .description('Create a context: a manager address and the client bundle to reach it with')
    .argument('<name>', 'context name')
    .requiredOption('-H, --host <host:port>', 'a manager of the cluster')
    .requiredOption('--tls-dir <dir>', 'client bundle: ca.pem, cert.pem, key.pem')
    .option('--description <text>', 'what the cluster is')
    .action(async (name: string, opts: { host: string; tlsDir: string; description?: string }) =>
      guarded(io, async () => {
        checkName(name);
        if (name === DEFAULT_CONTEXT) throw new CliError(`NAME: "${DEFAULT_CONTEXT}" is the config file's own settings: choose another name`);
        const c = load(io);
        if (c.contexts?.[name]) throw new CliError(`context "${name}" already exists (convoy context rm ${name} first)`);
        if (Object.keys(c.contexts ?? {}).length >= MAX_CONTEXTS) throw new CliError(`${configPath(io.env)}: already ${MAX_CONTEXTS} contexts (the most it holds)`);
        const host = resolveHost(opts.host, {});
        const tlsDir = checkBundle(opts.tlsDir, io.env.PWD || process.cwd());
        if (opts.description !== undefined && Buffer.byteLength(opts.description) > DESCRIPTION_MAX) throw new CliError(`--description: longer than ${DESCRIPTION_MAX} bytes`);
        const ctx: ClientContext = { host, tlsDir, ...(opts.description ? { description: opts.description } : {}) };
        writeClientConfig({ ...c, contexts: { ...(c.contexts ?? {}), [name]: ctx } }, io.env);
        io.out(`${name}\n`);
      }),
    );
}

function lsCommand(io: CliIO): Command {
  return new Command('ls')
    .alias('list')
    .description('List contexts (* marks the one in effect)')
    .option('--format <format>', 'table (default) or json')
    .option('-q, --quiet', 'only names')
    .action(async (opts: { format?: string; quiet?: boolean }) =>
      guarded(io, async () => {
        const format = parseFormat(opts.format);
        const c = load(io);
        const current = currentContextName(io.env, c);
        const all: [string, ClientContext][] = [[DEFAULT_CONTEXT, defaultContext(c)], ...Object.entries(c.contexts ?? {}).sort((a, b) => a[0].localeCompare(b[0]))];
        if (opts.quiet) io.out(all.map(([n]) => `${n}\n`).join(''));
        else if (format === 'json') io.out(json(all.map(([n, x]) => ({ name: n, current: n === current, ...x }))));
        else io.out(table(['NAME', 'DESCRIPTION', 'HOST', 'TLS DIR'], all.map(([n, x]) => [`${n}${n === current ? ' *' : ''}`, x.description ?? '', x.host, x.tlsDir])));
      }),
    );
}

function useCommand(io: CliIO): Command {
  return new Command('use')
    .description('Make a context the default for every command')
    .argument('<name>', 'context name ("default": the config file\'s own settings)')
    .action(async (name: string) =>
      guarded(io, async () => {
        const c = load(io);
        find(c, name);
        const next: ClientConfig = { ...c, currentContext: name === DEFAULT_CONTEXT ? undefined : name };
        writeClientConfig(next, io.env);
        io.out(`${name}\n`);
        if (io.env[CONTEXT_ENV] && io.env[CONTEXT_ENV] !== name) io.err(`warning: $${CONTEXT_ENV} (or --context) is "${io.env[CONTEXT_ENV]}" and overrides it in this shell\n`);
      }),
    );
}

function rmCommand(io: CliIO): Command {
  return new Command('rm')
    .alias('remove')
    .description('Remove contexts')
    .argument('<name...>', 'context names')
    .option('-f, --force', 'remove the context in use too (the default context is then in use)')
    .action(async (names: string[], opts: { force?: boolean }) =>
      guarded(io, async () => {
        const c = load(io);
        const contexts = { ...(c.contexts ?? {}) };
        // Every name is checked before anything is written.
        for (const n of names) {
          if (n === DEFAULT_CONTEXT) throw new CliError(`context "${DEFAULT_CONTEXT}" cannot be removed`);
          if (!contexts[n]) throw new CliError(`context "${n}" does not exist (convoy context ls)`);
          if (n === c.currentContext && !opts.force) throw new CliError(`context "${n}" is in use: \`convoy context use default\` first, or --force`);
        }
        for (const n of names) delete contexts[n];
        writeClientConfig({ ...c, contexts, currentContext: c.currentContext && names.includes(c.currentContext) ? undefined : c.currentContext }, io.env);
        io.out(names.map((n) => `${n}\n`).join(''));
      }),
    );
}

function inspectCommand(io: CliIO): Command {
  return new Command('inspect')
    .description('Show contexts as JSON (the one in effect when none is named)')
    .argument('[name...]', 'context names')
    .action(async (names: string[]) =>
      guarded(io, async () => {
        const c = load(io);
        const want = names.length ? names : [currentContextName(io.env, c)];
        io.out(json(want.map((n) => ({ name: n, ...find(c, n) }))));
      }),
    );
}

function showCommand(io: CliIO): Command {
  return new Command('show').description('Print the name of the context in effect').action(async () =>
    guarded(io, async () => {
      io.out(`${currentContextName(io.env, load(io))}\n`);
    }),
  );
}

export function contextVerbs(io: CliIO): Command[] {
  return [createCommand(io), lsCommand(io), useCommand(io), rmCommand(io), inspectCommand(io), showCommand(io)];
}
