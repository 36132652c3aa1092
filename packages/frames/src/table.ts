import type { Addr } from '@klpsim/arm64';
import { type Machine, upperBound } from '@klpsim/kernel';
import type { FunctionFrames } from './analyse.js';
import { analyseKernelFunction, kernelFunctions } from './kernel.js';
import {
  type CfaRule,
  type FrameRow,
  type FrameStateCode,
  FrameStateCode as S,
  STATE_NAMES,
} from './state.js';

/**
 * The frame state of every instruction of a kernel, looked up by pc. This
 * is what an unwinder policy consults at an exception boundary (the SFrame
 * series' "is LR live here?") and what a judge compares a walk against.
 * `stateAt` is for hot loops (a binary search over plain arrays, no
 * allocation); `rowAt` builds the whole answer for explanations.
 */
export class FrameTable {
  /** Every function, lowest start first. */
  readonly functions: readonly FunctionFrames[];
  private readonly starts: Float64Array;

  constructor(functions: readonly FunctionFrames[]) {
    this.functions = [...functions].sort((a, b) => a.start - b.start);
    this.starts = Float64Array.from(this.functions, (f) => f.start);
  }

  /** The function whose bounds hold `pc`, or undefined. */
  functionAt(pc: Addr): FunctionFrames | undefined {
    const f = this.functions[upperBound(this.starts, pc) - 1];
    return f !== undefined && pc < f.start + f.size ? f : undefined;
  }

  /** The state code at `pc`: NONE outside any modelled function, in a refused one, or in unreached code. */
  stateAt(pc: Addr): FrameStateCode {
    const f = this.functionAt(pc);
    if (f === undefined || f.refusal !== null || pc % 4 !== 0) return S.NONE;
    return f.state[(pc - f.start) / 4] as FrameStateCode;
  }

  /** Everything known at `pc`, or null where `stateAt` is NONE. */
  rowAt(pc: Addr): FrameRow | null {
    const f = this.functionAt(pc);
    if (f === undefined || f.refusal !== null || pc % 4 !== 0) return null;
    return rowOf(f, (pc - f.start) / 4);
  }
}

/** The frame table of a whole Machine: every function of its text analysed. */
export function frameTableOf(machine: Machine): FrameTable {
  return new FrameTable(kernelFunctions(machine).map((f) => analyseKernelFunction(machine, f)));
}

/** The row of instruction `i` of a modelled function, or null where unreached. */
export function rowOf(f: FunctionFrames, i: number): FrameRow | null {
  const code = f.state[i];
  if (code === undefined || code === S.NONE) return null;
  const state = STATE_NAMES[code] as 'L' | 'S' | 'F';
  const cfa: CfaRule = { base: f.cfaBase[i] === 1 ? 'x29' : 'sp', offset: f.cfaOffset[i]! };
  const rec = f.recordOffset[i]!;
  return {
    state,
    cfa,
    record: state === 'L' ? null : { fp: rec, lr: rec + 8 },
    x29AtRecord: state === 'F',
    lrOnlyInLr: state === 'L',
    lrSigned: f.lrSigned[i] === 1,
  };
}

/** A run of instructions with the same row: `[start, end)` as byte offsets into the function. */
export interface FrameRange {
  readonly start: number;
  readonly end: number;
  /** Null where no path reaches (padding, data, dead code). */
  readonly row: FrameRow | null;
}

/** The rows of a modelled function as runs of equal rows, in order; empty when refused. */
export function frameRanges(f: FunctionFrames): FrameRange[] {
  const out: FrameRange[] = [];
  const n = f.state.length;
  let i = 0;
  while (i < n) {
    let j = i + 1;
    while (j < n && sameRow(f, i, j)) j++;
    out.push({ start: i * 4, end: j * 4, row: rowOf(f, i) });
    i = j;
  }
  return out;
}

function sameRow(f: FunctionFrames, i: number, j: number): boolean {
  return (
    f.state[i] === f.state[j] &&
    f.cfaBase[i] === f.cfaBase[j] &&
    f.cfaOffset[i] === f.cfaOffset[j] &&
    f.recordOffset[i] === f.recordOffset[j] &&
    f.lrSigned[i] === f.lrSigned[j]
  );
}

/** `sp+16`, `x29+32`: a CFA rule as the docs and the CLI print it. */
export function formatCfa(cfa: CfaRule): string {
  return `${cfa.base}${cfa.offset < 0 ? '-' : '+'}${Math.abs(cfa.offset)}`;
}
