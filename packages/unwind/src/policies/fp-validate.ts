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
 * mainline's walk: objtool's ORC data gives, for every pc, where the frame
 * is; the frame-pointer unwinder stays the unwinder, and every frame it
 * steps from is checked against that data. Any frame whose pc has no data,
 * or whose frame pointer is not where the data says the frame record is,
 * makes the walk unreliable. The frame state is klpsim's own analysis of
 * the text (@klpsim/frames), standing in for ORC.
 *
 * The check, before each step from an entry (pc, fp):
 * - a return address is looked up at its call (pc - 4), as ORC looks up
 *   `ip - 1`, since a call to a noreturn function may be a function's last
 *   word; a pt_regs pc, where the instruction had not yet run, at pc itself;
 * - the state there must be F (x29 is this function's record); L or S means
 *   the frame-pointer step would skip this function's caller (FP_MISMATCH);
 * - the record must not lie below the frame of the function called from
 *   here: fp >= the callee's CFA (or `regs->sp` at a pt_regs pc) when both
 *   are on the same stack;
 * - where fp holds a meta record (the task's FINAL record, or an exception's
 *   pt_regs) the kernel itself marked the frame: entry assembly has no ORC
 *   of its own to compare, so nothing is checked there.
 * The reliable consumer refuses nothing of its own: a pt_regs pc passes
 * when its frame validates (state F), and fails otherwise.
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

/** The frame the walk is about to step from agrees with the frame state. */
function validate(st: UnwindState): boolean {
  if (atMetaRecord(st)) return true;
  const atRegs = st.source === Source.REGS_PC;
  const c = st.cursor;
  if (st.frames === null || !st.frames.fill(atRegs ? st.pc : st.pc - 4, c)) {
    st.setReason('NO_FRAME_STATE', st.pc);
    return false;
  }
  if (c.state !== FrameStateCode.F) {
    st.setReason('FP_MISMATCH', st.pc);
    return false;
  }
  let floor = st.cfaFloor;
  if (atRegs) {
    const w = st.word;
    floor = st.machine.memory.read64(st.regs + st.machine.config.ptRegs.pcOffset - 8, w)
      ? foldAddress(w.hi, w.lo)
      : Number.NaN;
  }
  if (!Number.isNaN(floor) && sameStack(st, st.fp, floor) && st.fp < floor) {
    st.setReason('FP_MISMATCH', st.fp);
    return false;
  }
  // The CFA of this frame: the least address its caller's record may have.
  st.cfaFloor = st.fp - c.recordOffset;
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
  isReliable: (st) => st.frames?.fill(st.pc, st.cursor) === true,
  recover: recoverReturnAddress,
};
