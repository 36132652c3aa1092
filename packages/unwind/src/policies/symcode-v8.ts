import { consumeEntry } from '../checks.js';
import { recoverReturnAddress } from '../recover.js';
import type { UnwindState } from '../state.js';
import { nextFrameRecordPrevFp, takeRecordPc } from '../step.js';
import type { TraceBuffer } from '../trace.js';
import type { Policy } from './policy.js';

/**
 * "arm64: Reorganize the unwinder and implement stack trace reliability
 * checks" (Madhavan T. Venkataraman, v7/v8, August 2021; never merged).
 *
 *     unwind_start(&frame, task, fp, pc);
 *     while (unwind_consume(&frame, consume_entry, cookie))
 *         unwind_next(&frame);
 *     return !unwind_failed(&frame);
 *
 * `unwind_consume` stops with success at the final frame *before* asking
 * `unwind_is_reliable`, so the last return address (ret_from_fork, an EL0
 * entry handler) is never checked against `sym_code_functions`. Tracer
 * recovery follows SEMANTICS.md section 4 (the series' own index-based
 * function-graph lookup predates the retp match every later kernel uses).
 */

/** `unwind_is_reliable`: the pc must be kernel text and outside every SYM_CODE range. */
function isReliable(st: UnwindState): boolean {
  if (!st.machine.text.kernelTextAddressOrInit(st.pc)) {
    st.setReason('NOT_KERNEL_TEXT', st.pc);
    return false;
  }
  if (st.machine.symCode.contains(st.pc)) {
    st.setReason('IN_SYM_CODE', st.pc);
    return false;
  }
  return true;
}

/** `unwind_consume`. */
function consume(st: UnwindState, trace: TraceBuffer): boolean {
  if (st.failed) return false;
  if (!consumeEntry(st, trace)) {
    st.failed = true;
    return false;
  }
  // The reason is about this entry, once it has been stored.
  st.consumed = trace.len - 1;
  if (st.fp === st.finalFrame) return false;
  if (st.needReliable && !isReliable(st)) {
    st.failed = true;
    return false;
  }
  st.consumed = trace.len;
  return true;
}

/** `unwind_next`: errors set `failed` rather than returning. */
function next(st: UnwindState): number {
  st.flags = 0;
  let err = nextFrameRecordPrevFp(st);
  if (err === 0) {
    takeRecordPc(st);
    if (st.pc === st.returnToHandler || st.pc === st.kretprobeTrampoline)
      err = recoverReturnAddress(st);
  }
  if (err !== 0) st.failed = true;
  return err;
}

export const symcodeV8: Policy = {
  name: 'symcode-v8',
  summary:
    'the 2021 "reliability checks" series: __kernel_text_address and sym_code_functions on every return address but the last',
  hasReliableWalk: true,
  rules: {
    bounds: 'prev-fp',
    end: 'final-frame-before-consume',
    metaRecords: false,
    recoverStart: false,
    efiStack: false,
    refuses: ['not-kernel-text', 'sym-code'],
    frameState: 'none',
  },
  checkLayout: () => null,
  consume,
  next,
  isReliable,
  recover: recoverReturnAddress,
};
