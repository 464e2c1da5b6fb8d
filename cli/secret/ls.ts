// convoy secret ls (and convoy config ls): ID, NAME, VERSION, SIZE, SERVICES, CREATED, UPDATED.
import { Command } from 'commander';
import { withApi, type CliIO } from '../client';
import { addOutputOptions, ago, formatBytes, json, parseFormat, shortId, table, type OutputFlags } from '../format';
import { shown, type FileEntry, type FileNoun } from './noun';

export function renderFiles(list: FileEntry[], now: number, noTrunc = false): string {
  const rows = list.map((e) => [
    shortId(e.obj.id, noTrunc),
    e.obj.spec?.name ?? '',
    String(e.obj.version),
    formatBytes(Number(e.obj.size)),
    e.services.join(',') || '-',
    ago(e.obj.meta?.createdAt ?? 0, now),
    ago(e.obj.meta?.updatedAt ?? 0, now),
  ]);
  return table(['ID', 'NAME', 'VERSION', 'SIZE', 'SERVICES', 'CREATED', 'UPDATED'], rows);
}

export function fileLsCommand(io: CliIO, noun: FileNoun): Command {
  const cmd = new Command('ls').alias('list').description(`List ${noun.kind}s`);
  addOutputOptions(cmd);
  return cmd.action(async (opts: OutputFlags, c: Command) =>
    withApi(io, c, async (api) => {
      const format = parseFormat(opts.format);
      const list = await noun.list(api);
      const noTrunc = opts.trunc === false;
      if (opts.quiet) io.out(list.map((e) => `${shortId(e.obj.id, noTrunc)}\n`).join(''));
      else if (format === 'json') io.out(json(list.map(shown)));
      else io.out(renderFiles(list, io.now(), noTrunc));
    }),
  );
}
