// convoy secret rotate NAME FILE|-  (and convoy config rotate): a new version,
// and every service using it rolls through its rolling update (moby#35803).
import { Command } from 'commander';
import { withApi, type CliIO } from '../client';
import { readValue, type FileNoun } from './noun';

export function fileRotateCommand(io: CliIO, noun: FileNoun): Command {
  return new Command('rotate')
    .description(`Store a new version of a ${noun.kind} and roll every service that uses it`)
    .argument('<name>', `${noun.kind} name or id`)
    .argument('<file>', 'file with the new value, or - for standard input')
    .action(async (name: string, file: string, _opts: unknown, c: Command) =>
      withApi(io, c, async (api) => {
        const data = await readValue(file, noun.kind);
        const r = await noun.rotate(api, name, data);
        data.fill(0);
        io.out(`${r.obj.spec?.name ?? name} version ${r.obj.version}${r.services.length ? `; rolling ${r.services.join(', ')}` : '; no service uses it'}\n`);
      }),
    );
}
