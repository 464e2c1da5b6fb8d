// convoy cluster update: cluster-wide settings.
//   --bind-allow PATH... | --no-bind-allow   the host paths bind mounts may come
//       from (docs/runtime.md, "Bind mount admission"); the list replaces the current one
//   --allow-privileged | --no-allow-privileged   whether services may use
//       --privileged and --device at all (still only admins; docs/container-options.md)
//   --cert-expiry DURATION   how long node and user certificates live from
//       their next issue or renewal (Docker: `docker swarm update --cert-expiry`)
import { Command } from 'commander';
import { CliError, withApi, type CliIO } from '../client';
import { parseDuration } from '../flags';
import { MIN_CERT_EXPIRY_MS } from '../../proto/defaults';
import { prettyClusterInfo } from './info';

export function clusterUpdateCommand(io: CliIO): Command {
  return new Command('update')
    .description('Update cluster-wide settings')
    .option('--bind-allow <paths...>', 'host path prefixes bind mounts may come from (replaces the list)')
    .option('--no-bind-allow', 'admit no bind mount (empties the list)')
    .option('--allow-privileged', 'let admins run services with --privileged and --device (off by default)')
    .option('--no-allow-privileged', 'refuse --privileged and --device again (running services keep theirs until updated)')
    .option('--cert-expiry <duration>', 'lifetime of node certificates (e.g. 2160h; default 90 days); nodes renew at 50-80% of it')
    .action(async (opts: { bindAllow?: string[] | false; certExpiry?: string; allowPrivileged?: boolean }, c: Command) =>
      withApi(io, c, async (api) => {
        if (opts.bindAllow === undefined && opts.certExpiry === undefined && opts.allowPrivileged === undefined)
          throw new CliError('nothing to update: give --bind-allow PATH..., --no-bind-allow, --allow-privileged, --no-allow-privileged or --cert-expiry');
        let certExpiryMs = 0;
        if (opts.certExpiry !== undefined) {
          certExpiryMs = parseDuration(opts.certExpiry, '--cert-expiry');
          if (certExpiryMs < MIN_CERT_EXPIRY_MS) throw new CliError(`--cert-expiry: at least ${MIN_CERT_EXPIRY_MS / 1000}s`);
        }
        const bind = opts.bindAllow === undefined ? {} : { bindAllow: opts.bindAllow || [], setBindAllow: true };
        const priv = opts.allowPrivileged === undefined ? {} : { allowPrivileged: opts.allowPrivileged, setAllowPrivileged: true };
        const info = await api.updateCluster({ ...bind, ...priv, ...(certExpiryMs ? { certExpiryMs } : {}) });
        if (certExpiryMs) io.out(`node certificates live ${opts.certExpiry} from their next renewal\n`);
        io.out(prettyClusterInfo(info, io.now()));
      }),
    );
}
