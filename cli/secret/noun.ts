// What `convoy secret` and `convoy config` share: the two nouns are one
// kind of object (a named value a container gets as a file) with the same
// verbs; the noun picks the RPCs. A secret's value never comes back from the
// manager; a config's does (`config inspect`).
import * as fs from 'node:fs';
import type { Config, Secret } from '../../proto/mod';
import { CliError, type ControlApi } from '../client';

/** Docker's limit; the manager enforces it too (manager/spec/limits.ts). */
export const VALUE_MAX_BYTES = 500 * 1024;

export type FileObject = Secret | Config;
export interface FileEntry {
  obj: FileObject;
  services: string[];
  /** Configs' inspect only. */
  data?: Buffer;
}

export interface FileNoun {
  kind: 'secret' | 'config';
  create(api: ControlApi, name: string, labels: Record<string, string>, data: Buffer): Promise<FileEntry>;
  get(api: ControlApi, ref: string): Promise<FileEntry>;
  list(api: ControlApi): Promise<FileEntry[]>;
  remove(api: ControlApi, ref: string): Promise<void>;
  rotate(api: ControlApi, ref: string, data: Buffer): Promise<FileEntry>;
}

export const SECRET_NOUN: FileNoun = {
  kind: 'secret',
  create: async (api, name, labels, data) => entry(await api.createSecret({ spec: { name, labels }, data })),
  get: async (api, secret) => entry(await api.getSecret({ secret })),
  list: async (api) => (await api.listSecrets({})).secrets.map(entry),
  remove: async (api, secret) => void (await api.removeSecret({ secret })),
  rotate: async (api, secret, data) => entry(await api.rotateSecret({ secret, data })),
};

export const CONFIG_NOUN: FileNoun = {
  kind: 'config',
  create: async (api, name, labels, data) => configEntry(await api.createConfig({ spec: { name, labels }, data })),
  get: async (api, config) => configEntry(await api.getConfig({ config })),
  list: async (api) => (await api.listConfigs({})).configs.map(configEntry),
  remove: async (api, config) => void (await api.removeConfig({ config })),
  rotate: async (api, config, data) => configEntry(await api.rotateConfig({ config, data })),
};

function entry(r: { secret: Secret | null; services: string[] }): FileEntry {
  if (!r.secret) throw new CliError('the manager answered without the secret');
  return { obj: r.secret, services: r.services };
}

function configEntry(r: { config: Config | null; services: string[]; data: Buffer }): FileEntry {
  if (!r.config) throw new CliError('the manager answered without the config');
  return { obj: r.config, services: r.services, data: r.data?.length ? r.data : undefined };
}

/** FILE, or "-" for standard input; refused when empty or over VALUE_MAX_BYTES, before anything is sent. */
export async function readValue(file: string, kind: string, stdin: NodeJS.ReadableStream = process.stdin): Promise<Buffer> {
  let data: Buffer;
  if (file === '-') {
    const chunks: Buffer[] = [];
    let n = 0;
    for await (const c of stdin) {
      const b = Buffer.isBuffer(c) ? c : Buffer.from(c as string);
      n += b.length;
      if (n > VALUE_MAX_BYTES) throw new CliError(`${kind} value from standard input is over ${VALUE_MAX_BYTES / 1024} KiB`);
      chunks.push(b);
    }
    data = Buffer.concat(chunks);
  } else {
    try {
      const st = fs.statSync(file);
      if (!st.isFile()) throw new CliError(`${file}: not a regular file`);
      if (st.size > VALUE_MAX_BYTES) throw new CliError(`${file}: ${st.size} bytes; a ${kind} value is at most ${VALUE_MAX_BYTES / 1024} KiB`);
      data = fs.readFileSync(file);
    } catch (e) {
      if (e instanceof CliError) throw e;
      throw new CliError(`cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
  }
  if (!data.length) throw new CliError(`${file === '-' ? 'standard input' : file}: a ${kind} value must not be empty`);
  return data;
}

/** The object as inspect shows it: no sealed parts (the manager blanks them anyway). */
export function shown(e: FileEntry): Record<string, unknown> {
  const { dataKey: _k, data: _d, ...rest } = e.obj;
  const out: Record<string, unknown> = { ...rest, services: e.services };
  if (e.data) out.data = e.data.toString('base64');
  return out;
}
