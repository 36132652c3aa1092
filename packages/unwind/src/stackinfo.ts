import type { Addr } from '@klpsim/arm64';
import { type Cpu, type CpuStack, type MemoryRegion, StackType } from '@klpsim/kernel';
import type { UnwindState } from './state.js';

/**
 * The stacks a walk may use and the one-way consumption rule
 * (arch/arm64/include/asm/stacktrace/common.h).
 */

/** What the walking context of `current` lets the unwinder see beyond the task stack. */
export interface StackContext {
  /** `!preemptible()`: the per-CPU IRQ and overflow stacks are known. */
  readonly nonPreemptible: boolean;
  /** `in_nmi()`: the SDEI stacks are known. */
  readonly inNmi: boolean;
  /** `current_in_efi()`: the EFI runtime stack is known. */
  readonly inEfi: boolean;
}

/** Returned by `unwindFindStack` when the object lies on `state->stack` itself. */
export const ON_CURRENT = -2;
/** Returned by `unwindFindStack` when no known stack holds the object. */
export const ON_NONE = -1;

function addStack(
  st: UnwindState,
  type: number,
  low: Addr,
  high: Addr,
  region: MemoryRegion | null,
): void {
  const i = st.nrStacks++;
  st.stackType[i] = type;
  st.stackRegion[i] = region;
  st.stackLow[i] = low;
  st.stackHigh[i] = high;
  st.stackOrigLow[i] = low;
  st.stackOrigHigh[i] = high;
}

function addCpuStack(st: UnwindState, type: number, s: CpuStack | null): void {
  if (s !== null)
    addStack(st, type, s.low, s.high, st.machine.memory.regionOf(s.low, s.high - s.low));
}

/**
 * Fills `stacks[]` as `kunwind_stack_walk` does: the task stack always; the
 * per-CPU stacks only for `current` in the contexts that may be on them.
 * The kernel keeps unknown entries in its array; they can never match, so
 * the list here holds only the known ones, in the kernel's order.
 */
export function initStacks(
  st: UnwindState,
  cpu: Cpu | undefined,
  nonPreemptible: boolean,
  inNmi: boolean,
  inEfi: boolean,
): void {
  const task = st.task;
  st.nrStacks = 0;
  addStack(st, StackType.TASK, task.stack.low, task.stack.high, task.stack.region);
  if (cpu !== undefined) {
    if (nonPreemptible) {
      addCpuStack(st, StackType.IRQ, cpu.irqStack);
      addCpuStack(st, StackType.OVERFLOW, cpu.overflowStack);
    }
    if (inNmi) {
      addCpuStack(st, StackType.SDEI_NORMAL, cpu.sdeiNormalStack);
      addCpuStack(st, StackType.SDEI_CRITICAL, cpu.sdeiCriticalStack);
    }
    if (inEfi) addCpuStack(st, StackType.EFI, cpu.efiStack);
  }
  st.curLow = Number.NaN;
  st.curHigh = Number.NaN;
  st.curType = StackType.UNKNOWN;
  st.curRegion = null;
}

/**
 * `unwind_find_stack`: the stack holding all of `[sp, sp+size)`, trying the
 * current stack first. NaN bounds (an unknown stack) never match.
 */
export function unwindFindStack(st: UnwindState, sp: Addr, size: number): number {
  if (sp >= st.curLow && sp + size <= st.curHigh) return ON_CURRENT;
  const n = st.nrStacks;
  for (let i = 0; i < n; i++) {
    if (sp >= st.stackLow[i]! && sp + size <= st.stackHigh[i]!) return i;
  }
  return ON_NONE;
}

/**
 * `unwind_consume_stack`: the object at `[sp, sp+size)` is used up. A stack
 * taken from the list leaves it for good and replaces the current one, so a
 * stack that has been left can never be found again: loops are impossible.
 */
export function unwindConsumeStack(st: UnwindState, where: number, sp: Addr, size: number): void {
  if (where !== ON_CURRENT) {
    st.curHigh = st.stackHigh[where]!;
    st.curType = st.stackType[where]!;
    st.curRegion = st.stackRegion[where]!;
    st.stackLow[where] = Number.NaN;
    st.stackHigh[where] = Number.NaN;
  }
  st.curLow = sp + size;
}

/** The memory of the stack `unwindFindStack` returned. */
export function regionOfFound(st: UnwindState, where: number): MemoryRegion | null {
  return where === ON_CURRENT ? st.curRegion : st.stackRegion[where]!;
}

/**
 * `on_accessible_stack` of the pre-6.2 unwinders: the full bounds of every
 * known stack, consumed or not (they track progress with `prev_fp` and
 * `stacks_done` instead). Returns the index in `stacks[]` or ON_NONE.
 */
export function onAccessibleStack(st: UnwindState, sp: Addr, size: number): number {
  const n = st.nrStacks;
  for (let i = 0; i < n; i++) {
    if (sp >= st.stackOrigLow[i]! && sp + size <= st.stackOrigHigh[i]!) return i;
  }
  return ON_NONE;
}

/** Cold path: would `[sp, sp+size)` have fit a stack the walk knew before it moved on? */
export function wasOnKnownStack(st: UnwindState, sp: Addr, size: number): boolean {
  return onAccessibleStack(st, sp, size) !== ON_NONE;
}

/** Reads the 16-byte record at `fp` (on the stack `where`) into the state's scratch; false if unmapped. */
export function readRecord(st: UnwindState, region: MemoryRegion | null, fp: Addr): boolean {
  if (region === null || fp < region.start || fp + 16 > region.end) return false;
  const w = region.words;
  // A stack is far smaller than 4 GiB: the offset is a small integer, so >>> is exact.
  const i = (fp - region.start) >>> 2;
  st.recFpLo = w[i]!;
  st.recFpHi = w[i + 1]!;
  st.recLrLo = w[i + 2]!;
  st.recLrHi = w[i + 3]!;
  return true;
}
