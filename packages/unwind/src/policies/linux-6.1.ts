import { consumeEntry } from '../checks.js';
import { recoverReturnAddressBottomUp } from '../recover.js';
import { ENOENT, type UnwindState } from '../state.js';
import { nextFrameRecordPrevFp, takeRecordPc } from '../step.js';
import type { Policy } from './policy.js';

/**
 * Linux 6.1 (arch/arm64/kernel/stacktrace.c of v6.1): best effort only, no
 * `arch_stack_walk_reliable`. The walk ends when fp reaches
 * `&task_pt_regs(task)->stackframe`; an exception's pt_regs is just another
 * frame record and is walked through silently. A kretprobe it cannot match
 * leaves pc 0 and the walk goes on, as the 6.1 code did.
 */

/** `unwind_next` of 6.1. */
function next(st: UnwindState): number {
  st.flags = 0;
  if (st.fp === st.finalFrame) return ENOENT;
  const err = nextFrameRecordPrevFp(st);
  if (err !== 0) return err;
  takeRecordPc(st);
  if (st.pc !== st.returnToHandler && st.pc !== st.kretprobeTrampoline) return 0;
  return recoverReturnAddressBottomUp(st);
}

export const linux61: Policy = {
  name: 'linux-6.1',
  summary: 'Linux 6.1 arch_stack_walk (best effort; the kernel has no reliable variant)',
  hasReliableWalk: false,
  rules: {
    bounds: 'prev-fp',
    end: 'final-frame-before-next',
    metaRecords: false,
    recoverStart: false,
    efiStack: false,
    refuses: [],
    frameState: 'none',
  },
  checkLayout: () => null,
  consume: consumeEntry,
  next,
  isReliable: () => false,
  recover: recoverReturnAddressBottomUp,
};
