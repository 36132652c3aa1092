import type { Addr } from '@klpsim/arm64';
import type { MemoryRegion } from './memory.js';

/**
 * A task as the unwinder sees it: where its walk starts, its stack, its
 * pt_regs, and the tracer state that rewrites return addresses on it.
 */

/** `thread.cpu_context` as `cpu_switch_to` saved it. `pc` is the return address into `__switch_to`. */
export interface CpuContext {
  readonly fp: Addr;
  readonly sp: Addr;
  readonly pc: Addr;
}

/** The task stack `[low, high)`: `task_stack_page(task)` and `+THREAD_SIZE`. */
export interface TaskStack {
  readonly low: Addr;
  readonly high: Addr;
  /** The memory holding it (null if its bytes are unknown). */
  readonly region: MemoryRegion | null;
}

/**
 * One live function-graph return-stack frame (`struct ftrace_ret_stack`).
 * On arm64 `retp` is the caller's frame pointer at function entry, which is
 * the fp the unwinder holds when it meets `return_to_handler`.
 */
export interface RetStackEntry {
  /** Position: the array index (6.1) or the frame's first word (6.8+ shadow stack). */
  readonly pos: number;
  readonly ret: Addr;
  readonly func: Addr;
  readonly retp: Addr;
}

/** `task->ret_stack` and `task->curr_ret_stack`. */
export interface RetStack {
  /** `array`: 6.1's `struct ftrace_ret_stack[]`; `shadow`: the word-offset shadow stack of 6.8+. */
  readonly layout: 'array' | 'shadow';
  /** `curr_ret_stack`: the newest index (array) or the number of live words (shadow). */
  readonly curr: number;
  /** Live frames, oldest first (ascending `pos`). */
  readonly entries: readonly RetStackEntry[];
}

/** A live `struct kretprobe_instance`. */
export interface KretprobeInstance {
  /** The original return address the trampoline replaced. */
  readonly retAddr: Addr;
  /** The caller's frame pointer when the probe fired. */
  readonly fp: Addr;
}

export interface Task {
  readonly pid: number;
  readonly tgid: number;
  readonly comm: string;
  readonly kthread: boolean;
  /** Letter as in /proc (S, D, I, R, ...). */
  readonly state: string;
  /** `task->__state` when known (captures record it): TASK_FREEZABLE and friends are only here. */
  readonly stateRaw: number | null;
  readonly cpu: number;
  /** Running on a CPU right now: its stack cannot be walked (livepatch: -EBUSY). */
  readonly onCpu: boolean;
  readonly cpuContext: CpuContext;
  readonly stack: TaskStack;
  /** `task_pt_regs(task)`. */
  readonly ptRegs: Addr;
  /** `&task_pt_regs(task)->stackframe`: where a successful walk ends. */
  readonly finalFrame: Addr;
  /** null when `task->ret_stack` is NULL. */
  readonly retStack: RetStack | null;
  /** Newest first, as `task->kretprobe_instances` lists them. */
  readonly kretprobes: readonly KretprobeInstance[];
}
