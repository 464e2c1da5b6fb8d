// convoy cluster ca: the cluster root CA's fingerprint (what join tokens
// pin) and expiry, and the key-encryption key: the answering manager's keys,
// how many of the sealed keys its current one sealed, which key every
// manager seals under (each asked at its address), and where a rotation
// stands; --cert prints the CA's PEM (a client's ca.pem).
import { Command } from 'commander';
import { securityOf, withApi, type CliIO } from '../client';
import { json, keyValues, parseFormat } from '../format';

/** What one manager answered GetVersion with: the key it seals under, or why it did not answer. */
export interface ManagerKek {
  id: string;
  kek?: string;
  error?: string;
}

/** The key-encryption key lines of `cluster ca`: the answering manager's keys, what is sealed under its current one, and how far a rotation has come. */
export function kekLines(k: { ids: string[]; retired: string[]; sealed: { total: number; current: number; unopenable: number }; managers?: ManagerKek[] }): [string, string][] {
  const [current, ...others] = k.ids;
  const managers = k.managers ?? [];
  const behind = managers.filter((m) => m.kek !== current);
  const s = k.sealed;
  const under = s.total - s.current - s.unopenable;
  const lines: [string, string][] = [['Key-encryption key', current]];
  if (others.length) lines.push(['Other keys in its file', others.map((id) => (k.retired.includes(id) ? `${id} (retired)` : id)).join(', ')]);
  if (managers.length > 1) lines.push(['Managers seal under', managers.map((m) => `${m.id} ${m.kek ?? `(${m.error ?? 'no answer'})`}`).join(', ')]);
  lines.push(['Sealed under it', `${s.current} of ${s.total} sealed keys${under ? `, ${under} under a previous key` : ''}${s.unopenable ? `, ${s.unopenable} under a key this manager lacks` : ''}`]);
  if (k.retired.includes(current)) lines.push(['Rotation', 'this manager seals under a retired key: put the new key first in its file and restart it']);
  else if (under > 0) lines.push(['Rotation', 'under way: restart every manager with the new key first in its file']);
  else if (others.length && others.every((id) => k.retired.includes(id)) && !s.unopenable)
    lines.push([
      'Rotation',
      managers.length && !behind.length
        ? 'done: every manager seals under this key and every sealed key is under it; the other lines can go from every file'
        : `done on this manager; not yet known to be done on ${behind.length ? behind.map((m) => m.id).join(', ') : 'the other managers'}: restart them with this key first`,
    ]);
  else if (others.length) lines.push(['Rotation', 'not begun: the other lines seal nothing yet; to rotate, put the new key first in every manager\'s file and restart them']);
  return lines;
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
        // Every manager's current key (each answers for itself; a rotation is done only when all agree).
        const managers: ManagerKek[] = [];
        if (i.kekId) {
          for (const m of i.managers) {
            if (!m.addr) continue;
            let conn: ReturnType<CliIO['connect']> | undefined;
            try {
              conn = io.connect(m.addr, () => securityOf(c, io.env));
              const kekId = (await conn.api.getVersion({})).kekId;
              managers.push(kekId ? { id: m.id, kek: kekId } : { id: m.id, error: 'a manager older than 1.2' });
            } catch (e) {
              managers.push({ id: m.id, error: `unreachable: ${(e as Error).message.split('\n')[0]}` });
            } finally {
              conn?.close();
            }
          }
        }
        const kek = { id: i.kekId, ids: i.kekIds ?? [], retired: i.kekRetired ?? [], sealed, managers };
        const out = {
          fingerprint: `sha256:${i.caFingerprint}`,
          notAfter: new Date(Number(i.caNotAfter)).toISOString(),
          certExpiry: certExpiry ? `${Math.round(certExpiry / 1000)}s` : 'default (90 days)',
          kek,
        };
        io.out(
          format === 'json'
            ? json(out)
            : keyValues([
                ['Fingerprint', out.fingerprint],
                ['Expires', out.notAfter],
                ['Node certificates live', out.certExpiry],
                ...(kek.ids.length ? kekLines(kek) : []),
              ]),
        );
      }),
    );
}
