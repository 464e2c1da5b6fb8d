// Times extracting a busybox-sized layer (the test image of lab/images.ts):
// gunzip + extractLayer into a fresh temp dir, median of RUNS runs. Prints
// figures, never fails on time.  npm run bench:unpack [-- runs]
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { gunzipSync } from 'node:zlib';
import { buildBusyboxRootfs } from '../lab/images';
import { buildLayer } from '../agent/runtime/image/push';
import { extractLayer } from '../agent/runtime/image/tar';
import { onInterrupt } from './support';

async function main(): Promise<void> {
  const runs = Number(process.argv[2] ?? 15);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'convoy-unpack-bench-'));
  const offInterrupt = onInterrupt(async () => fs.rmSync(tmp, { recursive: true, force: true }));
  try {
    const src = path.join(tmp, 'src');
    buildBusyboxRootfs(src);
    const layer = await buildLayer(src, { uid: 0, gid: 0, mtime: 0 });
    const tar = gunzipSync(layer.data);
    const times: number[] = [];
    for (let i = 0; i < runs; i++) {
      const dest = path.join(tmp, `d${i}`);
      fs.mkdirSync(dest);
      const t0 = process.hrtime.bigint();
      await extractLayer(Readable.from([tar.subarray(0, tar.length >> 1), tar.subarray(tar.length >> 1)]), dest);
      times.push(Number(process.hrtime.bigint() - t0) / 1e6);
      fs.rmSync(dest, { recursive: true, force: true });
    }
    times.sort((a, b) => a - b);
    const entries = fs.readdirSync(path.join(src, 'bin')).length;
    console.log(`layer_bytes=${tar.length} bin_entries=${entries} runs=${runs} median_ms=${times[runs >> 1].toFixed(2)} min_ms=${times[0].toFixed(2)} max_ms=${times[runs - 1].toFixed(2)}`);
  } finally {
    await offInterrupt();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

void main();
