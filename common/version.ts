// The release of this checkout or bundle: package.json's "version", read
// once. The CLI prints it (`convoy --version`, `convoy version`) and the
// manager answers it (Control GetVersion).
import * as fs from 'node:fs';
import * as path from 'node:path';

let cached: string | undefined;

/** The version in package.json (dist/<dir>/x.js and bundles sit one or two levels below it), or "unknown". */
export function convoyVersion(): string {
  if (cached) return cached;
  for (const p of [path.join(__dirname, '..', '..', 'package.json'), path.join(__dirname, '..', 'package.json')]) {
    try {
      const pkg = JSON.parse(fs.readFileSync(p, 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'convoy' && pkg.version) return (cached = pkg.version);
    } catch {
      /* try the next place */
    }
  }
  return (cached = 'unknown');
}
