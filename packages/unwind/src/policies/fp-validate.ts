import { foldAddress } from '@klpsim/arm64';
import { FrameStateCode } from '@klpsim/frames';
import { consumeEntry } from '../checks.js';
import { recoverReturnAddress } from '../recover.js';
import { EINVAL, Source, type UnwindState } from '../state.js';
import { mainline, needsMetaRecords } from './mainline.js';
import type { Policy } from './policy.js';

/**
 * "arm64: livepatch: Use ORC for dynamic frame pointer validation"
 * (Madhavan T. Venkataraman, RFC v2 2022, v3 2023, unmerged), over
 * mainline's walk: objtool's ORC data gives, for every pc, where the CFA is
 * (sp + sp_offset) and where the frame record is (CFA + fp_offset); the
 * frame-pointer unwinder stays the unwinder, and every frame it steps from
 * is checked against that data (`unwind_check_reliable`: `cfa += sp_offset;
 * fp = cfa + fp_offset; if (state->fp != fp) unreliable`). Any frame whose
 * pc has no data, or whose frame pointer is not the predicted one, makes
 * the walk unreliable. The frame state is klpsim's own analysis of the text
 * (@klpsim/frames: `spOffset` and `recordOffset` are ORC's two offsets),
 * standing in for ORC.
 *
 * The check, before each step from an entry (pc, fp):
 * - a return address is looked up at its call (pc - 4), as ORC looks up
 *   `ip - 1`, since a call to a noreturn function may be a function's last
 *   word; a pt_regs pc, where the instruction had not yet run, at pc itself;
 * - the state there must be F (x29 is this function's record); L or S means
 *   the frame-pointer step would skip this function's caller (FP_MISMATCH);
 * - the running CFA: sp of this frame is the CFA of the frame checked before
 *   (the task's saved sp for the first; `regs->sp` after pt_regs), so the
 *   CFA is sp + spOffset and fp must be exactly CFA + recordOffset
 *   (FP_MISMATCH otherwise). Where sp is not known (the walk started from a
 *   caller, the stack changed, sp moved by a register amount) the CFA is
 *   taken from x29, as an fp-based ORC entry does, and nothing is compared;
 * - where fp holds a meta record (the task's FINAL record, or an
 *   exception's pt_regs) the kernel marked the frame itself: the entry
 *   assembly's frame is not compared (the RFC annotates it with unwind
 *   hints; klpsim has no such data), and sp is next known from pt_regs.
 * The reliable consumer refuses nothing of its own: a pt_regs pc passes
 * when its frame validates (state F) and fails otherwise.
 */

/** Whether `a` and `b` lie on the same one of the walk's stacks (as they were before it). */
function sameStack(st: UnwindState, a: number, b: number): boolean {
  for (let i = 0; i < st.nrStacks; i++) {
    const lo = st.stackOrigLow[i]!;
    const hi = st.stackOrigHigh[i]!;
    if (a >= lo && a < hi) return b >= lo && b < hi;
  }
  return false;
}

/** The record at fp is a meta record (zero fp and lr) of a kernel that has them. */
function atMetaRecord(st: UnwindState): boolean {
  const mem = st.machine.memory;
  const w = st.word;
  if (st.metaTypeWord < 0 || !mem.read64(st.fp, w) || (w.hi | w.lo) !== 0) return false;
  return mem.read64(st.fp + 8, w) && (w.hi | w.lo) === 0;
}

/** The frame state where this entry's frame is described: the call for a return address. */
function lookUp(st: UnwindState): boolean {
  const at = st.source === Source.REGS_PC ? st.pc : st.pc - 4;
  return st.frames?.fill(at, st.cursor) === true;
}

/** The frame the walk is about to step from agrees with the frame state. */
function validate(st: UnwindState): boolean {
  if (atMetaRecord(st)) {
    st.frameSp = Number.NaN;
    return true;
  }
  const c = st.cursor;
  if (!lookUp(st)) {
    st.setReason('NO_FRAME_STATE', st.pc);
    return false;
  }
  if (c.state !== FrameStateCode.F) {
    st.setReason('FP_MISMATCH', st.pc);
    return false;
  }
  let sp = st.frameSp;
  if (st.source === Source.REGS_PC) {
    const w = st.word;
    const at = st.regs + st.machine.config.ptRegs.pcOffset - 8;
    sp = st.machine.memory.read64(at, w) ? foldAddress(w.hi, w.lo) : Number.NaN;
  }
  let cfa: number;
  if (!Number.isNaN(sp) && !Number.isNaN(c.spOffset) && sameStack(st, st.fp, sp)) {
    cfa = sp + c.spOffset;
    if (st.fp !== cfa + c.recordOffset) {
      st.setReason('FP_MISMATCH', st.fp);
      return false;
    }
  } else {
    cfa = st.fp - c.recordOffset;
  }
  st.frameSp = cfa;
  return true;
}

function next(st: UnwindState): number {
  if (st.needReliable && st.source !== Source.UNKNOWN && !validate(st)) return EINVAL;
  return mainline.next(st);
}

export const fpValidate: Policy = {
  name: 'fp-validate',
  summary:
    'the ORC frame-pointer validation RFC (v2 2022, v3 2023, unmerged) over mainline: every frame checked against the frame state; a mismatch or no data is unreliable',
  hasReliableWalk: true,
  rules: { ...mainline.rules, refuses: [], frameState: 'every-frame' },
  checkLayout: (machine) => needsMetaRecords('fp-validate', machine),
  consume: consumeEntry,
  next,
  // The state test of `validate` (the running CFA needs the walk itself).
  isReliable: (st) => lookUp(st) && st.cursor.state === FrameStateCode.F,
  recover: recoverReturnAddress,
};
