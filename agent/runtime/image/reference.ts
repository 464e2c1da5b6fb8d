// Image references: "[registry[:port]/]repository[:tag][@sha256:digest]",
// normalised as Docker does (docker.io, library/, :latest).
export interface ImageReference {
  /** Registry host as written in the reference ("docker.io", "127.0.0.1:5000"). */
  registry: string;
  repository: string;
  tag?: string;
  digest?: string;
}

export const DEFAULT_REGISTRY = 'docker.io';
/** Where docker.io's API is actually served. */
export const DOCKER_HUB_API = 'registry-1.docker.io';

const DIGEST_RE = /^sha256:[a-f0-9]{64}$/;
const REPO_RE = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/;
const TAG_RE = /^[\w][\w.-]{0,127}$/;

export class InvalidReferenceError extends Error {
  override name = 'InvalidReferenceError';
}

export function parseReference(ref: string): ImageReference {
  let rest = ref.trim();
  if (!rest) throw new InvalidReferenceError('empty image reference');
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST_RE.test(digest)) throw new InvalidReferenceError(`invalid digest in image reference ${ref}`);
  }
  let registry = DEFAULT_REGISTRY;
  const slash = rest.indexOf('/');
  if (slash >= 0) {
    const first = rest.slice(0, slash);
    if (first.includes('.') || first.includes(':') || first === 'localhost') {
      registry = first;
      rest = rest.slice(slash + 1);
    }
  }
  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon >= 0) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG_RE.test(tag)) throw new InvalidReferenceError(`invalid tag in image reference ${ref}`);
  }
  if (registry === DEFAULT_REGISTRY && !rest.includes('/')) rest = `library/${rest}`;
  if (!REPO_RE.test(rest)) throw new InvalidReferenceError(`invalid repository name in image reference ${ref}`);
  if (!tag && !digest) tag = 'latest';
  return { registry, repository: rest, tag, digest };
}

/** The canonical string form: "docker.io/library/busybox:latest". */
export function formatReference(r: ImageReference): string {
  return `${r.registry}/${r.repository}${r.tag ? `:${r.tag}` : ''}${r.digest ? `@${r.digest}` : ''}`;
}

/** The manifest reference to ask for: the digest when pinned, else the tag. */
export function manifestRef(r: ImageReference): string {
  return r.digest ?? r.tag ?? 'latest';
}
