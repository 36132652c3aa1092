import { foldAddress, KERNEL_HI_BASE, stripInsnPacHi, TWO_32 } from '@klpsim/arm64';
import { RULE_META } from './rules.js';
import {
  ON_NONE,
  onAccessibleStack,
  readRecord,
  regionOfFound,
  unwindConsumeStack,
  unwindFindStack,
  wasOnKnownStack,
} from './stackinfo.js';
import { EINVAL, ENOENT, Source, type UnwindState } from './state.js';

/**
 * One unwind step over a frame record, in the two generations of bounds
 * checking: consumption (6.2+) and `prev_fp` / `stacks_done` (before).
 * Each leaves the raw LR in `st.recLrHi/Lo` for the policy to strip.
 */

function failOffStack(st: UnwindState, addr: number, size: number): number {
  st.setReason(wasOnKnownStack(st, addr, size) ? 'STACK_REENTERED' : 'RECORD_OFF_STACK', addr);
  return EINVAL;
}

/** The fp from the record just read (raw halves kept for `fp & 7` and messages). */
export function takeRecordFp(st: UnwindState): void {
  const hi = st.recFpHi;
  const lo = st.recFpLo;
  st.fpHi = hi;
  st.fpLo = lo;
  // foldAddress, written out: a call that returns a double boxes it.
  st.fp = hi >= KERNEL_HI_BASE ? (hi - KERNEL_HI_BASE) * TWO_32 + lo : foldAddress(hi, lo);
}

/**
 * The pc from the LR just read, PAC stripped: mainline's
 * `ptrauth_strip_kernel_insn_pac` (XPACLRI) and 6.1's `ptrauth_strip_insn_pac`
 * agree (see @klpsim/arm64 pac.ts): bit 55 picks the half, so an LR with it
 * clear stays a user-half value, exactly as the kernel would print it.
 */
export function takeRecordPc(st: UnwindState): void {
  st.setPcExact(stripInsnPacHi(st.recLrHi, st.kernelMask, st.userMask), st.recLrLo);
}

/**
 * `unwind_next_frame_record` (6.2+, asm/stacktrace/common.h) and mainline's
 * `kunwind_next_frame_record`: the record must be aligned and on a known
 * stack, which it then consumes. Under a policy with meta records (6.13+)
 * a zero `{fp, lr}` is a meta record; before, it is an ordinary record whose
 * fp 0 fails the next step.
 */
export function nextFrameRecordConsuming(st: UnwindState): number {
  const fp = st.fp;
  if ((st.fpLo & 7) !== 0) {
    st.setReason('FP_MISALIGNED', fp);
    return EINVAL;
  }
  const where = unwindFindStack(st, fp, 16);
  if (where === ON_NONE) return failOffStack(st, fp, 16);
  if (!readRecord(st, regionOfFound(st, where), fp)) {
    st.setReason('RECORD_UNREADABLE', fp);
    return EINVAL;
  }
  if ((st.recFpHi | st.recFpLo | st.recLrHi | st.recLrLo) === 0 && (st.rules & RULE_META) !== 0)
    return nextFrameRecordMeta(st);
  unwindConsumeStack(st, where, fp, 16);
  takeRecordFp(st);
  st.source = Source.FRAME;
  return 0;
}

/**
 * `kunwind_next_frame_record_meta` and `kunwind_next_regs_pc`: FINAL ends
 * the walk only at the task's own pt_regs; PT_REGS continues at the
 * interrupted pc with the interrupted fp.
 */
function nextFrameRecordMeta(st: UnwindState): number {
  const layout = st.machine.config.ptRegs;
  const meta = layout.meta;
  const fp = st.fp;
  if (meta === null) {
    st.setReason('META_TYPE_UNKNOWN', fp);
    return EINVAL;
  }
  const where = unwindFindStack(st, fp, meta.size);
  if (where === ON_NONE) return failOffStack(st, fp, meta.size);
  const region = regionOfFound(st, where);
  if (region === null) {
    st.setReason('RECORD_UNREADABLE', fp);
    return EINVAL;
  }
  const ti = (fp + meta.typeOffset - region.start) / 4;
  const typeLo = region.words[ti]!;
  const typeHi = region.words[ti + 1]!;
  if (typeHi === 0 && typeLo === meta.typeFinal) {
    if (fp === st.finalFrame) return ENOENT;
    st.setReason('FINAL_MISPLACED', fp);
    return EINVAL;
  }
  if (typeHi === 0 && typeLo === meta.typePtRegs) return nextRegsPc(st);
  st.setReason('META_TYPE_UNKNOWN', fp);
  return EINVAL;
}

function nextRegsPc(st: UnwindState): number {
  const layout = st.machine.config.ptRegs;
  const regs = st.fp - layout.stackframeOffset;
  const where = unwindFindStack(st, regs, layout.size);
  if (where === ON_NONE) return failOffStack(st, regs, layout.size);
  const region = regionOfFound(st, where);
  if (region === null) {
    st.setReason('RECORD_UNREADABLE', regs);
    return EINVAL;
  }
  unwindConsumeStack(st, where, regs, layout.size);
  const w = region.words;
  const pci = (regs + layout.pcOffset - region.start) / 4;
  const fpi = (regs + layout.regs29Offset - region.start) / 4;
  st.recLrLo = w[pci]!;
  st.recLrHi = w[pci + 1]!;
  st.recFpLo = w[fpi]!;
  st.recFpHi = w[fpi + 1]!;
  takeRecordFp(st);
  st.regs = regs;
  st.source = Source.REGS_PC;
  return 0;
}

/**
 * The frame step before 6.2 (`unwind_next_common`, and the 2021 series'
 * `unwind_next`): full stack bounds, a record on the same stack must be
 * strictly above the previous one, and a stack once left is done.
 */
export function nextFrameRecordPrevFp(st: UnwindState): number {
  const fp = st.fp;
  if ((st.fpLo & 7) !== 0) {
    st.setReason('FP_MISALIGNED', fp);
    return EINVAL;
  }
  const i = onAccessibleStack(st, fp, 16);
  if (i === ON_NONE) {
    st.setReason('RECORD_OFF_STACK', fp);
    return EINVAL;
  }
  const type = st.stackType[i]!;
  if ((st.stacksDone & (1 << type)) !== 0) {
    st.setReason('STACK_REENTERED', fp);
    return EINVAL;
  }
  if (type === st.prevType) {
    if (fp <= st.prevFp) {
      st.setReason('STACK_REENTERED', fp);
      return EINVAL;
    }
  } else {
    st.stacksDone |= 1 << st.prevType;
  }
  if (!readRecord(st, st.stackRegion[i]!, fp)) {
    st.setReason('RECORD_UNREADABLE', fp);
    return EINVAL;
  }
  takeRecordFp(st);
  st.prevFp = fp;
  st.prevType = type;
  st.curType = type;
  st.source = Source.FRAME;
  return 0;
}
