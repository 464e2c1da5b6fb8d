// Talking to the native helper (native/convoy-init.c). The configuration goes
// on fd 3 as NUL-terminated strings; `run` answers on the same fd (Node makes
// extra 'pipe' stdio entries as socketpairs, so fd 3 works both ways).
import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Duplex } from 'node:stream';

export const HELPER_ENV = 'CONVOY_INIT';

/** Finds the helper: $CONVOY_INIT, else agent/runtime/native/build/convoy-init from source or dist/. */
export function findHelper(): string {
  const env = process.env[HELPER_ENV];
  if (env) return env;
  const candidates = [
    path.join(__dirname, 'native', 'build', 'convoy-init'),
    path.join(__dirname, '..', '..', '..', 'agent', 'runtime', 'native', 'build', 'convoy-init'),
  ];
  for (const c of candidates) if (fs.existsSync(c)) return c;
  throw new Error(`native helper convoy-init not found (run \`npm run build:native\`; looked in ${candidates.join(', ')})`);
}

export function encodeRecords(strings: readonly string[]): Buffer {
  for (const s of strings) if (s.includes('\0')) throw new Error(`value contains a NUL byte: ${JSON.stringify(s)}`);
  return Buffer.from(strings.map((s) => s + '\0').join(''), 'utf8');
}

/** Key/value pairs in the helper's order (repeated keys allowed). */
export type Records = [string, string][];

export function flatten(records: Records): string[] {
  const out: string[] = [];
  for (const [k, v] of records) out.push(k, v);
  return out;
}

export interface SpawnedHelper {
  child: ChildProcess;
  channel: Duplex;
}

/** Spawns the helper with `args`, sends `config` on fd 3 and half-closes it. */
export function spawnHelper(helper: string, args: string[], config: Buffer, stdio: StdioOptions, detached: boolean): SpawnedHelper {
  const io = (Array.isArray(stdio) ? [...stdio] : [stdio, stdio, stdio]) as (string | number | null | undefined)[];
  while (io.length < 3) io.push('ignore');
  io[3] = 'pipe';
  const child = spawn(helper, args, { stdio: io as StdioOptions, detached });
  const channel = child.stdio[3] as Duplex | null;
  if (!channel) throw new Error('helper has no fd 3');
  channel.on('error', () => undefined);
  channel.end(config);
  return { child, channel };
}

/** Reads everything the helper writes on fd 3 until it closes it. */
export function readChannel(channel: Duplex): Promise<string> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    channel.on('data', (c: Buffer) => chunks.push(c));
    const done = () => resolve(Buffer.concat(chunks).toString('utf8'));
    channel.on('end', done);
    channel.on('close', done);
  });
}

/** Runs `convoy-init fixup <root>` with the given operations. */
export async function runFixup(helper: string, root: string, ops: string[]): Promise<void> {
  const { child } = spawnHelper(helper, ['fixup', root], encodeRecords(ops), ['ignore', 'ignore', 'pipe'], false);
  const err: Buffer[] = [];
  child.stderr?.on('data', (c: Buffer) => err.push(c));
  const code = await new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (c) => resolve(c));
  });
  if (code !== 0) throw new Error(`convoy-init fixup failed: ${Buffer.concat(err).toString().trim() || `exit ${code}`}`);
}
