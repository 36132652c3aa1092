import { type Addr, addrHi, addrLo, foldAddress, KERNEL_HI_BASE, TWO_32 } from '@klpsim/arm64';
import { type FrameCursor, type FrameLookup, frameCursor } from '@klpsim/frames';
import type { Machine, MemoryRegion, Task, Word64 } from '@klpsim/kernel';
import type { ReasonCode } from './reason.js';

/**
 * Where the current pc came from (`enum kunwind_source`). REGS_LR is the
 * SFrame series' (Dylan Hatch, v5-v7, 2026, unmerged): the LR of pt_regs,
 * reported when the frame state says it was live.
 */
export const Source = { UNKNOWN: 0, FRAME: 1, CALLER: 2, TASK: 3, REGS_PC: 4, REGS_LR: 5 } as const;
export type Source = (typeof Source)[keyof typeof Source];

/** `union unwind_flags`: the pc was rewritten by a tracer and recovered. */
export const FLAG_FGRAPH = 1;
export const FLAG_KRETPROBE = 2;

/** The optional checks, as bits of `UnwindState.checks`. */
export const CHECK_CALL_SITE = 1;
export const CHECK_START_IN_SCHEDULE = 2;

/** Task stack, IRQ, overflow, SDEI normal, SDEI critical, EFI. */
export const MAX_STACKS = 6;

/** `ENOENT`: the walk reached its end. */
export const ENOENT = -2;
/** `EINVAL`: the walk failed. */
export const EINVAL = -22;

/**
 * One unwind in progress: `struct kunwind_state` and the fields the older
 * unwinders kept (`prev_fp`, `stacks_done`, `failed`). One object is reused
 * for every walk a Walker makes, so walking allocates nothing.
 */
export class UnwindState {
  machine!: Machine;
  task!: Task;

  /** The frame pointer being followed, folded; and its raw halves (for `fp & 7` and messages). */
  fp: Addr = 0;
  fpHi = 0;
  fpLo = 0;
  /** The pc to consume next, folded and PAC-stripped (NaN when not canonical); and its exact halves. */
  pc: Addr = 0;
  pcHi = 0;
  pcLo = 0;
  source: Source = Source.UNKNOWN;
  flags = 0;

  /** `graph_idx`: where the next function-graph search starts (0: from the top). */
  graphIdx = 0;
  /** `kr_cur`: index of the last kretprobe instance matched (-1: none yet). */
  krCur = -1;

  /** `stacks[]`: the stacks the walk may still enter; NaN low marks one it may not (`stackinfo_get_unknown`). */
  nrStacks = 0;
  readonly stackLow = new Float64Array(MAX_STACKS);
  readonly stackHigh = new Float64Array(MAX_STACKS);
  readonly stackType = new Uint8Array(MAX_STACKS);
  readonly stackRegion: (MemoryRegion | null)[] = new Array(MAX_STACKS).fill(null);
  /** The bounds each stack had before the walk started (for diagnosis only). */
  readonly stackOrigLow = new Float64Array(MAX_STACKS);
  readonly stackOrigHigh = new Float64Array(MAX_STACKS);

  /** `state->stack`: the stack being unwound; its low bound rises as records are consumed. */
  curLow: Addr = Number.NaN;
  curHigh: Addr = Number.NaN;
  curType = 0;
  curRegion: MemoryRegion | null = null;

  /** The pre-6.2 rule: `prev_fp`, `prev_type` and the `stacks_done` bitmap. */
  prevFp: Addr = 0;
  prevType = 0;
  stacksDone = 0;

  /** The 2021 series' `failed` and `need_reliable`. */
  failed = false;
  needReliable = false;
  /** The walk was started at the blocked task's saved context (for `start-in-schedule`). */
  fromTask = false;

  /** The first rule that failed: code, the address it rejected, and the entry count then. */
  reason: ReasonCode | null = null;
  reasonAddr: Addr = Number.NaN;
  reasonFrame = 0;

  /**
   * Per-walk copies of what every step compares against, so the loop reads
   * one field instead of a chain of them. NaN where the kernel has none.
   */
  kernelMask = 0;
  userMask = 0;
  returnToHandler: Addr = Number.NaN;
  kretprobeTrampoline: Addr = Number.NaN;
  finalFrame: Addr = Number.NaN;
  hasRetStack = false;
  /** `[_stext, _etext)`, the common case of every text check. */
  coreTextStart: Addr = 0;
  coreTextEnd: Addr = 0;
  /** The meta record layout, in words (-1: the kernel has none). */
  metaTypeWord = -1;
  metaTypeFinal = -1;
  metaSize = 0;

  /** Scratch for the record just read (raw halves), so reads return nothing. */
  recFpHi = 0;
  recFpLo = 0;
  recLrHi = 0;
  recLrLo = 0;

  /**
   * `state->regs`: the pt_regs the current pc came from while the source is
   * REGS_PC (NaN otherwise), for a policy that steps on from them.
   */
  regs: Addr = Number.NaN;
  /** The frame state of the kernel's text, for policies that consult it (null otherwise). */
  frames: FrameLookup | null = null;
  /** Scratch the frame lookup fills, and a 64-bit read's. */
  readonly cursor: FrameCursor = frameCursor();
  readonly word: Word64 = { hi: 0, lo: 0 };
  /**
   * fp-validate: sp of the frame about to be checked, the CFA of the frame
   * checked before it (ORC's running CFA); NaN when unknown.
   */
  frameSp: Addr = Number.NaN;

  /** The policy's rules as bits (rules.ts), for the plain-frame fast path. */
  rules = 0;
  /** Run plain frames through `walkPlainFrames` (false: the reference step functions only). */
  fastPath = true;
  /** Entries handed to the consumer so far (the frame index a failure is reported at). */
  consumed = 0;
  /** Optional checks (CHECK_* bits) and the call-site check's text cache. */
  checks = 0;

  /** Sets the pc from its exact 64-bit halves; the folded copy serves range checks. */
  setPcExact(hi: number, lo: number): void {
    this.pcHi = hi;
    this.pcLo = lo;
    this.pc = hi >= KERNEL_HI_BASE ? (hi - KERNEL_HI_BASE) * TWO_32 + lo : foldAddress(hi, lo);
  }

  /** Sets the pc from a folded (canonical) address. */
  setPcAddr(a: Addr): void {
    this.pc = a;
    this.pcHi = addrHi(a);
    this.pcLo = addrLo(a);
  }

  /** Records the first failure only: later ones are consequences. */
  setReason(code: ReasonCode, addr: Addr): void {
    if (this.reason === null) {
      this.reason = code;
      this.reasonAddr = addr;
      this.reasonFrame = this.consumed;
    }
  }
}
