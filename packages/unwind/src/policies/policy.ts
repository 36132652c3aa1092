import type { Machine } from '@klpsim/kernel';
import type { UnwindState } from '../state.js';
import type { TraceBuffer } from '../trace.js';
import type { PolicyName } from './index.js';

/** Why a policy will not walk a kernel: it would give a silently wrong verdict. */
export interface PolicyMismatch {
  readonly code: 'KLPSIM_POLICY_LAYOUT_MISMATCH';
  readonly message: string;
}

/**
 * What a policy's kernel decides, as data: the rules the fast paths read
 * (fastpath.ts, flat/walk.ts) and the reference step functions implement.
 */
export interface UnwindRules {
  /**
   * How a frame record must lie on the stacks: `consume` (6.2+: each
   * record uses up the stack below it, and a stack left is gone) or
   * `prev-fp` (before 6.2: strictly above the previous record on the same
   * stack, and a stack once left is done).
   */
  readonly bounds: 'consume' | 'prev-fp';
  /**
   * When the walk ends with success: at the task's FINAL meta record
   * (6.13+), when fp reaches the final frame after consuming the pc (6.1's
   * `unwind_next`), or before checking that pc (the 2021 series'
   * `unwind_consume`, which still stores it).
   */
  readonly end: 'final-meta-record' | 'final-frame-before-next' | 'final-frame-before-consume';
  /** Zero `{fp, lr}` records are meta records (FINAL, PT_REGS), as from 6.13. */
  readonly metaRecords: boolean;
  /** The starting pc is recovered too, before the loop (`unwind()` from 6.2, `do_kunwind`); 6.1 and the 2021 series do not. */
  readonly recoverStart: boolean;
  /**
   * The EFI runtime stack is among the known stacks while `current_in_efi()`
   * (`STACKINFO_EFI` in `arch_stack_walk`, from v6.2); v6.1 as tagged and the
   * 2021 series have no such entry, so a record on it ends their walk.
   */
  readonly efiStack: boolean;
  /**
   * What the reliable consumer refuses besides a full buffer: a pc taken
   * from pt_regs (mainline), a pc outside kernel text or inside a SYM_CODE
   * range (the 2021 series' `unwind_is_reliable`).
   */
  readonly refuses: readonly ('regs-pc' | 'not-kernel-text' | 'sym-code')[];
  /**
   * Where the walk consults the frame state of the text (@klpsim/frames,
   * standing in for SFrame or ORC data): never (every merged kernel), at
   * the step after a pt_regs pc (the SFrame series), or at every frame
   * (the ORC validation RFC). A policy that consults it at every frame has
   * no plain frames: the fast paths hand all of its walks back.
   */
  readonly frameState: 'none' | 'after-regs-pc' | 'every-frame';
}

/**
 * A reliability policy: the unwinder of one kernel version, as data (its
 * rules) plus small functions over the shared `UnwindState`, run by one
 * driver (`doKunwind`, driver.ts) and read by the fast paths. Adding a
 * policy is adding one file that exports one of these, and its line in the
 * policy index (policies/index.ts).
 */
export interface Policy {
  /** Its key in the policy index (policies/index.ts). */
  readonly name: PolicyName;
  /** One line: which kernel code this is. */
  readonly summary: string;
  /** Whether the kernel it models has `arch_stack_walk_reliable`. */
  readonly hasReliableWalk: boolean;
  /** The rules, as data (see UnwindRules). */
  readonly rules: UnwindRules;
  /** null when the policy fits this kernel's layout, else why it does not. */
  checkLayout(machine: Machine): PolicyMismatch | null;
  /** The seed series' `unwind_consume`: hand the pc to the trace; false ends the walk. */
  consume(st: UnwindState, trace: TraceBuffer): boolean;
  /** `unwind_next`: step to the next frame; 0, -ENOENT at the end, or -EINVAL. */
  next(st: UnwindState): number;
  /** `unwind_is_reliable`: may the walk go on reliably from the current pc? */
  isReliable(st: UnwindState): boolean;
  /** The kernel's return-address recovery for a rewritten pc: 0, or -EINVAL when it fails the walk. */
  recover(st: UnwindState): number;
}
