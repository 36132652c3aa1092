import { CallKind, callKind, parseAddr } from '@klpsim/arm64';
import { type LoadedCapture, loadCapture, type Machine } from '@klpsim/kernel';
import { describe, expect, it } from 'vitest';
import {
  analyseKernelFunction,
  FrameStateCode,
  FrameTable,
  frameCoverage,
  frameTableOf,
  kernelFunctions,
} from '../src/index.js';

/**
 * The real kernels' own stack traces against the analysis. Every return
 * address the kernel's frame-pointer walk reported came from a frame record
 * its caller had pushed and pointed x29 at (AAPCS64 frame records, read by
 * arch/arm64/kernel/stacktrace.c): where the caller is modelled, the state
 * at the return address must be F. A pc that does not follow a call is
 * where an exception interrupted the task (pt_regs->pc): on the hard
 * capture, the kernel preempted `dd` in its user-copy loops, assembly
 * leaves that never push a frame (arch/arm64/lib/copy_to_user.S,
 * clear_user.S), so the state there must be L.
 */

const root = (p: string) => new URL(`../../../fixtures/captures/${p}`, import.meta.url).pathname;
const CAPTURES = [
  'linux-6.1-arm64-plain/capture.json',
  'linux-7.2-arm64-plain/capture.json',
  'linux-7.2-arm64-hard/capture.json.gz',
];

const loaded = new Map<string, LoadedCapture>();

function load(p: string): LoadedCapture {
  const had = loaded.get(p);
  if (had !== undefined) return had;
  const r = loadCapture(root(p));
  if (!r.ok) throw new Error(r.error.message);
  loaded.set(p, r.value);
  return r.value;
}

/** The frame table of just the functions that hold `pcs` (the whole text takes seconds more). */
function tableFor(machine: Machine, pcs: readonly number[]): FrameTable {
  const all = kernelFunctions(machine);
  const wanted = all.filter((f) => pcs.some((pc) => pc >= f.start && pc < f.end));
  return new FrameTable(wanted.map((f) => analyseKernelFunction(machine, f)));
}

describe("the kernel's own traces agree with the frame state", () => {
  for (const p of CAPTURES) {
    it(p, () => {
      const cap = load(p);
      const m = cap.machine;
      const pcs = [...cap.oracle.values()].flatMap((o) =>
        (o.traceFull ?? []).map((e) => parseAddr(e.address)!),
      );
      const table = tableFor(m, pcs);
      let returns = 0;
      const wrong: string[] = [];
      const interrupted: string[] = [];
      for (const o of cap.oracle.values()) {
        for (const e of o.traceFull ?? []) {
          const pc = parseAddr(e.address)!;
          const f = table.functionAt(pc);
          if (f === undefined || f.refusal !== null) continue;
          const state = table.stateAt(pc);
          if (state === FrameStateCode.NONE) continue;
          if (callKind(m.memory.read32(pc - 4)) !== CallKind.NONE) {
            returns++;
            if (state !== FrameStateCode.F) wrong.push(`${e.symbol}: ${'-LSF'[state]}`);
          } else {
            interrupted.push(`${e.symbol.replace(/\+.*/, '')}:${'-LSF'[state]}`);
          }
        }
      }
      expect(wrong).toEqual([]);
      expect(returns).toBeGreaterThan(300);
      if (p.includes('hard')) {
        expect(interrupted.length).toBe(5);
        expect(new Set(interrupted)).toEqual(
          new Set(['__arch_copy_to_user:L', '__arch_clear_user:L']),
        );
      } else expect(interrupted).toEqual([]);
    });
  }

  it('most of the 7.2 kernel is modelled, and each refusal has a reason', () => {
    const table = frameTableOf(load(CAPTURES[1]!).machine);
    const c = frameCoverage(table.functions);
    const dumped = c.functions - c.refusedBy['text-not-dumped'];
    expect(c.modelled / dumped).toBeGreaterThan(0.99);
    expect(c.instructions.classified / c.instructions.total).toBeGreaterThan(0.85);
    for (const f of table.functions) if (f.refusal !== null) expect(f.refusal.reason).not.toBe('');
  });
});
