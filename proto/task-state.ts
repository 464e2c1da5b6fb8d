// The order of task states, a contract every program shares (the agent's
// controller, the manager's reconcilers and dispatcher, the CLI's sort).
// A task's observed state only moves forward (DESIGN.md: new → pending →
// assigned → … → running → complete | failed | shutdown | rejected |
// orphaned), so "may this state follow that one" is one comparison of ranks.
//
// The order is derived from the generated enum, whose keys follow
// types.proto's declaration order; types.proto numbers them in increasing
// order, spaced as in swarmkit, and task-state.test.ts holds the two against
// each other (same names, same order, increasing numbers). Adding a state is
// a change to types.proto alone.
import { TaskState, type TaskState__Output } from './generated/convoy/TaskState';

export type TaskStateName = TaskState__Output;

/** Every task state, first to last. */
export const TASK_STATES: readonly TaskStateName[] = Object.values(TaskState);

/** Rank of each state: its position in TASK_STATES (only comparisons mean anything). */
export const TASK_STATE_ORDER: ReadonlyMap<TaskStateName, number> = new Map(TASK_STATES.map((s, i) => [s, i]));

const RUNNING_RANK = stateRank('RUNNING');

/** A state's rank; a name the enum does not know (a newer peer's) ranks last. */
export function stateRank(s: TaskStateName): number {
  return TASK_STATE_ORDER.get(s) ?? TASK_STATES.length;
}

/** True when moving from `from` to `to` is a forward (or same-state) move. */
export function isForward(from: TaskStateName, to: TaskStateName): boolean {
  return stateRank(to) >= stateRank(from);
}

/** States after which a task never runs again. */
export function isTerminal(s: TaskStateName): boolean {
  return stateRank(s) > RUNNING_RANK;
}
