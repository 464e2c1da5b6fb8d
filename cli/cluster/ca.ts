// convoy cluster ca: the cluster root CA's fingerprint (what join tokens
// pin) and expiry; --cert prints its PEM (a client's ca.pem).
import { Command } from 'commander';
import { withApi, type CliIO } from '../client';
import { json, keyValues, parseFormat } from '../format';

export function clusterCaCommand(io: CliIO): Command {
  return new Command('ca')
    .description("Show the cluster root CA: its sha256 fingerprint (what join tokens pin) and expiry")
    .option('--cert', 'print the CA certificate (PEM)')
    .option('--format <format>', 'table (default) or json')
    .action(async (opts: { cert?: boolean; format?: string }, c: Command) =>
      withApi(io, c, async (api) => {
        const format = parseFormat(opts.format);
        const i = await api.getClusterInfo({});
        if (opts.cert) return io.out(i.caCert);
        const certExpiry = Number(i.cluster?.certExpiryMs || 0);
        const out = { fingerprint: `sha256:${i.caFingerprint}`, notAfter: new Date(Number(i.caNotAfter)).toISOString(), certExpiry: certExpiry ? `${Math.round(certExpiry / 1000)}s` : 'default (90 days)' };
        io.out(
          format === 'json'
            ? json(out)
            : keyValues([
                ['Fingerprint', out.fingerprint],
                ['Expires', out.notAfter],
                ['Node certificates live', out.certExpiry],
              ]),
        );
      }),
    );
}
