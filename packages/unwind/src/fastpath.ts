import { KERNEL_HI_BASE, TWO_32 } from '@klpsim/arm64';
import type { MemoryRegion } from '@klpsim/kernel';
import {
  RULE_CONSUME,
  RULE_END_BEFORE_CONSUME,
  RULE_END_BEFORE_NEXT,
  RULE_META,
  RULE_REGS_PC,
  RULE_REGS_STEP,
  RULE_TEXT,
} from './rules.js';
import { Source, type UnwindState } from './state.js';
import { entryKind, type TraceBuffer } from './trace.js';

/**
 * The common case of every walk, with the hot state in locals.
 *
 * The policies' step functions (step.ts) are the reference semantics; they
 * keep fp, pc and the stack bounds in the state object, and V8 pays for every
 * double it reads back from a field. Most frames are plain: a record on the
 * stack already being unwound, a kernel return address that no tracer
 * rewrote, room in the buffer, no optional checks. This loop runs those in
 * registers and stops, without side effects, at the first thing that is not
 * plain, spilling its locals so the reference code resumes exactly there.
 * `fastpath.test.ts` runs every walk both ways and requires identical results.
 *
 * Cost per frame: one bounds check, four word loads, two folds, one store of
 * each entry field; no calls, no allocation.
 */

/** "No stack yet": an empty word array keeps `words` one type for the optimiser. */
const NO_WORDS = new Uint32Array(0);

/** What `walkPlainFrames` leaves to the policy. */
export const RESUME_AT_CONSUME = 0;
export const RESUME_AT_NEXT = 1;
/** Mainline only: the walk reached the task's FINAL meta record and ended with success. */
export const WALK_ENDED = 2;

/**
 * Runs plain frames from the pc pending in `st`, under the policy's rule
 * bits `rules` (rules.ts: the bounds rule, the end rule, meta records, what
 * the reliable consumer refuses). Returns RESUME_AT_NEXT when it stopped
 * after consuming that pc, RESUME_AT_CONSUME when it stopped before
 * consuming it, WALK_ENDED when it met the task's FINAL meta record.
 */
export function walkPlainFrames(st: UnwindState, trace: TraceBuffer, rules: number): number {
  const consuming = (rules & RULE_CONSUME) !== 0;
  // The stack being unwound: [low, high) still usable, its words, its type.
  // words === null: no stack yet (the first step enters one from the list).
  let low: number;
  let high: number;
  let words: Uint32Array = NO_WORDS;
  let base = 0;
  let type: number;
  if (consuming) {
    const region = st.curRegion;
    low = st.curLow;
    high = st.curHigh;
    if (region !== null) {
      words = region.words;
      base = region.start;
    }
    type = st.curType;
  } else {
    let i = 0;
    while (i < st.nrStacks && st.stackType[i] !== st.prevType) i++;
    const region = i < st.nrStacks ? st.stackRegion[i]! : null;
    low = st.prevFp + 1;
    high = i < st.nrStacks ? st.stackOrigHigh[i]! : Number.NaN;
    if (region !== null) {
      words = region.words;
      base = region.start;
    }
    type = st.prevType;
  }
  const reliable = st.needReliable;
  const kmask = st.kernelMask;
  const rth = st.returnToHandler;
  const kr = st.kretprobeTrampoline;
  const finalFrame = st.finalFrame;
  const text = st.machine.text;
  const symCode = st.machine.symCode;
  const pcs = trace.pcs;
  const his = trace.his;
  const los = trace.los;
  const kinds = trace.kinds;
  const last = trace.size - 1;
  let n = trace.len;
  let fp = st.fp;
  let fpHi = st.fpHi;
  let fpLo = st.fpLo;
  let pc = st.pc;
  let pcHi = st.pcHi;
  let pcLo = st.pcLo;
  let source: number = st.source;
  let flags = st.flags;
  let prevFp = st.prevFp;
  let prevType = st.prevType;
  let stacksDone = st.stacksDone;
  let afterConsume = false;
  let ended = false;
  const typeWord = st.metaTypeWord;
  const typeFinal = st.metaTypeFinal;
  const metaSize = st.metaSize;
  const text0 = st.coreTextStart;
  const text1 = st.coreTextEnd;

  // Loop invariants, decided once per call rather than per frame.
  const refuseRegsPc = reliable && (rules & RULE_REGS_PC) !== 0;
  const finalBeforeConsume = (rules & RULE_END_BEFORE_CONSUME) !== 0;
  const finalBeforeNext = (rules & RULE_END_BEFORE_NEXT) !== 0;
  const textChecked = reliable && (rules & RULE_TEXT) !== 0;
  const metaRecords = (rules & RULE_META) !== 0;
  const regsStep = (rules & RULE_REGS_STEP) !== 0;
  for (;;) {
    // consume: anything but a plain store goes back to the policy's consume.
    if (n >= last) break;
    if (refuseRegsPc && source === Source.REGS_PC) break;
    if (finalBeforeConsume && fp === finalFrame) break;
    if (
      textChecked &&
      (!((pc >= text0 && pc < text1) || text.kernelTextAddressOrInit(pc)) || symCode.contains(pc))
    ) {
      break;
    }
    pcs[n] = pc;
    his[n] = pcHi;
    los[n] = pcLo;
    kinds[n] = entryKind(source, flags, type);
    n++;
    afterConsume = true;

    // next: one record on the same stack, a kernel fp and a kernel return address.
    if (regsStep && source === Source.REGS_PC) break;
    if (finalBeforeNext && fp === finalFrame) break;
    if ((fpLo & 7) !== 0) break;
    if (!(fp >= low && fp + 16 <= high) || words === NO_WORDS) {
      // The first record of the walk: enter the stack that holds it, as the
      // reference code would; any later change of stack is not plain.
      if (consuming ? words !== NO_WORDS : prevType !== 0) break;
      const k = stackHolding(st, fp, consuming);
      if (k < 0) break;
      const region = st.stackRegion[k]!;
      if (
        region === null ||
        (!consuming && (stacksDone & (1 << st.stackType[k]!)) !== 0) ||
        fp < region.start ||
        fp + 16 > region.end
      )
        break;
      // A zero {fp, lr} is a meta record, never plain: look before entering
      // the stack, so that the reference code still finds the stack in the
      // list (a PT_REGS record first needs the whole pt_regs on it).
      const j = (fp - region.start) >>> 2;
      const rw = region.words;
      if ((rw[j]! | rw[j + 1]! | rw[j + 2]! | rw[j + 3]!) === 0) break;
      words = region.words;
      base = region.start;
      type = st.stackType[k]!;
      if (consuming) {
        high = st.stackHigh[k]!;
        st.stackLow[k] = Number.NaN;
        st.stackHigh[k] = Number.NaN;
      } else {
        high = st.stackOrigHigh[k]!;
        stacksDone |= 1 << prevType;
        prevType = type;
      }
      low = fp;
    }
    const i = (fp - base) >>> 2;
    const nfpLo = words[i]!;
    const nfpHi = words[i + 1]!;
    const lrLo = words[i + 2]!;
    const lrHi = words[i + 3]!;
    if ((nfpHi | nfpLo | lrHi | lrLo) === 0 && metaRecords) {
      // A meta record: only the task's own FINAL one (on this stack) is plain, and ends the walk.
      if (
        fp === finalFrame &&
        fp + metaSize <= high &&
        words[i + typeWord + 1] === 0 &&
        words[i + typeWord] === typeFinal
      )
        ended = true;
      break;
    }
    if (nfpHi < KERNEL_HI_BASE) break;
    // A return address with bit 55 clear stays in the user half (pac.ts): not plain.
    if ((lrHi & 0x00800000) === 0) break;
    const npcHi = (lrHi | kmask) >>> 0;
    const npc = (npcHi - KERNEL_HI_BASE) * TWO_32 + lrLo;
    if (npc === rth || npc === kr) break;
    if (consuming) low = fp + 16;
    else {
      prevFp = fp;
      low = fp + 1;
    }
    fpHi = nfpHi;
    fpLo = nfpLo;
    fp = (nfpHi - KERNEL_HI_BASE) * TWO_32 + nfpLo;
    pc = npc;
    pcHi = npcHi;
    pcLo = lrLo;
    source = Source.FRAME;
    flags = 0;
    afterConsume = false;
  }

  trace.len = n;
  st.consumed = n;
  st.fp = fp;
  st.fpHi = fpHi;
  st.fpLo = fpLo;
  st.pc = pc;
  st.pcHi = pcHi;
  st.pcLo = pcLo;
  st.source = source as Source;
  st.flags = flags;
  if (consuming) {
    st.curLow = low;
    st.curHigh = high;
    st.curType = type;
    if (words !== NO_WORDS && st.curRegion === null) st.curRegion = regionOfType(st, type);
  } else {
    st.prevFp = prevFp;
    st.prevType = prevType;
    st.stacksDone = stacksDone;
    st.curType = type;
  }
  return ended ? WALK_ENDED : afterConsume ? RESUME_AT_NEXT : RESUME_AT_CONSUME;
}

/** The index of the known stack holding `[fp, fp+16)`: still-usable bounds (consuming) or original ones. */
function stackHolding(st: UnwindState, fp: number, consuming: boolean): number {
  const lows = consuming ? st.stackLow : st.stackOrigLow;
  const highs = consuming ? st.stackHigh : st.stackOrigHigh;
  for (let k = 0; k < st.nrStacks; k++) if (fp >= lows[k]! && fp + 16 <= highs[k]!) return k;
  return -1;
}

function regionOfType(st: UnwindState, type: number): MemoryRegion | null {
  for (let k = 0; k < st.nrStacks; k++) if (st.stackType[k] === type) return st.stackRegion[k]!;
  return null;
}
