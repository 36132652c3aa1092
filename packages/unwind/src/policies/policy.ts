import type { Machine } from '@klpsim/kernel';
import type { UnwindState } from '../state.js';
import type { TraceBuffer } from '../trace.js';

export const POLICY_NAMES = ['mainline', 'linux-6.1', 'symcode-v8'] as const;
export type PolicyName = (typeof POLICY_NAMES)[number];

/** Why a policy will not walk a kernel: it would give a silently wrong verdict. */
export interface PolicyMismatch {
  readonly code: 'KLPSIM_POLICY_LAYOUT_MISMATCH';
  readonly message: string;
}

/**
 * A reliability policy: the unwinder of one kernel version, as data plus
 * small functions over the shared `UnwindState`. Adding a policy is adding
 * one file that exports one of these.
 */
export interface Policy {
  readonly name: PolicyName;
  /** One line: which kernel code this is. */
  readonly summary: string;
  /** Whether the kernel it models has `arch_stack_walk_reliable`. */
  readonly hasReliableWalk: boolean;
  /** null when the policy fits this kernel's layout, else why it does not. */
  checkLayout(machine: Machine): PolicyMismatch | null;
  /** The seed series' `unwind_consume`: hand the pc to the trace; false ends the walk. */
  consume(st: UnwindState, trace: TraceBuffer): boolean;
  /** `unwind_next`: step to the next frame; 0, -ENOENT at the end, or -EINVAL. */
  next(st: UnwindState): number;
  /** `unwind_is_reliable`: may the walk go on reliably from the current pc? */
  isReliable(st: UnwindState): boolean;
  /** The whole walk from an initialised state; 0 or -EINVAL (debug walks always 0 where the kernel's is void). */
  unwind(st: UnwindState, trace: TraceBuffer): number;
}
