import { type Addr, formatAddr, parseAddr } from '@klpsim/arm64';
import { type FrameLookup, type FunctionFrames, frameRanges } from '@klpsim/frames';
import type { BuiltFrameRow, BuiltFunctionFrames } from '@klpsim/kernel';
import type { FrameStateFunction, FrameStateRow, FrameStates, Vector } from './schema.js';

/**
 * The `frameStates` of a vector: the frame state of every function its
 * walks meet, so a runner without an instruction decoder can run the
 * policies that consult it (sframe-regs, fp-validate).
 */

/** Every pc a vector's expectations hold, and each pc - 4 (where a return address is looked up). */
export function expectationPcs(walks: Vector['walks']): Addr[] {
  const out: Addr[] = [];
  for (const w of walks)
    for (const e of w.expect)
      for (const t of e.trace ?? []) {
        const a = parseAddr(t.address);
        if (a === null || Number.isNaN(a)) continue;
        out.push(a, a - 4);
      }
  return out;
}

/** Runs of equal builder rows as vector rows (unreached words are in no row). */
function builderRows(rows: readonly (BuiltFrameRow | null)[]): FrameStateRow[] {
  const out: FrameStateRow[] = [];
  const same = (a: BuiltFrameRow, b: BuiltFrameRow) =>
    a.state === b.state &&
    a.cfa.base === b.cfa.base &&
    a.cfa.offset === b.cfa.offset &&
    a.record === b.record &&
    a.sp === b.sp &&
    a.lrSigned === b.lrSigned;
  let i = 0;
  while (i < rows.length) {
    const r = rows[i];
    let j = i + 1;
    if (r === null || r === undefined) {
      i = j;
      continue;
    }
    while (j < rows.length && rows[j] != null && same(r, rows[j]!)) j++;
    out.push({
      start: i * 4,
      end: j * 4,
      state: r.state,
      cfa: { base: r.cfa.base, offset: r.cfa.offset },
      record: r.state === 'L' ? null : r.record,
      sp: r.sp,
      lrSigned: r.lrSigned,
    });
    i = j;
  }
  return out;
}

/** The builder's truth for the functions holding any of `pcs` (origin `builder`). */
export function frameStatesFromBuilder(
  frames: readonly BuiltFunctionFrames[],
  pcs: readonly Addr[],
): FrameStates {
  const picked = new Set<BuiltFunctionFrames>();
  const sorted = [...frames].sort((a, b) => a.start - b.start);
  for (const pc of pcs) {
    const f = sorted.find((x) => pc >= x.start && pc < x.start + x.size);
    if (f !== undefined) picked.add(f);
  }
  return {
    origin: 'builder',
    functions: sorted
      .filter((f) => picked.has(f))
      .map((f) => ({
        name: f.name,
        start: formatAddr(f.start),
        size: f.size,
        rows: builderRows(f.rows),
      })),
  };
}

/** One analysed function as a vector function: its modelled rows (none when refused). */
export function analysedFunction(f: FunctionFrames): FrameStateFunction {
  const rows: FrameStateRow[] = [];
  if (f.refusal === null)
    for (const r of frameRanges(f)) {
      if (r.row === null) continue;
      rows.push({
        start: r.start,
        end: r.end,
        state: r.row.state,
        cfa: { base: r.row.cfa.base, offset: r.row.cfa.offset },
        record: r.row.record === null ? null : r.row.record.fp,
        sp: r.row.spOffset,
        lrSigned: r.row.lrSigned,
      });
    }
  return { name: f.name, start: formatAddr(f.start), size: f.size, rows };
}

/** klpsim's analysis of the functions holding any of `pcs` (origin `analysis`). */
export function frameStatesFromAnalysis(table: FrameLookup, pcs: readonly Addr[]): FrameStates {
  const picked = new Map<number, FunctionFrames>();
  for (const pc of pcs) {
    const f = table.functionAt(pc);
    if (f !== undefined) picked.set(f.start, f);
  }
  return {
    origin: 'analysis',
    functions: [...picked.values()].sort((a, b) => a.start - b.start).map(analysedFunction),
  };
}

/**
 * Where a vector's `frameStates` differ from the analysis of the machine's
 * text (what the TypeScript runner consults): one line per difference.
 */
export function frameStatesDiff(fs: FrameStates, table: FrameLookup): string[] {
  const out: string[] = [];
  for (const [i, want] of fs.functions.entries()) {
    const start = parseAddr(want.start);
    const f = start === null ? undefined : table.functionAt(start);
    if (f === undefined || f.start !== start) {
      out.push(`functions[${i}] ${want.name}: the analysis has no function at ${want.start}`);
      continue;
    }
    const got = analysedFunction(f);
    if (got.name !== want.name || got.size !== want.size)
      out.push(
        `functions[${i}]: expected ${want.name} of ${want.size} bytes, the analysis has ${got.name} of ${got.size}`,
      );
    const n = Math.max(got.rows.length, want.rows.length);
    for (let k = 0; k < n; k++) {
      const a = JSON.stringify(want.rows[k] ?? null);
      const b = JSON.stringify(got.rows[k] ?? null);
      if (a !== b) {
        out.push(`functions[${i}] ${want.name} rows[${k}]: vector ${a}, analysis ${b}`);
        break;
      }
    }
  }
  return out;
}
