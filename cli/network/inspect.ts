// convoy network inspect NETWORK...: JSON.
import { Command } from 'commander';
import type { Network } from '../../proto/mod';
import { withApi, type CliIO } from '../client';
import { json } from '../format';

export function networkInspectCommand(io: CliIO): Command {
  return new Command('inspect')
    .description('Display detailed information on one or more networks (JSON)')
    .argument('<network...>', 'network name or id')
    .action(async (networks: string[], _opts: unknown, c: Command) =>
      withApi(io, c, async (api) => {
        const found: Network[] = [];
        for (const n of networks) {
          const r = await api.getNetwork({ network: n });
          if (r.network) found.push(r.network);
        }
        io.out(json(found));
      }),
    );
}
