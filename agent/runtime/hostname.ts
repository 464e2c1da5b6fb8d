// A task's hostname: the spec's, else the first 12 characters of the task id
// (as Docker and Swarm use the container id's), never one that reads as a
// number. glibc's resolver takes a name made only of digits (and dots) for a
// numeric address and, when it is not a valid one (12 digits are more than
// 32 bits), fails the lookup without reading /etc/hosts: `hostname -i`,
// getaddrinfo(gethostname()) and every program that resolves its own name
// fail in such a container. Random hex ids start with 12 decimal digits
// about once in 280 tasks ((10/16)^12); moby hit the same (moby/moby#3869)
// and regenerates such ids. The agent takes whatever id the manager made, so
// it extends the default hostname to the id's first letter instead: still a
// prefix of the task id, which is what an operator matches against
// `service ps`.
import * as os from 'node:os';
import type { Task } from '../../proto/mod';
import { renderHostnameTemplate } from '../../proto/container-options';

/** Characters of the task id a default hostname takes (Docker's short container id). */
export const DEFAULT_HOSTNAME_CHARS = 12;
/** RFC 1035 2.3.4: a label has at most 63 octets. */
const HOSTNAME_MAX = 63;
/** What a resolver parses as a numeric address rather than a name. */
const NUMERIC_RE = /^[0-9.]+$/;

/** The default hostname of a task id: its first 12 characters, extended to its first letter when those are all digits. */
export function defaultHostname(taskId: string): string {
  const short = taskId.slice(0, DEFAULT_HOSTNAME_CHARS);
  if (!NUMERIC_RE.test(short)) return short;
  const letter = taskId.search(/[^0-9.]/);
  // No letter at all (never from the manager's hex ids): a letter in front keeps it a name.
  return letter >= 0 && letter < HOSTNAME_MAX ? taskId.slice(0, letter + 1) : `t${taskId.slice(0, HOSTNAME_MAX - 1)}`;
}

/**
 * The hostname a task's container gets, and its own name in its /etc/hosts.
 * A template (`{{.Service.Name}}-{{.Task.Slot}}`, docs/container-options.md)
 * is rendered with the task's values and this node's hostname, then cut to a
 * DNS label's 63 characters (no trailing '-' or '.'); empty: the default.
 */
export function taskHostname(task: Pick<Task, 'id' | 'spec'> & Partial<Pick<Task, 'serviceId' | 'serviceName' | 'slot' | 'nodeId'>>, nodeHostname: string = os.hostname()): string {
  const h = task.spec?.container?.hostname;
  if (!h) return defaultHostname(task.id);
  if (!h.includes('{{')) return h;
  const slot = String(task.slot ?? 0);
  const rendered = renderHostnameTemplate(h, {
    '.Service.ID': task.serviceId ?? '',
    '.Service.Name': task.serviceName ?? '',
    '.Node.ID': task.nodeId ?? '',
    '.Node.Hostname': nodeHostname,
    '.Task.ID': task.id,
    // Docker's task name: <service>.<slot>.<task id> (a global task's slot is its node id).
    '.Task.Name': `${task.serviceName ?? ''}.${task.slot ? slot : (task.nodeId ?? '')}.${task.id}`,
    '.Task.Slot': task.slot ? slot : (task.nodeId ?? ''),
  });
  const cut = rendered.slice(0, HOSTNAME_MAX).replace(/[-.]+$/, '');
  return cut || defaultHostname(task.id);
}
