import { type Addr, addrHi, addrLo, foldAddress } from '@klpsim/arm64';
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
  /** Folded (NaN when not canonical): for range checks and printing. */
  readonly ret: Addr;
  readonly func: Addr;
  readonly retp: Addr;
  /**
   * `ret` and `retp` exactly, as 32-bit halves: the kernel compares raw
   * 64-bit values, so two equal non-canonical words must still match.
   */
  readonly retHi: number;
  readonly retLo: number;
  readonly retpHi: number;
  readonly retpLo: number;
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
  /** The original return address the trampoline replaced (folded; NaN when not canonical). */
  readonly retAddr: Addr;
  /** The caller's frame pointer when the probe fired (folded). */
  readonly fp: Addr;
  /** Both exactly, as 32-bit halves (see RetStackEntry). */
  readonly retAddrHi: number;
  readonly retAddrLo: number;
  readonly fpHi: number;
  readonly fpLo: number;
}

/** A 64-bit value as two 32-bit halves. */
export interface U64 {
  readonly hi: number;
  readonly lo: number;
}

/** A return-stack entry from exact 64-bit `ret` and `retp`. */
export function retStackEntry(pos: number, ret: U64, func: Addr, retp: U64): RetStackEntry {
  return {
    pos,
    ret: foldAddress(ret.hi, ret.lo),
    func,
    retp: foldAddress(retp.hi, retp.lo),
    retHi: ret.hi,
    retLo: ret.lo,
    retpHi: retp.hi,
    retpLo: retp.lo,
  };
}

/** A kretprobe instance from exact 64-bit `ret_addr` and `fp`. */
export function kretprobeInstance(retAddr: U64, fp: U64): KretprobeInstance {
  return {
    retAddr: foldAddress(retAddr.hi, retAddr.lo),
    fp: foldAddress(fp.hi, fp.lo),
    retAddrHi: retAddr.hi,
    retAddrLo: retAddr.lo,
    fpHi: fp.hi,
    fpLo: fp.lo,
  };
}

/** The exact halves of a canonical folded address. */
export function u64Of(a: Addr): U64 {
  return { hi: addrHi(a), lo: addrLo(a) };
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
