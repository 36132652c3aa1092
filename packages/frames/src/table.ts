import type { Addr } from '@klpsim/arm64';
import { type Machine, upperBound } from '@klpsim/kernel';
import { type FunctionFrames, SP_UNKNOWN } from './analyse.js';
import { analyseKernelFunction, type FunctionBounds, kernelFunctions } from './kernel.js';
import {
  type CfaRule,
  type FrameRow,
  type FrameStateCode,
  FrameStateCode as S,
  STATE_NAMES,
} from './state.js';

/**
 * Frame state by pc, as a policy consults it: every question answered from
 * `functionAt`, which the eager and the lazy table each provide.
 */
export abstract class FrameLookup {
  /** The function whose bounds hold `pc`, or undefined. */
  abstract functionAt(pc: Addr): FunctionFrames | undefined;

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

  /** Fills `out` with the state at `pc`; false (and `out.state` NONE) where there is none. */
  fill(pc: Addr, out: FrameCursor): boolean {
    return fillFrom(this.functionAt(pc), pc, out);
  }
}

/**
 * The frame state of every instruction of a kernel, looked up by pc. This
 * is what an unwinder policy consults at an exception boundary (the SFrame
 * series' "is LR live here?") and what a judge compares a walk against.
 * `stateAt` is for hot loops (a binary search over plain arrays, no
 * allocation); `rowAt` builds the whole answer for explanations.
 */
export class FrameTable extends FrameLookup {
  /** Every function, lowest start first. */
  readonly functions: readonly FunctionFrames[];
  private readonly starts: Float64Array;

  constructor(functions: readonly FunctionFrames[]) {
    super();
    this.functions = [...functions].sort((a, b) => a.start - b.start);
    this.starts = Float64Array.from(this.functions, (f) => f.start);
  }

  functionAt(pc: Addr): FunctionFrames | undefined {
    const f = this.functions[upperBound(this.starts, pc) - 1];
    return f !== undefined && pc < f.start + f.size ? f : undefined;
  }
}

/**
 * What an unwinder reads at one pc, filled into a caller's object so that a
 * walk allocates nothing: the state code, and where the CFA and the record are.
 */
export interface FrameCursor {
  state: FrameStateCode;
  /** CFA = x29 + cfaOffset (true) or sp + cfaOffset (false). */
  cfaX29: boolean;
  cfaOffset: number;
  /** The record (x29, then x30 at +8) lies at CFA + recordOffset; 0 in state L. */
  recordOffset: number;
  /** CFA - sp, whatever the CFA rule (ORC's sp offset); NaN where unknown. */
  spOffset: number;
  lrSigned: boolean;
}

/** A fresh FrameCursor to be filled by `FrameLookup.fill`. */
export function frameCursor(): FrameCursor {
  return {
    state: S.NONE,
    cfaX29: false,
    cfaOffset: 0,
    recordOffset: 0,
    spOffset: 0,
    lrSigned: false,
  };
}

/** `fill` over one function's arrays. */
function fillFrom(f: FunctionFrames | undefined, pc: Addr, out: FrameCursor): boolean {
  out.state = S.NONE;
  if (f === undefined || f.refusal !== null || pc % 4 !== 0) return false;
  const i = (pc - f.start) / 4;
  const code = f.state[i] as FrameStateCode | undefined;
  if (code === undefined || code === S.NONE) return false;
  out.state = code;
  out.cfaX29 = f.cfaBase[i] === 1;
  out.cfaOffset = f.cfaOffset[i]!;
  out.recordOffset = f.recordOffset[i]!;
  const sp = f.spOffset[i]!;
  out.spOffset = sp === SP_UNKNOWN ? Number.NaN : sp;
  out.lrSigned = f.lrSigned[i] === 1;
  return true;
}

/**
 * The frame state of a Machine's text, each function analysed the first
 * time a pc in it is looked up: an unwinder consults a handful of
 * functions per walk, so a walk of a real kernel (55,000 functions, about
 * 2.5 s to analyse whole) pays only for what it touches. Answers are the
 * eager table's (`frameTableOf`).
 */
export class LazyFrameTable extends FrameLookup {
  private readonly bounds: readonly FunctionBounds[];
  private readonly starts: Float64Array;
  private readonly done: (FunctionFrames | undefined)[];

  constructor(private readonly machine: Machine) {
    super();
    this.bounds = kernelFunctions(machine).sort((a, b) => a.start - b.start);
    this.starts = Float64Array.from(this.bounds, (f) => f.start);
    this.done = new Array(this.bounds.length);
  }

  functionAt(pc: Addr): FunctionFrames | undefined {
    const i = upperBound(this.starts, pc) - 1;
    const b = this.bounds[i];
    if (b === undefined || pc >= b.end) return undefined;
    let f = this.done[i];
    if (f === undefined) {
      f = analyseKernelFunction(this.machine, b);
      this.done[i] = f;
    }
    return f;
  }
}

/** One lazy table per Machine, shared by every walker and judge of it (each function analysed once). */
const LAZY_TABLES = new WeakMap<Machine, LazyFrameTable>();

/** The lazy frame table of `machine`, made on first use. */
export function lazyFrameTableOf(machine: Machine): LazyFrameTable {
  let t = LAZY_TABLES.get(machine);
  if (t === undefined) {
    t = new LazyFrameTable(machine);
    LAZY_TABLES.set(machine, t);
  }
  return t;
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
    spOffset: f.spOffset[i] === SP_UNKNOWN ? null : f.spOffset[i]!,
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
    f.spOffset[i] === f.spOffset[j] &&
    f.lrSigned[i] === f.lrSigned[j]
  );
}

/** `sp+16`, `x29+32`: a CFA rule as the docs and the CLI print it. */
export function formatCfa(cfa: CfaRule): string {
  return `${cfa.base}${cfa.offset < 0 ? '-' : '+'}${Math.abs(cfa.offset)}`;
}
