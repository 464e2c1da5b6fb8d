// convoy user create NAME --role ROLE --out DIR [--csr FILE]
//
// Without --csr: makes the user's private key and a CSR here (the key never
// leaves this machine), has the manager sign it (CreateUser: admin only), and
// writes the client bundle into DIR with Docker's file names: ca.pem,
// cert.pem, key.pem (DIR 0700, files 0600).
//
// With --csr FILE: the operator made the key on their own machine
// (`convoy user csr NAME --out DIR`, or openssl) and sent only the CSR; the
// manager signs it and only cert.pem and ca.pem are written into DIR, which
// may already hold the operator's key.pem (it is never read or touched).
//
// Bad input is refused before anything is generated, sent or written; files
// a bundle already has are never overwritten.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Command } from 'commander';
import { BUNDLE_FILES, isUserRole, USER_ROLES, writeBundle } from '../../common/identity';
import { validateUserName } from '../../proto/users';
import { CliError, guarded, withApi, type CliIO } from '../client';

/** Largest --csr file read (a P-256 CSR is under 1 KiB). */
export const MAX_CSR_BYTES = 16 * 1024;

interface CreateFlags {
  role?: string;
  out?: string;
  csr?: string;
}

/** The CSR file's text, or one line naming the file. */
async function readCsr(file: string): Promise<string> {
  const p = path.resolve(file);
  let st: fs.Stats;
  try {
    st = fs.statSync(p);
  } catch (e) {
    throw new CliError(`--csr: cannot read ${p} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  if (!st.isFile()) throw new CliError(`--csr: ${p} is not a file`);
  if (st.size > MAX_CSR_BYTES) throw new CliError(`--csr: ${p} is ${st.size} bytes (a CSR is at most ${MAX_CSR_BYTES})`);
  const text = fs.readFileSync(p, 'utf8');
  if (!/-----BEGIN CERTIFICATE REQUEST-----[\s\S]+-----END CERTIFICATE REQUEST-----/.test(text)) throw new CliError(`--csr: ${p} is not a PEM certificate signing request`);
  if (text.includes('PRIVATE KEY')) throw new CliError(`--csr: ${p} holds a private key: send the CSR alone`);
  const { checkCsr } = await import('../../common/csr');
  const bad = await checkCsr(text);
  if (bad) throw new CliError(`--csr: ${p}: ${bad}`);
  return text;
}

/** Writes `text` to dir/file, 0600, never over an existing file. */
function writeNew(dir: string, file: string, text: string): void {
  fs.writeFileSync(path.join(dir, file), text, { mode: 0o600, flag: 'wx' });
}

export function userCreateCommand(io: CliIO): Command {
  return new Command('create')
    .description('Create a user (an operator identity) and write its client bundle (ca.pem, cert.pem, key.pem; with --csr: ca.pem and cert.pem)')
    .argument('<name>', 'user name (the certificate CN)')
    .requiredOption('--role <role>', `one of ${USER_ROLES.join(', ')}`)
    .requiredOption('--out <dir>', 'directory to write the bundle into (created 0700)')
    .option('--csr <file>', "sign this CSR (the operator's key stays with them: `convoy user csr`); writes only cert.pem and ca.pem")
    .action(async (name: string, f: CreateFlags, c: Command) =>
      withApi(io, c, async (api) => {
        const bad = validateUserName(name);
        if (bad) throw new CliError(`NAME: ${bad}`);
        const role = f.role ?? '';
        if (!isUserRole(role)) throw new CliError(`--role: "${role}" is not one of ${USER_ROLES.join(', ')}`);
        const out = path.resolve(f.out ?? '');
        const mine = f.csr !== undefined ? [BUNDLE_FILES.ca, BUNDLE_FILES.cert] : Object.values(BUNDLE_FILES);
        const held = mine.filter((x) => fs.existsSync(path.join(out, x)));
        if (held.length) throw new CliError(`--out: ${out} already holds ${held.join(', ')} (not overwritten; choose another directory)`);
        if (fs.existsSync(out) && !fs.statSync(out).isDirectory()) throw new CliError(`--out: ${out} is not a directory`);
        if (f.csr !== undefined) {
          const csr = await readCsr(f.csr);
          const r = await api.createUser({ name, role, csr });
          try {
            fs.mkdirSync(out, { recursive: true, mode: 0o700 });
            writeNew(out, BUNDLE_FILES.cert, r.cert);
            writeNew(out, BUNDLE_FILES.ca, r.ca);
          } catch (e) {
            throw new CliError(`user "${name}" was created but its certificate could not be written to ${out} (${e instanceof Error ? e.message : String(e)}): remove it with \`convoy user rm ${name}\` and create it again`);
          }
          io.out(`user ${name} (${role}) created; ${BUNDLE_FILES.cert} and ${BUNDLE_FILES.ca} in ${out} (the key stays with whoever made the CSR)\n`);
          return;
        }
        // The issuing library is loaded by this verb only (cli/lazy.test.ts).
        const { createKeyAndCsr } = await import('../../common/csr');
        const { keyPem: key, csrPem: csr } = await createKeyAndCsr(name);
        const r = await api.createUser({ name, role, csr });
        try {
          writeBundle(out, { ca: r.ca, cert: r.cert, key });
        } catch (e) {
          throw new CliError(`user "${name}" was created but its bundle could not be written to ${out} (${e instanceof Error ? e.message : String(e)}): remove it with \`convoy user rm ${name}\` and create it again`);
        }
        io.out(`user ${name} (${role}) created; bundle in ${out} (${Object.values(BUNDLE_FILES).join(', ')})\n`);
      }),
    );
}

/**
 * convoy user csr NAME --out DIR: the operator's side of --csr. Makes a
 * P-256 key (DIR/key.pem, 0600; DIR 0700) and DIR/NAME.csr, talks to no
 * manager; the operator sends NAME.csr to an admin, who runs `user create
 * NAME --role R --csr NAME.csr --out X` and sends back X/cert.pem and
 * X/ca.pem to put next to key.pem.
 */
export function userCsrCommand(io: CliIO): Command {
  return new Command('csr')
    .description('Make a private key (key.pem) and a CSR (NAME.csr) here for an admin to sign with `user create --csr`; contacts no manager')
    .argument('<name>', 'user name (the certificate CN the admin will create)')
    .requiredOption('--out <dir>', 'directory for key.pem and NAME.csr (created 0700)')
    .action(async (name: string, f: { out?: string }) =>
      guarded(io, async () => {
      const bad = validateUserName(name);
      if (bad) throw new CliError(`NAME: ${bad}`);
      const out = path.resolve(f.out ?? '');
      const csrFile = `${name}.csr`;
      const held = [BUNDLE_FILES.key, csrFile].filter((x) => fs.existsSync(path.join(out, x)));
      if (held.length) throw new CliError(`--out: ${out} already holds ${held.join(', ')} (not overwritten; choose another directory)`);
      if (fs.existsSync(out) && !fs.statSync(out).isDirectory()) throw new CliError(`--out: ${out} is not a directory`);
      const { createKeyAndCsr } = await import('../../common/csr');
      const { keyPem, csrPem } = await createKeyAndCsr(name);
      fs.mkdirSync(out, { recursive: true, mode: 0o700 });
      writeNew(out, BUNDLE_FILES.key, keyPem);
      writeNew(out, csrFile, csrPem);
      io.out(`key ${path.join(out, BUNDLE_FILES.key)} (keep it here) and ${path.join(out, csrFile)} (send it to an admin: convoy user create ${name} --role ROLE --csr ${csrFile} --out DIR)\n`);
      }),
    );
}
