import type { FunctionFrames } from './analyse.js';
import { FrameStateCode, REFUSAL_REASONS, type RefusalReason } from './state.js';

/** How much of a kernel's text the analysis modelled, and why the rest was refused. */
export interface FrameCoverage {
  readonly functions: number;
  readonly modelled: number;
  readonly refused: number;
  /** Refused functions per reason, every reason listed (0 where none). */
  readonly refusedBy: Readonly<Record<RefusalReason, number>>;
  /** Instructions of modelled functions, split by state. */
  readonly instructions: {
    readonly total: number;
    readonly classified: number;
    readonly L: number;
    readonly S: number;
    readonly F: number;
    /** Reached by no path: padding, data between functions (ftrace ops pointers), code after noreturn calls. */
    readonly unreached: number;
  };
  /** Instructions of refused functions (text not dumped excluded). */
  readonly refusedInstructions: number;
  /** Calls found not to return (from the frame rules, see docs/frames.md). */
  readonly noreturnCalls: number;
  /** Modelled functions with a jump table whose targets are unknown (the table is in .rodata). */
  readonly functionsWithJumpTables: number;
  /** Modelled functions that run body code with no frame before their prologue, and those running more than 100 such instructions. */
  readonly shrinkWrapped: { readonly functions: number; readonly over100: number };
}

/** Sums a kernel's per-function results. */
export function frameCoverage(functions: readonly FunctionFrames[]): FrameCoverage {
  const refusedBy = Object.fromEntries(Object.keys(REFUSAL_REASONS).map((k) => [k, 0])) as Record<
    RefusalReason,
    number
  >;
  let modelled = 0;
  let total = 0;
  let unreached = 0;
  let refusedInstructions = 0;
  let noreturnCalls = 0;
  let functionsWithJumpTables = 0;
  let shrinkWrapped = 0;
  let shrinkWrappedOver100 = 0;
  const byState = [0, 0, 0, 0];
  for (const f of functions) {
    if (f.refusal !== null) {
      refusedBy[f.refusal.reason]++;
      if (f.refusal.reason !== 'text-not-dumped') refusedInstructions += f.size / 4;
      continue;
    }
    modelled++;
    total += f.state.length;
    unreached += f.unreached;
    noreturnCalls += f.noreturnCalls;
    if (f.jumpTables > 0) functionsWithJumpTables++;
    if (f.shrinkWrapped > 0) shrinkWrapped++;
    if (f.shrinkWrapped > 100) shrinkWrappedOver100++;
    for (let i = 0; i < f.state.length; i++) byState[f.state[i]!]!++;
  }
  return {
    functions: functions.length,
    modelled,
    refused: functions.length - modelled,
    refusedBy,
    instructions: {
      total,
      classified: total - unreached,
      L: byState[FrameStateCode.L]!,
      S: byState[FrameStateCode.S]!,
      F: byState[FrameStateCode.F]!,
      unreached,
    },
    refusedInstructions,
    noreturnCalls,
    functionsWithJumpTables,
    shrinkWrapped: { functions: shrinkWrapped, over100: shrinkWrappedOver100 },
  };
}
