import { formatAddr, parseAddr } from '@klpsim/arm64';
import { FrameStateCode, LazyFrameTable, STATE_NAMES } from '@klpsim/frames';
import { buildMachine, formatInputError } from '@klpsim/kernel';
import { describe, expect, it } from 'vitest';
import {
  boundaryTasks,
  chainDiff,
  drawInstructions,
  drawSource,
  judge,
  POLICY_NAMES,
  populationDesc,
} from '../src/index.js';
import { CAPTURE_72_HARD, capture } from './fixtures.js';

/**
 * The judge over tasks interrupted at instructions of the real 7.2 kernel.
 * Expected values come from kernel rules (cited) and from the capture: the
 * kernel's own pt_regs, text and arch_stack_walk.
 */

const hard = capture(CAPTURE_72_HARD);
const source = drawSource(hard.machine);
const draws = drawInstructions(source, 300, 7);
const built = (() => {
  const r = buildMachine(populationDesc(draws, hard.machine.config.kernelPacEnabled, 'mainline'));
  if (!r.ok) throw new Error(formatInputError(r.error));
  return r.value;
})();
const rows = judge(built.machine, built.tasks, POLICY_NAMES, [[]], (i) => draws[i]!.state);
const row = (p: string) => rows.find((r) => r.policy === p)!;

describe('the judged population', () => {
  it('draws every state, each with the real kernel frame state at the drawn pc', () => {
    const table = new LazyFrameTable(hard.machine);
    for (const d of draws) expect(STATE_NAMES[table.stateAt(d.pc)], formatAddr(d.pc)).toBe(d.state);
    for (const s of ['L', 'F', 'none'])
      expect(
        draws.some((d) => d.state === s),
        s,
      ).toBe(true);
  });

  it('builds each task stopped in the drawn state, and the analysis of its text agrees', () => {
    const table = new LazyFrameTable(built.machine);
    built.tasks.forEach((t, i) => {
      const d = draws[i]!;
      const b = t.boundaries[0]!;
      if (d.state === 'none') {
        // Built in a SYM_CODE function (the legacy 'saved' layout): no frame state there either.
        expect(b.state).toBeNull();
        expect(table.stateAt(b.pc)).toBe(FrameStateCode.NONE);
        return;
      }
      expect(b.state, `task ${i}`).toBe(d.state);
      expect(STATE_NAMES[table.stateAt(b.pc)]).toBe(d.state);
    });
  });

  it('mainline refuses every pt_regs pc, and its debug walk misses the caller exactly at L and S', () => {
    // arch_reliable_kunwind_consume_entry: `if (state->source == KUNWIND_SOURCE_REGS_PC) return false;`
    const m = row('mainline');
    expect(m.reliable!.right + m.reliable!.unsound).toBe(0);
    // kunwind_next_regs_pc takes fp = regs[29]: at L and S that is still the caller's record.
    const hidden = draws.filter((d) => d.state === 'L' || d.state === 'S').length;
    expect(m.debug.missing).toBe(hidden);
    expect(m.debug.invented).toBe(0);
    for (const s of ['L', 'S'] as const) if (m.byGroup[s]) expect(m.byGroup[s].needless).toBe(0);
    expect(m.byGroup.F!['refused-rightly']).toBe(0);
  });

  it('sframe-regs is right wherever there is a frame state, and never unsound', () => {
    const s = row('sframe-regs');
    for (const g of ['L', 'S', 'F'])
      expect(s.byGroup[g]?.right ?? 0, g).toBe(draws.filter((d) => d.state === g).length);
    expect(s.reliable!.unsound).toBe(0);
    expect(s.refusals.NO_FRAME_STATE?.count).toBe(draws.filter((d) => d.state === 'none').length);
  });

  it('fp-validate accepts F and refuses L and S as FP_MISMATCH', () => {
    const f = row('fp-validate');
    expect(f.byGroup.F!.right).toBe(draws.filter((d) => d.state === 'F').length);
    expect(f.refusals.FP_MISMATCH?.count).toBe(
      draws.filter((d) => d.state === 'L' || d.state === 'S').length,
    );
    expect(f.reliable!.unsound).toBe(0);
  });

  it('counts missing and invented frames as multisets', () => {
    expect(chainDiff([1, 2, 4], [1, 2, 3, 4])).toEqual({ missing: 1, invented: 0 });
    expect(chainDiff([1, 9, 2], [1, 2])).toEqual({ missing: 0, invented: 1 });
    expect(chainDiff([1, 1], [1])).toEqual({ missing: 0, invented: 1 });
  });
});

describe("the hard capture's tasks stopped at an exception boundary", () => {
  const tasks = boundaryTasks(hard.machine, hard.oracle, POLICY_NAMES);

  it('are the five whose kernel reliable walk failed at a pt_regs pc', () => {
    const failed = [...hard.oracle.entries()]
      .filter(([, o]) => o.reliable !== null && o.reliable.ret < 0)
      .map(([pid]) => pid)
      .sort();
    expect(tasks.map((t) => t.pid).sort()).toEqual(failed);
    expect(tasks).toHaveLength(5);
  });

  it('were interrupted in frameless leaves: the kernel trace misses the caller regs[30] names', () => {
    const text = new LazyFrameTable(hard.machine);
    for (const t of tasks) {
      const pc = parseAddr(t.pc)!;
      expect(text.stateAt(pc), t.symbol).toBe(FrameStateCode.L);
      // The word before regs[30] (the kernel's own pt_regs) is a bl to the interrupted function.
      expect(t.lr?.calls, t.symbol).toBe(hard.machine.kallsyms.lookup(pc)!.name);
      const full = hard.oracle.get(t.pid)!.traceFull!;
      expect(full.some((e) => e.address === t.lr!.address)).toBe(false);
      expect(t.kernelTraceComplete).toBe(false);
      // sframe-regs reports it: the kernel's own trace with regs[30] after the pt_regs pc.
      const s = t.verdicts.find((v) => v.policy === 'sframe-regs')!;
      expect(s.reliable).toBe(true);
      const at = full.findIndex((e) => e.address === t.pc);
      const want = [
        ...full.slice(0, at + 1).map((e) => e.address),
        t.lr!.address,
        ...full.slice(at + 1).map((e) => e.address),
      ];
      expect(s.trace.map((e) => e.address)).toEqual(want);
      expect(s.trace[at + 1]!.source).toBe('L');
    }
  });
});
