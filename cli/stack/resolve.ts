// --resolve-image: a tag → its digest at the registry, so every node runs the
// same image (Docker's default). Read-only registry access from the CLI's
// machine, with the agent's own registry client (agent/runtime/image); plain
// HTTP only for the registries named in CONVOY_INSECURE_REGISTRIES
// (host:port, comma-separated), as the agents' --insecure-registry.
import { RegistryClient } from '../../agent/runtime/image/registry';
import { manifestRef, parseReference } from '../../agent/runtime/image/reference';

/** One manifest lookup; a registry that does not answer this fast is skipped (the image stays as written). */
export const RESOLVE_TIMEOUT_MS = 5000;
/** A manifest or index is small; more is not one. */
const MANIFEST_MAX_BYTES = 4 * 1024 * 1024;

export function imageResolver(env: NodeJS.ProcessEnv): (image: string) => Promise<string | undefined> {
  const insecure = (env.CONVOY_INSECURE_REGISTRIES ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  const client = new RegistryClient({ insecureRegistries: insecure, requestTimeoutMs: RESOLVE_TIMEOUT_MS });
  return async (image) => {
    const ref = parseReference(image);
    if (ref.digest) return image;
    const m = await client.getManifest(ref, manifestRef(ref), { maxBytes: MANIFEST_MAX_BYTES });
    return `${image}@${m.digest}`;
  };
}
