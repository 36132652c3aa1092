import { consumeEntry } from '../checks.js';
import { recoverReturnAddressBottomUp } from '../recover.js';
import { ENOENT, type UnwindState } from '../state.js';
import { nextFrameRecordConsuming, takeRecordPc } from '../step.js';
import type { Policy } from './policy.js';

/**
 * Linux 6.6 (arch/arm64/kernel/stacktrace.c and
 * asm/stacktrace/common.h of v6.6, the LTS of the kernels between 6.1's
 * unwinder and mainline's meta records): best effort only, no
 * `arch_stack_walk_reliable`.
 *
 * - Bounds: `unwind_next_frame_record` consumes the stack it finds the
 *   record on (`unwind_consume_stack`, from 6.2): a record must lie above
 *   the last one's 16 bytes, and a stack once left is gone.
 * - End: `unwind_next` returns -ENOENT when fp is
 *   `&task_pt_regs(tsk)->stackframe`, before reading it; no meta records,
 *   so an exception's pt_regs is walked through as a frame record.
 * - Recovery: `unwind()` recovers the starting pc too, then each pc after
 *   `ptrauth_strip_kernel_insn_pac`; `ftrace_graph_ret_addr(task, NULL, ...)`
 *   searches the return stack from the bottom, and an unmatched kretprobe's
 *   0 becomes the pc (`state->pc = kretprobe_find_ret_addr(...)`).
 */

/** `unwind_next` of v6.6. */
function next(st: UnwindState): number {
  st.flags = 0;
  if (st.fp === st.finalFrame) return ENOENT;
  const err = nextFrameRecordConsuming(st);
  if (err !== 0) return err;
  takeRecordPc(st);
  if (st.pc !== st.returnToHandler && st.pc !== st.kretprobeTrampoline) return 0;
  return recoverReturnAddressBottomUp(st);
}

export const linux66: Policy = {
  name: 'linux-6.6',
  summary:
    'Linux 6.6 arch_stack_walk (one-way stack consumption, no meta records; best effort, no reliable variant)',
  hasReliableWalk: false,
  rules: {
    bounds: 'consume',
    end: 'final-frame-before-next',
    metaRecords: false,
    recoverStart: true,
    efiStack: true,
    refuses: [],
    frameState: 'none',
  },
  checkLayout: () => null,
  consume: consumeEntry,
  next,
  isReliable: () => false,
  recover: recoverReturnAddressBottomUp,
};
