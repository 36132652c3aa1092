import { formatAddr } from '@klpsim/arm64';
import { type KernelDesc, USER_NANOSLEEP } from '@klpsim/kernel';
import { describe, expect, it } from 'vitest';
import { POLICIES, Walker } from '../src/index.js';
import { build } from './build.js';
import { CAPTURE_72, CAPTURE_72_HARD, capture } from './fixtures.js';

/**
 * fp-validate's check is the RFC's `unwind_check_reliable`: the running
 * CFA (`cfa += sp_offset`) predicts where each frame record must be
 * (`fp = cfa + fp_offset`), and any other fp is unreliable.
 */

const desc: KernelDesc = { tasks: [{ frames: [...USER_NANOSLEEP] }] };

/** The frame records of task 0, innermost first. */
function records(b: ReturnType<typeof build>): number[] {
  const m = b.machine;
  const t = m.tasks[0]!;
  const out = [t.cpuContext.fp];
  const w = { hi: 0, lo: 0 };
  while (out.length < 6) {
    m.memory.read64(out[out.length - 1]!, w);
    out.push((w.hi - 0xfff00000) * 4294967296 + w.lo);
  }
  return out;
}

describe('fp-validate', () => {
  it('refuses a chain that skips a frame, which mainline calls reliable', () => {
    const b = build(desc);
    const m = b.machine;
    const recs = records(b);
    // Record 2's saved fp now names record 4: the frame of record 3 is skipped,
    // and every remaining record is well formed on the stack.
    const w = { hi: 0, lo: 0 };
    m.memory.read64(recs[3]!, w);
    m.memory.write64(recs[2]!, w.hi, w.lo);
    const task = m.tasks[0]!;
    const mainline = new Walker(m, POLICIES.mainline);
    expect(mainline.walk(task, { reliable: true })).toBe(0);
    expect(mainline.trace.len).toBe(b.tasks[0]!.chain.length - 1);
    const v = new Walker(m, POLICIES['fp-validate']);
    expect(v.walk(task, { reliable: true })).toBe(-22);
    const r = v.result();
    expect(r.reason?.code).toBe('FP_MISMATCH');
    // Found at the frame whose record should have been record 3.
    expect(r.reason?.address).toBe(formatAddr(recs[4]!));
  });

  it('accepts the clean chain, every record exactly where the frame state predicts', () => {
    const b = build(desc);
    const v = new Walker(b.machine, POLICIES['fp-validate']);
    expect(v.walk(b.machine.tasks[0]!, { reliable: true })).toBe(0);
    expect(Array.from(v.trace.pcs.subarray(0, v.trace.len))).toEqual(b.tasks[0]!.chain);
  });

  it('on the real 7.2 kernels, refuses only where there is no frame state or LR was live', () => {
    for (const file of [CAPTURE_72, CAPTURE_72_HARD]) {
      const { machine } = capture(file);
      const v = new Walker(machine, POLICIES['fp-validate']);
      for (const task of machine.tasks) {
        if (v.walk(task, { reliable: true }) === 0) continue;
        const code = v.st.reason;
        if (code === 'FP_MISMATCH') {
          // Only the tasks stopped in a frameless leaf (their pt_regs pc is the last entry).
          expect(v.result().trace.at(-1)?.source).toBe('P');
        } else expect(code).toBe('NO_FRAME_STATE');
      }
    }
  });
});
