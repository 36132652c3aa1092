import type { UnwindRules } from './policies/policy.js';

/**
 * A policy's rules (UnwindRules) as bits, computed once per Walker, for the
 * two fast paths that read them per walk: the plain-frame loop
 * (fastpath.ts) and the flat walk (flat/walk.ts).
 */

/** Records consume the stack (6.2+); else strictly above `prev_fp`. */
export const RULE_CONSUME = 1;
/** The walk ends when fp reaches the final frame, after consuming its pc (6.1 to 6.12). */
export const RULE_END_BEFORE_NEXT = 2;
/** It ends there before checking that pc, which is still stored (the 2021 series). */
export const RULE_END_BEFORE_CONSUME = 4;
/** The reliable consumer refuses pcs outside kernel text or inside SYM_CODE. */
export const RULE_TEXT = 8;
/** The reliable consumer refuses a pc taken from pt_regs (mainline). */
export const RULE_REGS_PC = 16;
/** Zero records are meta records; the task's FINAL one ends the walk (6.13+). */
export const RULE_META = 32;

/** The step after a pt_regs pc is the policy's own (the frame state decides it: sframe-regs). */
export const RULE_REGS_STEP = 64;

/** The rule bits of `rules`. */
export function ruleBits(rules: UnwindRules): number {
  let bits = rules.bounds === 'consume' ? RULE_CONSUME : 0;
  if (rules.end === 'final-frame-before-next') bits |= RULE_END_BEFORE_NEXT;
  else if (rules.end === 'final-frame-before-consume') bits |= RULE_END_BEFORE_CONSUME;
  if (rules.refuses.includes('not-kernel-text') || rules.refuses.includes('sym-code'))
    bits |= RULE_TEXT;
  if (rules.refuses.includes('regs-pc')) bits |= RULE_REGS_PC;
  if (rules.metaRecords) bits |= RULE_META;
  if (rules.frameState !== 'none') bits |= RULE_REGS_STEP;
  return bits;
}
