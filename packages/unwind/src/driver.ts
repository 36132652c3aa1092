import { RESUME_AT_CONSUME, WALK_ENDED, walkPlainFrames } from './fastpath.js';
import type { Policy } from './policies/policy.js';
import { EINVAL, ENOENT, type UnwindState } from './state.js';
import type { TraceBuffer } from './trace.js';

/**
 * `do_kunwind`: the one loop every policy's walk runs. What differs between
 * kernels is data (the policy's rules, read by the plain-frame fast path as
 * `st.rules`) and the policy's small functions: `recover` for the starting
 * pc where the kernel recovers it, `consume` (the consumer, with what the
 * reliable one refuses) and `next` (one unwind step). Returns 0 or -EINVAL
 * for a reliable walk; 0 for a kernel whose walk returns nothing.
 */
export function doKunwind(policy: Policy, st: UnwindState, trace: TraceBuffer): number {
  if (policy.rules.recoverStart) {
    const ret = policy.recover(st);
    if (ret !== 0) return verdict(policy, ret);
  }
  const fast = st.fastPath && st.checks === 0;
  for (;;) {
    // Once a step has failed (the 2021 series' `failed`), nothing is plain.
    const plain = fast && !st.failed ? walkPlainFrames(st, trace, st.rules) : RESUME_AT_CONSUME;
    if (plain === WALK_ENDED) return 0;
    // A consumer that refuses without a recorded failure ended the walk with success.
    if (plain === RESUME_AT_CONSUME && !policy.consume(st, trace))
      return verdict(policy, st.failed || st.reason !== null ? EINVAL : 0);
    const ret = policy.next(st);
    if (ret === ENOENT) return 0;
    if (ret < 0) return verdict(policy, ret);
  }
}

/** The walk's return value: the kernel's, or 0 where its walk returns nothing (6.1's `arch_stack_walk`). */
function verdict(policy: Policy, ret: number): number {
  return policy.hasReliableWalk ? ret : 0;
}
