import { addrHi, addrLo, KERNEL_HI_BASE, TWO_32 } from '@klpsim/arm64';
import type { Machine, Task } from '@klpsim/kernel';

/**
 * A snapshot of every task stack of one machine in one arena, for the flat
 * walk (flat/walk.ts), the batch API and its worker threads.
 *
 * The object model (Task -> stack -> region -> Uint32Array) costs a chain of
 * dependent loads before a walk's first record, and keeps fp and pc as
 * doubles. Here every task stack is copied into one `Int32Array` over a
 * `SharedArrayBuffer`, and everything a walk starts from sits in one int32
 * task table: the walk reads the table row, then the arena, and works on
 * 32-bit address halves only. Every 64-bit value stays exact: an address is
 * its two halves, compared as such; an offset inside a stack is the
 * difference of the low halves of two addresses with the same high half,
 * and a stack that straddles a 4 GiB boundary is not flat (its walks go to
 * the reference code).
 *
 * A snapshot: memory written after `buildStackArena` is not seen; build a
 * new arena after changing stacks.
 */

/** Per-task row of `StackArena.tasks`. */
export const T_FLAT = 0; // 1: the flat walk may start here; 0: hand every walk back
export const T_BASE = 1; // word index of the stack's lowest byte in `words`
export const T_SIZE = 2; // stack size in bytes
export const T_STACK_HI = 3; // the stack's low address, high half
export const T_STACK_LO = 4; // and low half
export const T_FP_HI = 5; // `thread.cpu_context.fp`
export const T_FP_LO = 6;
export const T_PC_HI = 7; // `thread.cpu_context.pc`
export const T_PC_LO = 8;
export const T_FINAL_HI = 9; // `&task_pt_regs(task)->stackframe`; 0:0 when the task has none
export const T_FINAL_LO = 10;
export const TASK_STRIDE = 11;

/** Slots of `StackArena.kernel`: what every walk of this kernel compares against. */
export const K_KMASK = 0; // PAC bits set in a kernel return address (0 without kernel PAC)
export const K_RTH_HI = 1; // return_to_handler (0:0 when absent: no kernel address matches)
export const K_RTH_LO = 2;
export const K_KR_HI = 3; // __kretprobe_trampoline
export const K_KR_LO = 4;
export const K_META_TYPE_WORD = 5; // word offset of the meta record's type (-1: no meta records)
export const K_META_FINAL = 6; // FRAME_META_TYPE_FINAL
export const K_META_SIZE = 7; // bytes of a meta record
export const K_TEXT_OK = 8; // 1: core text lies under one high half and below 2 GiB
export const K_TEXT_HI = 9; // _stext, high half
export const K_TEXT_LO = 10; // _stext, low half
export const K_TEXT_SIZE = 11; // _etext - _stext
export const K_SYMCODE_N = 12; // SYM_CODE ranges (their union) inside core text
export const KERNEL_SLOTS = 13;

/** The lowest kernel high half as an int32 (0xfff00000 | 0): kernel halves are [this, -1]. */
export const KERNEL_HI_INT32 = KERNEL_HI_BASE | 0;

const PAGE_SHIFT = 12;

export interface StackArena {
  /** The machine this is a snapshot of (not shared with workers). */
  readonly machine: Machine;
  readonly ntasks: number;
  /** Every task stack's words, one after the other. */
  readonly words: Int32Array;
  /** TASK_STRIDE int32s per task, in `machine.tasks` order. */
  readonly tasks: Int32Array;
  readonly kernel: Int32Array;
  /** The union of SYM_CODE ranges clipped to core text, as offsets from `_stext`: starts, ends. */
  readonly symCodeStarts: Int32Array;
  readonly symCodeEnds: Int32Array;
  /** One byte per 4 KiB page of core text: 1 where some SYM_CODE range touches it. */
  readonly symCodePages: Uint8Array;
}

/** The buffers of a StackArena, which is what a worker thread receives. */
export interface SharedStackArena {
  readonly ntasks: number;
  readonly words: SharedArrayBuffer;
  readonly tasks: SharedArrayBuffer;
  readonly kernel: SharedArrayBuffer;
  readonly symCodeStarts: SharedArrayBuffer;
  readonly symCodeEnds: SharedArrayBuffer;
  readonly symCodePages: SharedArrayBuffer;
}

function shared<T extends Int32Array | Uint8Array>(
  make: (b: SharedArrayBuffer) => T,
  bytes: number,
): T {
  return make(new SharedArrayBuffer(Math.max(bytes, 8)));
}

/** True when `[low, high)` is 8-aligned, in the kernel half, under one high half, and below 2 GiB long. */
function isFlatRange(low: number, high: number): boolean {
  return (
    Number.isFinite(low) &&
    Number.isFinite(high) &&
    low >= 0 &&
    high > low &&
    low % 8 === 0 &&
    high % 8 === 0 &&
    high - low < 2 ** 31 &&
    Math.floor(low / TWO_32) === Math.floor((high - 1) / TWO_32)
  );
}

/** Whether a task's walk can start flat: a kernel fp and pc, and its whole stack in memory. */
function flatTask(t: Task): boolean {
  const s = t.stack;
  return (
    isFlatRange(s.low, s.high) &&
    s.region !== null &&
    s.region.start <= s.low &&
    s.region.end >= s.high &&
    t.cpuContext.fp >= 0 &&
    t.cpuContext.pc >= 0
  );
}

/** Copies every task stack of `machine` into one shared arena. Never fails: a task that does not fit is marked not flat. */
export function buildStackArena(machine: Machine): StackArena {
  const list = machine.tasks;
  let total = 0;
  for (const t of list) if (flatTask(t)) total += (t.stack.high - t.stack.low) / 4;
  const words = shared((b) => new Int32Array(b), total * 4);
  const tasks = shared((b) => new Int32Array(b), list.length * TASK_STRIDE * 4);
  let next = 0;
  list.forEach((t, i) => {
    const row = i * TASK_STRIDE;
    if (!flatTask(t)) return;
    const s = t.stack;
    const region = s.region!;
    const n = (s.high - s.low) / 4;
    const from = (s.low - region.start) / 4;
    words.set(new Int32Array(region.words.buffer, region.words.byteOffset + from * 4, n), next);
    tasks[row + T_FLAT] = 1;
    tasks[row + T_BASE] = next;
    tasks[row + T_SIZE] = s.high - s.low;
    tasks[row + T_STACK_HI] = addrHi(s.low) | 0;
    tasks[row + T_STACK_LO] = addrLo(s.low) | 0;
    tasks[row + T_FP_HI] = addrHi(t.cpuContext.fp) | 0;
    tasks[row + T_FP_LO] = addrLo(t.cpuContext.fp) | 0;
    tasks[row + T_PC_HI] = addrHi(t.cpuContext.pc) | 0;
    tasks[row + T_PC_LO] = addrLo(t.cpuContext.pc) | 0;
    if (t.finalFrame >= 0) {
      tasks[row + T_FINAL_HI] = addrHi(t.finalFrame) | 0;
      tasks[row + T_FINAL_LO] = addrLo(t.finalFrame) | 0;
    }
    next += n;
  });

  const kernel = shared((b) => new Int32Array(b), KERNEL_SLOTS * 4);
  const cfg = machine.config;
  kernel[K_KMASK] = cfg.kernelPacEnabled ? cfg.pacKernelMask | 0 : 0;
  const rth = machine.special.returnToHandler;
  const kr = machine.special.kretprobeTrampoline;
  if (rth !== null && rth >= 0) {
    kernel[K_RTH_HI] = addrHi(rth) | 0;
    kernel[K_RTH_LO] = addrLo(rth) | 0;
  }
  if (kr !== null && kr >= 0) {
    kernel[K_KR_HI] = addrHi(kr) | 0;
    kernel[K_KR_LO] = addrLo(kr) | 0;
  }
  const meta = cfg.ptRegs.meta;
  kernel[K_META_TYPE_WORD] = meta === null ? -1 : meta.typeOffset >>> 2;
  kernel[K_META_FINAL] = meta === null ? -1 : meta.typeFinal;
  kernel[K_META_SIZE] = meta === null ? 0 : meta.size;

  const core = machine.text.core;
  const textOk = isFlatRange(core.start, core.end);
  kernel[K_TEXT_OK] = textOk ? 1 : 0;
  const starts: number[] = [];
  const ends: number[] = [];
  let npages = 0;
  if (textOk) {
    kernel[K_TEXT_HI] = addrHi(core.start) | 0;
    kernel[K_TEXT_LO] = addrLo(core.start) | 0;
    kernel[K_TEXT_SIZE] = core.end - core.start;
    npages = Math.ceil((core.end - core.start) / 2 ** PAGE_SHIFT);
    // `ranges` is sorted by start; keep the union, clipped to core text.
    for (const r of machine.symCode.ranges) {
      const s = Math.max(r.start, core.start) - core.start;
      const e = Math.min(r.end, core.end) - core.start;
      if (e <= s) continue;
      const last = ends.length - 1;
      if (last >= 0 && s <= ends[last]!) ends[last] = Math.max(ends[last]!, e);
      else {
        starts.push(s);
        ends.push(e);
      }
    }
  }
  kernel[K_SYMCODE_N] = starts.length;
  const symCodeStarts = shared((b) => new Int32Array(b), starts.length * 4);
  const symCodeEnds = shared((b) => new Int32Array(b), ends.length * 4);
  symCodeStarts.set(starts);
  symCodeEnds.set(ends);
  const symCodePages = shared((b) => new Uint8Array(b), npages);
  for (let i = 0; i < starts.length; i++)
    for (let p = starts[i]! >>> PAGE_SHIFT; p << PAGE_SHIFT < ends[i]!; p++) symCodePages[p] = 1;

  return {
    machine,
    ntasks: list.length,
    words,
    tasks,
    kernel,
    symCodeStarts,
    symCodeEnds,
    symCodePages,
  };
}

/** The arena's buffers, to post to a worker thread (nothing is copied). */
export function shareStackArena(a: StackArena): SharedStackArena {
  const buf = (v: Int32Array | Uint8Array) => v.buffer as SharedArrayBuffer;
  return {
    ntasks: a.ntasks,
    words: buf(a.words),
    tasks: buf(a.tasks),
    kernel: buf(a.kernel),
    symCodeStarts: buf(a.symCodeStarts),
    symCodeEnds: buf(a.symCodeEnds),
    symCodePages: buf(a.symCodePages),
  };
}

/** The views over shared buffers a worker received; `machine` is absent there. */
export type ArenaViews = Omit<StackArena, 'machine'>;

/** Views over the buffers of `shareStackArena`, in a worker. */
export function stackArenaViews(s: SharedStackArena): ArenaViews {
  return {
    ntasks: s.ntasks,
    words: new Int32Array(s.words),
    tasks: new Int32Array(s.tasks),
    kernel: new Int32Array(s.kernel),
    symCodeStarts: new Int32Array(s.symCodeStarts),
    symCodeEnds: new Int32Array(s.symCodeEnds),
    symCodePages: new Uint8Array(s.symCodePages),
  };
}
