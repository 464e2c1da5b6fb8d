// The restart supervisor: what happens to a slot whose task ended on its own
// (its desired state is still RUNNING). Pure: the decision is a function of
// the policy, the slot's history in the store and `now`, so it survives a
// leader change.
//
// - ORPHANED (node lost) is not a failure: replaced at once, not counted.
// - condition NONE: never restarted. ON_FAILURE: restarted unless the task
//   COMPLETEd (exit 0). ANY: always.
// - delay: the replacement is created once now >= ended.status.timestamp + delay.
//   Until then the ended task keeps desired RUNNING and its slot stays held,
//   so nothing else fills it (docs/updates.md).
// - max attempts: restarts are counted with Task.attempt (0 for a deliberate
//   replacement — first run, update, drain, node loss; previous + 1 for a
//   restart). With a window, the restarts created within the window in the
//   slot's history are counted instead (the reaper keeps enough history).
import type { RestartPolicy, Task } from '../../proto/mod';
import { DEFAULT_RESTART_DELAY_MS } from '../../proto/defaults';

export { DEFAULT_RESTART_DELAY_MS };

export type RestartDecision =
  | { kind: 'now'; attempt: number }
  | { kind: 'later'; at: number }
  | { kind: 'never'; reason: string };

export function restartDecision(policy: RestartPolicy | null | undefined, ended: Task, history: readonly Task[], now: number): RestartDecision {
  const st = ended.status?.state ?? 'NEW';
  if (st === 'ORPHANED') return { kind: 'now', attempt: 0 };
  const cond = policy?.condition ?? 'RESTART_ANY';
  if (cond === 'RESTART_NONE') return { kind: 'never', reason: 'restart policy: none' };
  if (cond === 'RESTART_ON_FAILURE' && st === 'COMPLETE') return { kind: 'never', reason: 'restart policy: on-failure, task completed' };
  const max = policy?.maxAttempts ?? 0;
  if (max > 0) {
    const window = policy?.windowMs ?? 0;
    const restarts = window > 0 ? history.filter((t) => t.attempt > 0 && (t.meta?.createdAt ?? 0) >= now - window).length : ended.attempt;
    if (restarts >= max) return { kind: 'never', reason: `restart policy: ${max} attempt${max === 1 ? '' : 's'} used` };
  }
  const at = (ended.status?.timestamp ?? 0) + (policy?.delayMs ?? 0);
  if (now < at) return { kind: 'later', at };
  return { kind: 'now', attempt: ended.attempt + 1 };
}

/** How many ended tasks of a slot the reaper must keep for the restart window to be counted right. */
export function historyNeeded(policy: RestartPolicy | null | undefined): number {
  return policy && policy.windowMs > 0 && policy.maxAttempts > 0 ? policy.maxAttempts + 1 : 0;
}
