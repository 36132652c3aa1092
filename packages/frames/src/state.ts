/**
 * The frame state at one instruction, as a consumer of the analysis (an
 * unwinder policy, a judge) needs it: "before this instruction executes,
 * where is the caller's frame?". Three states carry most of it:
 *
 * - `L`: LR live, no record. The return address is only in x30 and x29 is
 *   still the caller's frame pointer (function entry, frameless leaves,
 *   shrink-wrapped code before the prologue, and epilogues after the `ldp`
 *   that restored both).
 * - `S`: the record `{x29, x30}` is saved on the stack, but x29 does not
 *   point at it yet (the instruction after `stp x29, x30`).
 * - `F`: x29 points at the record: a frame-pointer walk sees this function.
 *
 * The CFA is the value sp had at the function's entry (the DWARF meaning on
 * arm64); `record` gives where x29 and x30 were saved relative to it.
 */

/** The three modelled states; `none` is never stored, a lookup returns null instead. */
export type FrameStateName = 'L' | 'S' | 'F';

/** Numeric codes of the states, for the typed arrays the lookup reads without allocating. */
export const FrameStateCode = { NONE: 0, L: 1, S: 2, F: 3 } as const;
export type FrameStateCode = (typeof FrameStateCode)[keyof typeof FrameStateCode];

export const STATE_NAMES: readonly (FrameStateName | 'none')[] = ['none', 'L', 'S', 'F'];

/** A register-plus-offset rule: CFA = `base` + `offset`. */
export interface CfaRule {
  readonly base: 'sp' | 'x29';
  readonly offset: number;
}

/** Where the frame record was saved: x29 at CFA+fp, x30 at CFA+lr. */
export interface SavedRecord {
  readonly fp: number;
  readonly lr: number;
}

/** Everything the analysis knows at one instruction. */
export interface FrameRow {
  readonly state: FrameStateName;
  readonly cfa: CfaRule;
  /** Null in state L. */
  readonly record: SavedRecord | null;
  /** x29 holds the address of this function's record (state F). */
  readonly x29AtRecord: boolean;
  /** The return address is in x30 and nowhere else (state L). */
  readonly lrOnlyInLr: boolean;
  /** The return address (in x30 or in the record) carries a PAC: after `paciasp`, before `autiasp`. */
  readonly lrSigned: boolean;
  /** CFA - sp whatever the CFA rule (ORC's sp offset); null where sp moved by an unknown amount. */
  readonly spOffset: number | null;
}

/** Why a function has no frame state: one code per rule the analysis could not follow. */
export const REFUSAL_REASONS = {
  'text-not-dumped':
    'the Machine does not hold this text (init text, freed after boot, is not in a capture)',
  'sym-code': 'SYM_CODE: assembly outside the procedure call standard (sym_code_functions)',
  'kprobe-brk': 'a kprobe BRK replaced an instruction whose original the text no longer shows',
  'x29-clobbered': 'x29 is written with something other than the address of the frame record',
  'lr-lost': 'x30 is overwritten while the return address is only in x30',
  'lr-saved-alone': 'x30 is saved without x29 (no frame record)',
  'record-reused': 'a second frame record is saved while one is already on the stack',
  'record-slot-mismatch': 'the record is restored from a slot other than where it was saved',
  'sp-unknown':
    'sp moves by an amount the analysis cannot follow, with no frame pointer to fall back on',
  'exit-with-frame': 'a return or tail call with the frame not torn down',
  'pac-mismatch': 'LR is signed, authenticated or returned in an order that does not match',
  'ret-other-register': 'a return through a register other than x30',
  'paths-disagree': 'two paths reach an instruction with different frame states',
} as const;
export type RefusalReason = keyof typeof REFUSAL_REASONS;

/** A refusal: the rule, and where in the function it was met. */
export interface Refusal {
  readonly reason: RefusalReason;
  /** Byte offset into the function of the instruction that broke the rule. */
  readonly offset: number;
  readonly detail: string;
}
