import { foldAddress } from '@klpsim/arm64';
import { FrameStateCode } from '@klpsim/frames';
import { consumeEntry } from '../checks.js';
import type { ReasonCode } from '../reason.js';
import { recoverReturnAddress } from '../recover.js';
import {
  ON_NONE,
  readRecord,
  regionOfFound,
  unwindConsumeStack,
  unwindFindStack,
} from '../stackinfo.js';
import { EINVAL, Source, type UnwindState } from '../state.js';
import { takeRecordFp, takeRecordPc } from '../step.js';
import { mainline, needsMetaRecords } from './mainline.js';
import type { Policy } from './policy.js';

/**
 * "unwind: arm64: Use sframe to unwind interrupt frames" (Dylan Hatch and
 * Weinan Liu, the SFrame series v5-v7, 2026, unmerged), over mainline.
 * Mainline refuses every pt_regs pc because it cannot know whether the LR
 * was live; this series asks the frame state (SFrame, generated from the
 * compiler's CFI) at the interrupted pc, and only for that one step:
 *
 * - LR live, no record (L): `regs[30]`, PAC-stripped, is the next entry,
 *   source REGS_LR (marker `L`); fp stays `regs[29]`, the caller's record.
 * - record pushed (S) or x29 at it (F): the caller's return address and fp
 *   come from the record at CFA + offset, CFA from `regs->sp` or
 *   `regs[29]`; the stack is consumed up to the LR slot, as the series'
 *   `get_consume_word` does.
 * - no frame state for the pc, or that step fails (fp not 8-byte aligned,
 *   x29 below `regs->sp` under an x29 rule, the CFA not 16-byte aligned, a
 *   record on no known stack): the reliable
 *   walk is unreliable; the debug walk falls back to the frame-pointer
 *   step, as the series does.
 *
 * Every other step is mainline's frame-pointer step. Where Mark Rutland's
 * review of v5 asked for it, we follow the review: a failed frame-pointer
 * step is a failure (no retry with SFrame), no "outermost" frame ends a
 * walk inside the kernel (only the task's FINAL record does), and sp is
 * not tracked across frame-pointer steps (sp != fp at call sites): it is
 * read from pt_regs, where it is exact. The frame state is klpsim's own
 * analysis of the text (@klpsim/frames), standing in for SFrame: where it
 * refuses a function, this policy has no data. docs/policies.md says where
 * else we had to choose.
 */

/** pt_regs: `regs[30]` follows `regs[29]`; `sp` comes just before `pc`. */
function readRegsWord(st: UnwindState, offset: number): boolean {
  return st.machine.memory.read64(st.regs + offset, st.word);
}

/** The step failed: unreliable for the reliable walk; the frame-pointer step for the debug walk. */
function fallBack(st: UnwindState, code: ReasonCode): number {
  if (st.needReliable) {
    st.setReason(code, st.pc);
    return EINVAL;
  }
  return mainline.next(st);
}

/** The one step from a pt_regs pc the frame state decides (v6's `kunwind_next_regs_sframe`). */
function nextFromRegs(st: UnwindState): number {
  const c = st.cursor;
  const layout = st.machine.config.ptRegs;
  // fp alignment first, before the pc is looked up (sframe_find_kernel); sp's own is not checked.
  if ((st.fpLo & 7) !== 0) return fallBack(st, 'FRAME_STATE_STEP_FAILED');
  if (st.frames === null || !st.frames.fill(st.pc, c)) return fallBack(st, 'NO_FRAME_STATE');
  if (!readRegsWord(st, layout.pcOffset - 8)) return fallBack(st, 'FRAME_STATE_STEP_FAILED');
  const sp = foldAddress(st.word.hi, st.word.lo);
  // The CFA, in every state (L's too): from regs->sp, or from x29 when x29 is not below it.
  if (c.cfaX29 && st.fp < sp) return fallBack(st, 'FRAME_STATE_STEP_FAILED');
  const cfa = (c.cfaX29 ? st.fp : sp) + c.cfaOffset;
  // "Check CFA alignment to 16 bytes" (v6's changelog; its code tests `cfa & 0x15`, see docs/policies.md).
  if (!(cfa % 16 === 0)) return fallBack(st, 'FRAME_STATE_STEP_FAILED');
  if (c.state === FrameStateCode.L) {
    // The return address is retained in LR: regs[30] follows regs[29]; fp is retained too.
    if (!readRegsWord(st, layout.regs29Offset + 8)) return fallBack(st, 'FRAME_STATE_STEP_FAILED');
    st.recLrHi = st.word.hi;
    st.recLrLo = st.word.lo;
    takeRecordPc(st);
    st.source = Source.REGS_LR;
    return recoverIfHooked(st);
  }
  const record = cfa + c.recordOffset;
  const where = unwindFindStack(st, record, 16);
  if (where === ON_NONE || !readRecord(st, regionOfFound(st, where), record))
    return fallBack(st, 'FRAME_STATE_STEP_FAILED');
  unwindConsumeStack(st, where, record, 16);
  takeRecordFp(st);
  takeRecordPc(st);
  st.source = Source.FRAME;
  return recoverIfHooked(st);
}

function recoverIfHooked(st: UnwindState): number {
  return st.pc === st.returnToHandler || st.pc === st.kretprobeTrampoline
    ? recoverReturnAddress(st)
    : 0;
}

function next(st: UnwindState): number {
  if (st.source !== Source.REGS_PC) return mainline.next(st);
  st.flags = 0;
  const ret = nextFromRegs(st);
  st.regs = Number.NaN;
  return ret;
}

export const sframeRegs: Policy = {
  name: 'sframe-regs',
  summary:
    'the SFrame series (v5-v7, 2026, unmerged) over mainline: the frame state at a pt_regs pc decides the next step (LR live: regs[30] as a REGS_LR entry)',
  hasReliableWalk: true,
  rules: { ...mainline.rules, refuses: [], frameState: 'after-regs-pc' },
  checkLayout: (machine) => needsMetaRecords('sframe-regs', machine),
  consume: consumeEntry,
  next,
  isReliable: (st) => st.source !== Source.REGS_PC || st.frames?.fill(st.pc, st.cursor) === true,
  recover: recoverReturnAddress,
};
