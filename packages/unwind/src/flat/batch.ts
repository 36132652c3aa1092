import { EINVAL } from '../state.js';
import type { Walker, WalkOptions } from '../walk.js';
import { type ArenaViews, K_SYMCODE_N, type StackArena, TRACE_ENTRIES } from './arena.js';
import { type FlatEntries, HANDED_BACK, walkFlat } from './walk.js';
import { coreWalkOf } from './wasm.js';

/**
 * Many walks in one call: `stack_trace_save_tsk_reliable` (or the debug
 * walk) for a run of tasks of a StackArena, each task's outcome in one int32.
 */

/** What a batch walk needs to know: the walk, its buffer size. Walks start at the saved context. */
export type BatchOptions = Pick<WalkOptions, 'reliable' | 'size'>;

/** The buffer size a batch walk uses (the kernel's 100 for livepatch; 512 for the debug walk). */
export function batchSize(options: BatchOptions): number {
  return options.size ?? (options.reliable ? 100 : 512);
}

/**
 * Runs the flat walk over tasks `[first, first + count)` of `a` with `mode`
 * (flatMode): `a.verdicts[i]` becomes the entry count, or HANDED_BACK where
 * the walk is not plain. Returns the entries of the completed walks. The
 * WebAssembly core runs it when the build made one (in trace slot `slot`:
 * 0 for the main thread, 1 to 8 for workers), else the JavaScript twin
 * (into `entries`); both give the same outcomes. This is what a worker
 * thread runs: it needs no Machine.
 */
export function walkFlatRange(
  a: ArenaViews,
  mode: number,
  size: number,
  first: number,
  count: number,
  slot: number,
  entries: FlatEntries,
): number {
  const walk = size <= TRACE_ENTRIES ? coreWalkOf(a) : null;
  if (walk === null) return walkFlat(a, mode, size, first, count, a.verdicts, 0, entries);
  const l = a.layout;
  const nsym = a.m32[K_SYMCODE_N >> 2]!;
  return walk(
    first,
    count,
    mode,
    size,
    l.tasks,
    0,
    l.verdicts,
    l.traces + slot * TRACE_ENTRIES * 8,
    l.symCode,
    l.symCode + nsym * 4,
    l.pages,
  );
}

/** Scratch entries for the JavaScript flat walk with room for `size`. */
export function flatEntries(size: number): FlatEntries {
  return { his: new Uint32Array(size), los: new Uint32Array(size), kinds: new Uint8Array(size) };
}

/**
 * Walks the tasks a flat walk handed back (`verdicts[i] === HANDED_BACK`)
 * with the reference code. Returns their entries.
 */
export function walkHandedBack(
  walker: Walker,
  options: BatchOptions,
  first: number,
  count: number,
  verdicts: Int32Array,
): number {
  let frames = 0;
  const tasks = walker.machine.tasks;
  for (let i = first; i < first + count; i++) {
    if (verdicts[i] !== HANDED_BACK) continue;
    const ret = walker.walk(tasks[i]!, options);
    frames += walker.trace.len;
    verdicts[i] = ret < 0 ? EINVAL : walker.trace.len;
  }
  return frames;
}

/**
 * Walks tasks `[first, first + count)` of `arena` (a snapshot of
 * `walker.machine`) from their saved contexts: `arena.verdicts[i]` becomes
 * the number of entries stored, or -EINVAL when the reliable walk failed,
 * as `stack_trace_save_tsk_reliable` returns. Returns the entries of all
 * walks (failed ones included, as far as they got). Allocation-free.
 */
export function walkBatch(
  walker: Walker,
  arena: StackArena,
  options: BatchOptions,
  first: number,
  count: number,
): number {
  const trace = walker.trace;
  trace.reset(batchSize(options));
  const verdicts = arena.verdicts;
  if (arena.machine !== walker.machine || !walker.plainFrames) {
    // Not a snapshot of this machine, or a policy with no plain frames: every walk goes to the reference code.
    verdicts.fill(HANDED_BACK, first, first + count);
    return walkHandedBack(walker, options, first, count, verdicts);
  }
  const mode = walker.flatModeOf(options.reliable);
  const frames = walkFlatRange(arena, mode, trace.size, first, count, 0, trace);
  return frames + walkHandedBack(walker, options, first, count, verdicts);
}
