/**
 * Why a walk failed (or, for a debug walk, why it stopped early): a stable
 * code per rule of shared/design/SEMANTICS.md, so callers match on codes.
 */
export const REASON_CODES = [
  'FP_MISALIGNED',
  'RECORD_OFF_STACK',
  'STACK_REENTERED',
  'RECORD_UNREADABLE',
  'FINAL_MISPLACED',
  'META_TYPE_UNKNOWN',
  'EXCEPTION_BOUNDARY',
  'NOT_KERNEL_TEXT',
  'IN_SYM_CODE',
  'FGRAPH_UNRECOVERABLE',
  'KRETPROBE_UNRECOVERABLE',
  'BUFFER_FULL',
  'NOT_AFTER_CALL',
  'NOT_IN_SCHEDULE',
  'NO_FRAME_STATE',
  'FRAME_STATE_STEP_FAILED',
  'FP_MISMATCH',
] as const;

export type ReasonCode = (typeof REASON_CODES)[number];

/** One sentence per code: what the rule is (the message adds the address and where). */
export const REASON_TEXT: Readonly<Record<ReasonCode, string>> = {
  FP_MISALIGNED: 'the frame pointer is not 8-byte aligned',
  RECORD_OFF_STACK: 'the frame record does not lie wholly inside any stack the walk may use',
  STACK_REENTERED:
    'the frame record lies in stack the walk has already unwound (a loop, a backwards fp, or a return to a stack it left)',
  RECORD_UNREADABLE: 'the frame record is on a known stack whose memory is not available',
  FINAL_MISPLACED:
    "a FINAL meta record was found somewhere other than the task's pt_regs->stackframe",
  META_TYPE_UNKNOWN: 'a meta frame record (fp = lr = 0) has an unknown type',
  EXCEPTION_BOUNDARY:
    'the walk crossed an exception boundary (pt_regs): the LR may have been live, so the caller is unknown',
  NOT_KERNEL_TEXT: 'the return address is not kernel text (__kernel_text_address)',
  IN_SYM_CODE:
    'the return address lies in a SYM_CODE function, which does not follow the calling convention',
  FGRAPH_UNRECOVERABLE:
    'return_to_handler found, but no function-graph return-stack entry matches this frame',
  KRETPROBE_UNRECOVERABLE:
    'the kretprobe trampoline found, but no kretprobe instance matches this frame',
  BUFFER_FULL: 'the trace buffer filled up before the walk reached the end of the stack',
  NOT_AFTER_CALL: 'the instruction before the return address is not a call (bl/blr/blra*)',
  NOT_IN_SCHEDULE: "a blocked task's walk must begin in __switch_to called from __schedule",
  NO_FRAME_STATE:
    'no frame state (SFrame / ORC data) for this pc: the frame analysis refused its function, or no path reaches it',
  FRAME_STATE_STEP_FAILED:
    'the step the frame state prescribes failed: the CFA or frame pointer is misaligned, or the saved record is on no known stack',
  FP_MISMATCH:
    'the frame pointer is not where the frame state at this pc puts the frame record (no record yet, x29 not at it, or not at the running CFA plus the record offset)',
};

/** The structured reason a result carries. */
export interface WalkReason {
  readonly code: ReasonCode;
  /** Index of the trace entry the failure concerns (the number of entries stored before it for a step failure). */
  readonly frame: number;
  /** The address the rule rejected (a return address, a frame pointer or a record), as "0x...", or null. */
  readonly address: string | null;
  readonly message: string;
}
