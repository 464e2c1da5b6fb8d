// What the agent remembers across restarts, kept in `<stateDir>/node.json`:
// the node id the managers gave it, so a restarted agent rejoins as the same
// node (its tasks stay assigned to it and can be adopted).
import * as fs from 'node:fs/promises';
import * as path from 'node:path';

export const NODE_STATE_FILE = 'node.json';

export interface NodeStateFile {
  nodeId: string;
}

/** Reads the remembered node id; '' when the agent never joined (or the file is unreadable). */
export async function loadNodeId(stateDir: string): Promise<string> {
  try {
    const raw = await fs.readFile(path.join(stateDir, NODE_STATE_FILE), 'utf8');
    const parsed = JSON.parse(raw) as Partial<NodeStateFile>;
    return typeof parsed.nodeId === 'string' ? parsed.nodeId : '';
  } catch {
    return '';
  }
}

/** Writes the node id atomically (temp file + rename) so a crash never leaves half a file. */
export async function saveNodeId(stateDir: string, nodeId: string): Promise<void> {
  await fs.mkdir(stateDir, { recursive: true });
  const file = path.join(stateDir, NODE_STATE_FILE);
  const tmp = `${file}.${process.pid}.tmp`;
  const body: NodeStateFile = { nodeId };
  await fs.writeFile(tmp, JSON.stringify(body) + '\n', { mode: 0o600 });
  await fs.rename(tmp, file);
}
