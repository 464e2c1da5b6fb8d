// Which host paths a bind mount may come from. Docker admits any path; Convoy
// runs images it did not build on behalf of anyone who can create a service,
// so a bind mount is admitted only from under a prefix the cluster allows
// (`convoy cluster update --bind-allow PATH...`, empty by default: no bind
// mount at all), and never from the paths below, whatever the allow list:
// the cluster's own state and credentials, the host's configuration, kernel
// interfaces and daemons' sockets. A path that holds one of them (`/`,
// `/var`) is refused as well: mounting it would expose what it holds.
//
// The manager checks the path as written at create/update; the agent checks
// again at mount time on the path resolved on its disk (symlinks followed),
// against the allow list resolved the same way, so a symlink under an
// allowed prefix cannot lead out of it. Pure and path-only: both sides use it.
import * as path from 'node:path';

/** Refused under any allow list, with the reason shown to the operator. */
export const BIND_DENIED: ReadonlyArray<{ path: string; why: string }> = Object.freeze([
  { path: '/etc', why: "the host's configuration" },
  { path: '/proc', why: 'a kernel interface' },
  { path: '/sys', why: 'a kernel interface' },
  { path: '/dev', why: "the host's devices" },
  { path: '/boot', why: "the host's kernel and boot loader" },
  { path: '/root', why: "root's home (credentials such as /root/.convoy)" },
  { path: '/run', why: "daemons' sockets (docker.sock, the agent's socket)" },
  { path: '/var/run', why: "daemons' sockets (docker.sock, the agent's socket)" },
  { path: '/var/lib/convoy', why: "the cluster's own state (agent state, manager data, the key-encryption key)" },
  { path: '/var/lib/etcd', why: "the cluster's store" },
  { path: '/var/lib/nats', why: "the cluster's message bus" },
  { path: '/var/lib/docker', why: "another container engine's state" },
  { path: '/var/lib/containerd', why: "another container engine's state" },
  { path: '/var/lib/kubelet', why: "another orchestrator's state" },
]);

export type BindVerdict = { ok: true; path: string } | { ok: false; reason: string };

const inside = (p: string, dir: string) => p === dir || dir === '/' || p.startsWith(dir + '/');

/** `p` as an absolute, normalised path; an error for relative paths and any `..` component. */
export function normaliseBindPath(p: string): BindVerdict {
  if (!p.startsWith('/')) return { ok: false, reason: 'must be an absolute path' };
  if (p.split('/').includes('..')) return { ok: false, reason: "must not contain '..'" };
  if (p.includes('\0')) return { ok: false, reason: 'must not contain a NUL byte' };
  let n = path.posix.normalize(p);
  if (n.length > 1 && n.endsWith('/')) n = n.slice(0, -1);
  return { ok: true, path: n };
}

/**
 * Whether `source` (absolute, normalised: resolved on disk at mount time) may
 * be bind-mounted. `extraDenied`: state of this process the static list does
 * not know (a data dir given by flag).
 */
export function checkBindSource(source: string, allow: readonly string[], extraDenied: readonly string[] = []): BindVerdict {
  const n = normaliseBindPath(source);
  if (!n.ok) return n;
  const p = n.path;
  const denied = [...BIND_DENIED, ...extraDenied.filter((d) => d.startsWith('/')).map((d) => ({ path: path.posix.normalize(d).replace(/(.)\/$/, '$1'), why: "the cluster's own state" }))];
  for (const d of denied) {
    if (inside(p, d.path)) return { ok: false, reason: `${JSON.stringify(p)} is never mounted: ${d.path} is ${d.why}` };
    if (inside(d.path, p)) return { ok: false, reason: `${JSON.stringify(p)} is never mounted: it holds ${d.path} (${d.why})` };
  }
  if (!allow.length) return { ok: false, reason: `${JSON.stringify(p)} is not under a path the cluster allows (none yet: convoy cluster update --bind-allow PATH)` };
  if (!allow.some((a) => inside(p, a))) return { ok: false, reason: `${JSON.stringify(p)} is not under a path the cluster allows (${allow.join(', ')}; convoy cluster update --bind-allow)` };
  return { ok: true, path: p };
}

/** An allow list entry (cluster update): normalised; refused when it is itself a denied path. */
export function checkAllowEntry(entry: string): BindVerdict {
  const n = normaliseBindPath(entry);
  if (!n.ok) return n;
  for (const d of BIND_DENIED) if (d.path !== '/' && inside(n.path, d.path)) return { ok: false, reason: `${JSON.stringify(n.path)} cannot be allowed: ${d.path} is ${d.why}` };
  return n;
}
