// convoy version: this client's release and Control API version, then the
// manager's (Control GetVersion, which every role may call). As `docker
// version`, the client part is printed even when no manager answers; the
// verb then ends with the error and exit status 1.
import { Command } from 'commander';
import { convoyVersion } from '../common/version';
import { CONTROL_API_VERSION } from '../proto/defaults';
import { hostOf, withApi, type CliIO, type ControlResponse } from './client';
import { json, keyValues, parseFormat } from './format';

export interface VersionReport {
  client: { version: string; apiVersion: string };
  server?: ControlResponse<'getVersion'> & { host: string };
}

export function prettyVersion(r: VersionReport): string {
  let s = 'Client:\n' + indent(keyValues([['Version', r.client.version], ['API version', r.client.apiVersion]]));
  if (r.server) {
    const m = r.server;
    s += 'Manager:\n' + indent(keyValues([['Version', m.version], ['API version', m.apiVersion], ['Manager', `${m.managerId} at ${m.host}${m.leader ? ' (leader)' : ''}`]]));
    // Same major: every call this client makes exists there (minor versions only add).
    if (m.apiVersion.split('.')[0] !== r.client.apiVersion.split('.')[0]) s += `warning: API ${r.client.apiVersion} (client) and ${m.apiVersion} (manager) differ in their major version\n`;
  }
  return s;
}

function indent(s: string): string {
  return s.replace(/^(?=.)/gm, ' ');
}

export function versionCommand(io: CliIO): Command {
  return new Command('version')
    .description('Show the client and manager versions and their API versions')
    .option('--format <format>', 'table (default) or json')
    .action(async (opts: { format?: string }, c: Command) => {
      const format = parseFormat(opts.format);
      const client = { version: convoyVersion(), apiVersion: CONTROL_API_VERSION };
      // The client's part first, so it is there also when no manager can be reached (or no bundle found).
      const mine = prettyVersion({ client });
      if (format === 'table') io.out(mine);
      await withApi(io, c, async (api) => {
        const server = { ...(await api.getVersion({})), host: hostOf(c, io.env) };
        io.out(format === 'json' ? json({ client, server }) : prettyVersion({ client, server }).slice(mine.length));
      });
    });
}
