// convoy secret inspect NAME... (JSON, never the value); convoy config inspect NAME... (JSON with the value, base64, as Docker's).
import { Command } from 'commander';
import { withApi, type CliIO } from '../client';
import { json } from '../format';
import { shown, type FileNoun } from './noun';

export function fileInspectCommand(io: CliIO, noun: FileNoun): Command {
  return new Command('inspect')
    .description(noun.kind === 'secret' ? 'Display one or more secrets (JSON; the value is never shown)' : 'Display one or more configs (JSON, value in base64)')
    .argument(`<${noun.kind}...>`, `${noun.kind} name or id`)
    .action(async (refs: string[], _opts: unknown, c: Command) =>
      withApi(io, c, async (api) => {
        const out = [];
        for (const r of refs) out.push(shown(await noun.get(api, r)));
        io.out(json(out));
      }),
    );
}
