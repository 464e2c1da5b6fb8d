// convoy cluster ca: the cluster root CA's fingerprint (what join tokens
// pin) and expiry, and the key-encryption key's id with how many of the
// sealed keys it sealed (a KEK rotation is done when all of them);
// --cert prints the CA's PEM (a client's ca.pem).
import { Command } from 'commander';
import { withApi, type CliIO } from '../client';
import { json, keyValues, parseFormat } from '../format';

/** "3f2a9c1e0b7d4a55 (the answering manager's file holds 2 keys)". */
function kekLine(id: string, keys: number): string {
  return keys > 1 ? `${id} (the answering manager's file holds ${keys} keys: a rotation)` : id;
}

/** How many sealed keys the current KEK sealed, and what a rotation still waits for. */
export function sealedLine(s: { total: number; current: number; unopenable: number }): string {
  const left = s.total - s.current - s.unopenable;
  const notes = [
    ...(left > 0 ? [`${left} under a previous key: restart every manager with the new key first`] : []),
    ...(s.unopenable > 0 ? [`${s.unopenable} under a key this manager lacks`] : []),
  ];
  return `${s.current} of ${s.total} sealed keys${notes.length ? ` (${notes.join('; ')})` : ''}`;
}

export function clusterCaCommand(io: CliIO): Command {
  return new Command('ca')
    .description("Show the cluster root CA (its sha256 fingerprint, what join tokens pin, and expiry) and the key-encryption key sealing the CA key and secrets")
    .option('--cert', 'print the CA certificate (PEM)')
    .option('--format <format>', 'table (default) or json')
    .action(async (opts: { cert?: boolean; format?: string }, c: Command) =>
      withApi(io, c, async (api) => {
        const format = parseFormat(opts.format);
        const i = await api.getClusterInfo({});
        if (opts.cert) return io.out(i.caCert);
        const certExpiry = Number(i.cluster?.certExpiryMs || 0);
        const sealed = { total: Number(i.sealedKeys), current: Number(i.sealedKeysCurrent), unopenable: Number(i.sealedKeysUnopenable) };
        const out = {
          fingerprint: `sha256:${i.caFingerprint}`,
          notAfter: new Date(Number(i.caNotAfter)).toISOString(),
          certExpiry: certExpiry ? `${Math.round(certExpiry / 1000)}s` : 'default (90 days)',
          kek: { id: i.kekId, keys: Number(i.kekKeys), sealed },
        };
        io.out(
          format === 'json'
            ? json(out)
            : keyValues([
                ['Fingerprint', out.fingerprint],
                ['Expires', out.notAfter],
                ['Node certificates live', out.certExpiry],
                ...(i.kekId ? ([['Key-encryption key', kekLine(i.kekId, out.kek.keys)], ['Sealed under it', sealedLine(sealed)]] as [string, string][]) : []),
              ]),
        );
      }),
    );
}
