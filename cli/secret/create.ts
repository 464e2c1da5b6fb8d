// convoy secret create [--label k=v] NAME FILE|-   (and convoy config create)
import { Command } from 'commander';
import { withApi, type CliIO } from '../client';
import { collect, parseLabels } from '../flags';
import { readValue, type FileNoun } from './noun';

export function fileCreateCommand(io: CliIO, noun: FileNoun): Command {
  return new Command('create')
    .description(`Create a ${noun.kind} from a file or standard input (-)`)
    .argument('<name>', `${noun.kind} name`)
    .argument('<file>', 'file with the value, or - for standard input')
    .option('-l, --label <k=v>', `${noun.kind} label (repeatable)`, collect)
    .action(async (name: string, file: string, opts: { label?: string[] }, c: Command) =>
      withApi(io, c, async (api) => {
        const labels = parseLabels(opts.label ?? [], '--label');
        const data = await readValue(file, noun.kind);
        const r = await noun.create(api, name, labels, data);
        data.fill(0);
        io.out(`${r.obj.id}\n`);
      }),
    );
}
