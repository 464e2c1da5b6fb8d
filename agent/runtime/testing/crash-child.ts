// Test helper process (see runtime.int.test.ts): starts containers with the
// runtime, prints "ready", then waits to be killed with SIGKILL, as an agent
// that crashes mid-flight.
//   node crash-child.js <stateDir> <layersRoot> <json: {config, start}[]>
import { Runtime, type ContainerConfig } from '../runtime';

async function main(): Promise<void> {
  const [stateDir, layersRoot, json] = process.argv.slice(2);
  const rt = new Runtime({ stateDir, layersRoot });
  const items = JSON.parse(json) as { config: ContainerConfig; start: boolean }[];
  for (const it of items) {
    await rt.create(it.config);
    if (it.start) await rt.start(it.config.id);
  }
  process.stdout.write('ready\n');
  setInterval(() => undefined, 1000);
}

main().catch((e) => {
  process.stderr.write(`crash-child: ${e instanceof Error ? e.stack : String(e)}\n`);
  process.exit(1);
});
