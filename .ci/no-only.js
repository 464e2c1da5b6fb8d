// Fails the build when a focused test (.only) is left in the sources:
// it would silently stop the rest of the suite from running.
const { execSync } = require('node:child_process');
let out = '';
try {
  out = execSync("git grep -nE '\\b(it|describe|context)\\.only\\(' -- '*.ts' ':!.ci/*'", { encoding: 'utf8' });
} catch (e) {
  if (e.status === 1) process.exit(0); // no match
  throw e;
}
if (out.trim()) {
  console.error('focused tests (.only) are not allowed:\n' + out);
  process.exit(1);
}
