// convoy image push DIR|TARBALL REF [--insecure]: a root filesystem directory
// becomes a one-layer image; an OCI image layout (a directory with
// index.json, or a tarball of one, e.g. `skopeo copy ... oci-archive:`) is
// pushed as is. No Docker needed.
import type * as childProcess from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { Command } from 'commander';
// The image code (agent/runtime/image) is loaded by the verb when it runs, not by every `convoy ...`.
import type { ImageSpec, PushResult } from '../../agent/runtime/image/push';
import { CliError, guarded, type CliIO } from '../client';
import { collect, splitWords } from '../flags';

export interface PushFlags {
  insecure?: boolean;
  entrypoint?: string;
  cmd?: string;
  env?: string[];
  workdir?: string;
  user?: string;
  expose?: string[];
}

/** The image config of a root filesystem pushed as an image. */
export function imageSpecFromFlags(f: PushFlags): ImageSpec {
  const spec: ImageSpec = {};
  if (f.entrypoint) spec.entrypoint = splitWords(f.entrypoint);
  if (f.cmd) spec.cmd = splitWords(f.cmd);
  if (f.env?.length) spec.env = ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', ...f.env];
  if (f.workdir) spec.workingDir = f.workdir;
  if (f.user) spec.user = f.user;
  if (f.expose?.length) spec.exposedPorts = f.expose;
  return spec;
}

/** What SOURCE is: an OCI layout directory, a root filesystem directory, or a tarball of either. */
export function sourceKind(source: string): 'oci-layout' | 'rootfs' | 'tarball' {
  let st: fs.Stats;
  try {
    st = fs.statSync(source);
  } catch {
    throw new CliError(`${source}: no such file or directory`);
  }
  if (st.isDirectory()) return fs.existsSync(path.join(source, 'index.json')) && fs.existsSync(path.join(source, 'oci-layout')) ? 'oci-layout' : 'rootfs';
  if (st.isFile()) return 'tarball';
  throw new CliError(`${source}: not a directory or a tarball`);
}

async function push(source: string, ref: string, f: PushFlags): Promise<PushResult> {
  const [{ pushDirectory, pushOciLayout }, { parseReference }] = await Promise.all([import('../../agent/runtime/image/push'), import('../../agent/runtime/image/reference')]);
  try {
    parseReference(ref);
  } catch (e) {
    throw new CliError(`invalid reference "${ref}": ${(e as Error).message}`);
  }
  const registry = { insecureRegistries: f.insecure ? [parseReference(ref).registry] : [] };
  const kind = sourceKind(source);
  if (kind === 'oci-layout') return pushOciLayout(source, ref, registry);
  if (kind === 'rootfs') return pushDirectory(source, ref, imageSpecFromFlags(f), registry);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'convoy-push-'));
  try {
    // tar picks the compression (gzip, zstd, none) itself.
    // Required here: child_process is for this verb only, not for every start of the CLI.
    const { execFile } = require('node:child_process') as typeof childProcess;
    await promisify(execFile)('tar', ['-xf', path.resolve(source), '-C', tmp]);
    return await push(tmp, ref, f);
  } catch (e) {
    if (e instanceof CliError) throw e;
    const err = e as { stderr?: string; message: string };
    throw new CliError(`${source}: ${(err.stderr || err.message).trim().split('\n')[0]}`);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

export function imagePushCommand(io: CliIO): Command {
  return new Command('push')
    .description('Push a root filesystem directory, an OCI image layout, or a tarball of either to a registry')
    .argument('<source>', 'DIR or TARBALL')
    .argument('<ref>', 'registry/repository:tag')
    .option('--insecure', 'speak plain HTTP to the registry')
    .option('--entrypoint <command>', 'image entrypoint (root filesystem only)')
    .option('--cmd <command>', 'image command (root filesystem only)')
    .option('-e, --env <KEY=value>', 'image environment (root filesystem only, repeatable)', collect)
    .option('-w, --workdir <dir>', 'image working directory (root filesystem only)')
    .option('-u, --user <user>', 'image user (root filesystem only)')
    .option('--expose <port>', 'exposed port, 80 or 53/udp (root filesystem only, repeatable)', collect)
    .action(async (source: string, ref: string, f: PushFlags) =>
      guarded(io, async () => {
        const r = await push(source, ref, f);
        io.out(`${r.ref}@${r.digest} (${r.uploaded.length} blob${r.uploaded.length === 1 ? '' : 's'} uploaded)\n`);
      }),
    );
}
