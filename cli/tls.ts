// Where the CLI finds its client bundle (ca.pem, cert.pem, key.pem), as the
// docker CLI finds DOCKER_CERT_PATH / ~/.docker:
//
//   --tls-dir DIR  >  $CONVOY_TLS_DIR  >  "tlsDir" in the per-user config file  >  ~/.convoy/tls
//
// The per-user config file is $CONVOY_CONFIG, else ~/.convoy/config.json:
// {"host": "10.41.0.11:7420", "tlsDir": "/path/to/bundle"} (`convoy lab up`
// writes one pointing at the lab's manager and admin bundle; `lab down`
// removes it). "host" is used when neither --host nor $CONVOY_HOST is given.
//
// Contexts (`convoy context`, as `docker context`): --context NAME (or
// $CONVOY_CONTEXT), else the file's "currentContext", selects a named
// cluster whose host and tlsDir stand in for the file's own; "default" is
// the file's own. The flags and $CONVOY_HOST / $CONVOY_TLS_DIR still win.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { readBundle } from '../common/identity';
import { configPath, readClientConfig, type ClientConfig } from '../common/client-config';
import { mtls, type ClientSecurity } from '../proto/client-common';
import { TLS_DIR_ENV } from '../proto/defaults';

export { TLS_DIR_ENV };
export { CONFIG_ENV, configPath } from '../common/client-config';
export type CliConfig = ClientConfig;

/** Names a context for one command (--context sets it too). */
export const CONTEXT_ENV = 'CONVOY_CONTEXT';
/** The context of the config file's own host and tlsDir. */
export const DEFAULT_CONTEXT = 'default';

/** The context in effect: $CONVOY_CONTEXT (--context), else the file's currentContext, else "default". */
export function currentContextName(env: NodeJS.ProcessEnv, c: ClientConfig = readClientConfig(env)): string {
  return env[CONTEXT_ENV] || c.currentContext || DEFAULT_CONTEXT;
}

/** The per-user config file ({} when there is none) as the context in effect sees it. */
export function readConfig(env: NodeJS.ProcessEnv): ClientConfig {
  const c = readClientConfig(env);
  const name = currentContextName(env, c);
  if (name === DEFAULT_CONTEXT) return c;
  const ctx = c.contexts?.[name];
  const from = env[CONTEXT_ENV] ? `--context/$${CONTEXT_ENV}` : `"currentContext" in ${configPath(env)}`;
  if (!ctx) throw new Error(`context "${name}" (${from}) does not exist (convoy context ls)`);
  return { ...c, host: ctx.host, tlsDir: ctx.tlsDir };
}

/** The bundle directory the CLI uses (see the order above), or undefined when none is configured or present. */
export function tlsDirOf(flag: string | undefined, env: NodeJS.ProcessEnv): string | undefined {
  if (flag) return flag;
  if (env[TLS_DIR_ENV]) return env[TLS_DIR_ENV];
  const c = readConfig(env);
  if (c.tlsDir) return c.tlsDir;
  const dflt = path.join(env.HOME || os.homedir(), '.convoy', 'tls');
  return fs.existsSync(path.join(dflt, 'cert.pem')) ? dflt : undefined;
}

/** mtls from the bundle the CLI finds; one line naming what to do when there is none. */
export function clientSecurity(flag: string | undefined, env: NodeJS.ProcessEnv): ClientSecurity {
  const dir = tlsDirOf(flag, env);
  if (!dir)
    throw new Error(`no client certificate: give --tls-dir, set ${TLS_DIR_ENV}, or set "tlsDir" in ${configPath(env)} (a bundle from \`convoy user create\`, or a manager's <data dir>/admin)`);
  return mtls(readBundle(dir));
}
