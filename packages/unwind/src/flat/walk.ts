import { StackType } from '@klpsim/kernel';
import type { UnwindRules } from '../policies/policy.js';
import {
  RULE_CONSUME,
  RULE_END_BEFORE_CONSUME,
  RULE_END_BEFORE_NEXT,
  RULE_META,
  RULE_REGS_PC,
  RULE_TEXT,
  ruleBits,
} from '../rules.js';
import { Source } from '../state.js';
import { entryKind } from '../trace.js';
import {
  type ArenaViews,
  K_KMASK,
  K_KR,
  K_META_FINAL,
  K_META_SIZE,
  K_META_TYPE,
  K_RTH,
  K_SYMCODE_N,
  K_TEXT,
  K_TEXT_OK,
  K_TEXT_SIZE,
  T_BASE,
  T_FINAL,
  T_FLAT,
  T_FP,
  T_PC,
  T_SIZE,
  T_STACK,
  TASK_BYTES,
} from './arena.js';

/**
 * The reliable walk of a blocked task over a StackArena, in int32 arithmetic
 * only: the whole walk when it is plain, else nothing.
 *
 * A plain walk starts at `thread.cpu_context`, follows frame records on the
 * task stack with kernel fps and kernel return addresses that no tracer
 * rewrote, and ends the way the policy's kernel ends a walk with success. At
 * the first thing that is not plain (a failure, a trampoline, a meta record
 * other than the task's FINAL one, a full buffer, a pc outside core text
 * under a text check) it returns HANDED_BACK having changed nothing but
 * scratch, and the caller walks the task with the reference step functions.
 * So the flat walk never decides a failure; `flat.test.ts` requires that
 * every walk it completes is the reference's, entry for entry.
 *
 * Cost per frame: one alignment and two bounds comparisons, four loads, a
 * kernel-half test on fp and lr, two trampoline comparisons, three stores;
 * under a text check, two comparisons and one page-map load. No doubles,
 * no calls, no allocation.
 */

/** Returned when the walk is not plain: walk the task with the reference code. */
export const HANDED_BACK = -1;

/**
 * The flat walk's mode for a policy's rules (rules.ts bits), for the
 * reliable walk or the debug one: what the reliable consumer refuses is
 * checked in the reliable walk only.
 */
export function flatMode(rules: UnwindRules, reliable: boolean): number {
  const bits = ruleBits(rules);
  return reliable ? bits : bits & ~(RULE_TEXT | RULE_REGS_PC);
}

const KIND_START = entryKind(Source.TASK, 0, StackType.UNKNOWN);
const KIND_FRAME = entryKind(Source.FRAME, 0, StackType.TASK);

/** Where a flat walk stores entries: a TraceBuffer, or `flatEntries` in a worker. */
export interface FlatEntries {
  readonly his: Uint32Array;
  readonly los: Uint32Array;
  readonly kinds: Uint8Array;
}

/** One walk's outcome, for `walkTaskFlat` (each thread has its own module instance). */
const ONE = new Int32Array(1);

/**
 * Walks task `t` of `a` into `entries` (at most `size - 1` entries, as the
 * reference leaves the last slot to its buffer-full rule). Returns the
 * number of entries (a walk with success), or HANDED_BACK.
 */
export function walkTaskFlat(
  a: ArenaViews,
  mode: number,
  t: number,
  size: number,
  entries: FlatEntries,
): number {
  walkFlat(a, mode, size, t, 1, ONE, t, entries);
  const n = ONE[0]!;
  // Every entry of a plain walk is the task's saved pc, then return addresses read from its stack.
  if (n > 0) {
    entries.kinds[0] = KIND_START;
    entries.kinds.fill(KIND_FRAME, 1, n);
  }
  return n;
}

/**
 * The flat walk of tasks `[first, first + count)`: `verdicts[t - vbase]`
 * becomes task t's entry count or HANDED_BACK; the pcs of the last walk
 * stay in `entries.his` / `entries.los` (`walkTaskFlat` adds their kinds).
 * Returns the entries of the completed walks.
 *
 * One loop over the tasks with the per-kernel values in locals: what a walk
 * pays before its first load is one task-table row.
 */
export function walkFlat(
  a: ArenaViews,
  mode: number,
  size: number,
  first: number,
  count: number,
  verdicts: Int32Array,
  vbase: number,
  entries: FlatEntries,
): number {
  // The arena as int32 words: an i64 at byte b is m[b >> 2] (low half) and m[(b >> 2) + 1].
  const m = a.m32;
  const pages = a.m8;
  const pagesAt = a.layout.pages;
  const his = entries.his;
  const los = entries.los;
  const kmask = m[(K_KMASK >> 2) + 1]! | 0;
  const rthLo = m[K_RTH >> 2]! | 0;
  const rthHi = m[(K_RTH >> 2) + 1]! | 0;
  const krLo = m[K_KR >> 2]! | 0;
  const krHi = m[(K_KR >> 2) + 1]! | 0;
  const metaType = m[K_META_TYPE >> 2]! | 0;
  const metaTypeWord = metaType >> 2;
  const metaFinal = m[K_META_FINAL >> 2]! | 0;
  const metaSize = m[K_META_SIZE >> 2]! | 0;
  const consuming = (mode & RULE_CONSUME) !== 0;
  const endBeforeNext = (mode & RULE_END_BEFORE_NEXT) !== 0;
  const endBeforeConsume = (mode & RULE_END_BEFORE_CONSUME) !== 0;
  // Only a FINAL meta record ends a walk at a zero record (6.13+).
  const endAtMeta = (mode & RULE_META) !== 0 && metaType >= 0;
  const textChecked = (mode & RULE_TEXT) !== 0;
  const textLo = m[K_TEXT >> 2]! | 0;
  const textHi = m[(K_TEXT >> 2) + 1]! | 0;
  const textSize = m[K_TEXT_SIZE >> 2]! | 0;
  const textOk = m[K_TEXT_OK >> 2] !== 0;
  const last = (size | 0) - 1;
  let frames = 0;
  for (let t = first; t < first + count; t++) {
    const row = (a.layout.tasks + t * TASK_BYTES) >> 2;
    let result = HANDED_BACK;
    const base = m[row + (T_BASE >> 2)]! >> 2;
    const stackSize = m[row + (T_SIZE >> 2)]! | 0;
    const stackLo = m[row + (T_STACK >> 2)]! | 0;
    const stackHi = m[row + (T_STACK >> 2) + 1]! | 0;
    const finalLo = m[row + (T_FINAL >> 2)]! | 0;
    const finalHi = m[row + (T_FINAL >> 2) + 1]! | 0;
    let fpLo = m[row + (T_FP >> 2)]! | 0;
    let fpHi = m[row + (T_FP >> 2) + 1]! | 0;
    let pcLo = m[row + (T_PC >> 2)]! | 0;
    let pcHi = m[row + (T_PC >> 2) + 1]! | 0;
    // Not flat, or a starting pc that is a trampoline (recovering it is not plain).
    const startsPlain =
      m[row + (T_FLAT >> 2)] !== 0 &&
      (textOk || !textChecked) &&
      !(pcHi === rthHi && pcLo === rthLo) &&
      !(pcHi === krHi && pcLo === krLo);
    if (startsPlain) {
      // Bytes of the stack below this are used up (consumed, or at or below prev_fp).
      let lowOff = 0;
      let n = 0;
      for (;;) {
        // consume
        if (n >= last) break;
        if (endBeforeConsume && fpHi === finalHi && fpLo === finalLo) {
          his[n] = pcHi;
          los[n] = pcLo;
          result = n + 1;
          break;
        }
        if (textChecked) {
          const off = (pcLo - textLo) | 0;
          if (pcHi !== textHi || off < 0 || off >= textSize) break;
          if (pages[pagesAt + (off >>> 12)] !== 0 && inSymCode(a, off)) break;
        }
        his[n] = pcHi;
        los[n] = pcLo;
        n++;

        // next
        if (endBeforeNext && fpHi === finalHi && fpLo === finalLo) {
          result = n;
          break;
        }
        const off = (fpLo - stackLo) | 0;
        if ((fpLo & 7) !== 0 || fpHi !== stackHi || off < lowOff || off > stackSize - 16) break;
        const i = base + (off >> 2);
        const nfpLo = m[i]! | 0;
        const nfpHi = m[i + 1]! | 0;
        const lrLo = m[i + 2]! | 0;
        const lrHi = m[i + 3]! | 0;
        if ((nfpHi | nfpLo | lrHi | lrLo) === 0) {
          // A meta record: plain only as the task's own FINAL record, which ends the walk.
          if (
            endAtMeta &&
            fpHi === finalHi &&
            fpLo === finalLo &&
            off + metaSize <= stackSize &&
            m[i + metaTypeWord + 1] === 0 &&
            m[i + metaTypeWord] === metaFinal
          )
            result = n;
          break;
        }
        // A kernel fp: its high half is in [0xfff00000, 0xffffffff], its top 12 bits all set.
        if (nfpHi >>> 20 !== 0xfff) break;
        // PAC strip (bit 55 picks the half): a user-half or non-kernel result is not plain.
        if ((lrHi & 0x00800000) === 0) break;
        const npcHi = lrHi | kmask;
        if (npcHi >>> 20 !== 0xfff) break;
        if ((npcHi === rthHi && lrLo === rthLo) || (npcHi === krHi && lrLo === krLo)) break;
        lowOff = consuming ? off + 16 : off + 1;
        fpHi = nfpHi;
        fpLo = nfpLo;
        pcHi = npcHi;
        pcLo = lrLo;
      }
    }
    verdicts[t - vbase] = result;
    if (result > 0) frames += result;
  }
  return frames;
}

/** Binary search of the SYM_CODE union (i32 offsets from `_stext`) for `off`. */
function inSymCode(a: ArenaViews, off: number): boolean {
  const m = a.m32;
  const n = m[K_SYMCODE_N >> 2]! | 0;
  const starts = a.layout.symCode >> 2;
  let lo = 0;
  let hi = n;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (m[starts + mid]! <= off) lo = mid + 1;
    else hi = mid;
  }
  return lo > 0 && off < m[starts + n + lo - 1]!;
}
