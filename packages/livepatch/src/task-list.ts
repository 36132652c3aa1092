import type { Task } from '@klpsim/kernel';
import type { LpTask } from './model.js';

/**
 * The kernel's tasks as livepatch reads and writes them, by task id: the
 * fields of `struct task_struct` that kernel/livepatch/transition.c uses
 * (`patch_state`, TIF_PATCH_PENDING, `task_curr()`, the stack it walks, the
 * comm and pid it prints). The engine keeps ids, never task objects, so a
 * caller can keep a million tasks in a table of rows (the simulation's
 * TaskTable) instead of a million objects; `LpTaskList` serves callers that
 * have `LpTask` objects.
 *
 * Ids: `idle(cpu)` is CPU `cpu`'s idle task for cpu in [0, cpus); the task
 * list that `for_each_process_thread` walks is [first, end()), in task-list
 * order (idle tasks are not on it, as in the kernel).
 */
export interface KlpTasks {
  /** How many idle tasks (CPUs) there are. */
  readonly cpus: number;
  /** The first id on the task list. */
  readonly first: number;
  /** One past the last id on the task list (it grows as tasks fork). */
  end(): number;
  /** `idle_task(cpu)`. */
  idle(cpu: number): number;
  pid(id: number): number;
  comm(id: number): string;
  cpu(id: number): number;
  /** `task->patch_state`. */
  patchState(id: number): number;
  setPatchState(id: number, state: number): void;
  /** TIF_PATCH_PENDING. */
  pending(id: number): boolean;
  setPending(id: number, on: boolean): void;
  /** `task_curr()`: on a CPU right now. */
  running(id: number): boolean;
  /** The stack image a walk of the task reads, or null (in user space: nothing to walk). */
  stack(id: number): Task | null;
}

/**
 * `KlpTasks` over `LpTask` objects: idle tasks first (id = cpu), then the
 * task list in its order. For callers that build tasks as objects (predict,
 * the pass benchmark, tests); the objects are the tasks' state, so a caller
 * can keep reading them.
 */
export class LpTaskList implements KlpTasks {
  readonly cpus: number;
  readonly first: number;
  /** Every task by id. */
  readonly all: LpTask[];

  constructor(tasks: readonly LpTask[], idle: readonly LpTask[] = []) {
    this.cpus = idle.length;
    this.first = idle.length;
    this.all = [...idle, ...tasks];
  }

  /** Appends a task to the task list (a fork); returns its id. */
  add(task: LpTask): number {
    this.all.push(task);
    return this.all.length - 1;
  }

  /** The task object of an id. */
  task(id: number): LpTask {
    return this.all[id]!;
  }

  end(): number {
    return this.all.length;
  }
  idle(cpu: number): number {
    return cpu;
  }
  pid(id: number): number {
    return this.all[id]!.pid;
  }
  comm(id: number): string {
    return this.all[id]!.comm;
  }
  cpu(id: number): number {
    return this.all[id]!.cpu;
  }
  patchState(id: number): number {
    return this.all[id]!.patchState;
  }
  setPatchState(id: number, state: number): void {
    this.all[id]!.patchState = state;
  }
  pending(id: number): boolean {
    return this.all[id]!.pending;
  }
  setPending(id: number, on: boolean): void {
    this.all[id]!.pending = on;
  }
  running(id: number): boolean {
    return this.all[id]!.running;
  }
  stack(id: number): Task | null {
    return this.all[id]!.stack;
  }
}
